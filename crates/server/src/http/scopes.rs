//! Which scope each `/api/v1` route needs (docs/reference.md#scopes): the one table the
//! bearer middleware enforces and the OpenAPI document states.

use axum::http::Method;
use contactd_api::Scope;

/// The scope a request to `route` (the route's pattern, as routing matched it) with
/// `method` needs; `None` for a route this table does not know, which is refused.
pub fn required_scope(method: &Method, route: &str) -> Option<Scope> {
    let reads = *method == Method::GET || *method == Method::HEAD;
    Some(match route {
        "/api/v1/contacts/export" => Scope::ContactsExport,
        "/api/v1/events" | "/api/v1/contacts/{id}/history" => Scope::EventsRead,
        "/api/v1/contacts"
        | "/api/v1/contacts/{id}"
        | "/api/v1/contacts/batch"
        | "/api/v1/contacts/count" => {
            if reads {
                Scope::ContactsRead
            } else {
                Scope::ContactsWrite
            }
        }
        "/api/v1/custom-fields" | "/api/v1/custom-fields/{key}" => {
            if reads {
                Scope::ContactsRead
            } else {
                Scope::FieldsWrite
            }
        }
        webhooks if webhooks == "/api/v1/webhooks" || webhooks.starts_with("/api/v1/webhooks/") => {
            Scope::WebhooksManage
        }
        _ => return None,
    })
}
