//! The dashboard: server-rendered pages where people manage custom fields, API keys,
//! contacts and webhook endpoints in a browser, on the same port as the API.
//!
//! Every page acts for the company of the signed-in user, through the same use cases the
//! API calls (so the same domain rules, store code and error messages apply); a refusal is
//! shown next to the form input it is about.
//! Pages are askama templates compiled into the binary, assets are embedded, and the only
//! script is the copy button's. Each form carries the session's CSRF token, checked in
//! one place ([`session::verify_csrf`]) before any handler runs.

mod assets;
mod contacts;
mod extract;
mod fields;
mod form;
mod history;
mod keys;
mod nav;
mod page;
mod session;
mod webhooks;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Redirect, Response};
use axum::routing::{any, get, post};

use super::AppState;
use page::PageError;

/// The dashboard's routes; `state` is what the session check reads sessions from.
pub fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/dashboard", get(|| async { Redirect::to(contacts::LIST) }))
        .route(
            contacts::LIST,
            get(contacts::list_contacts).post(contacts::create_contact),
        )
        .route("/dashboard/contacts/new", get(contacts::new_contact_form))
        .route(
            "/dashboard/contacts/{id}",
            get(contacts::show_contact).post(contacts::update_contact),
        )
        .route("/dashboard/contacts/{id}/edit", get(contacts::edit_contact))
        .route(
            "/dashboard/contacts/{id}/delete",
            get(contacts::confirm_delete).post(contacts::delete_contact),
        )
        .route(
            fields::LIST,
            get(fields::list_fields).post(fields::create_field),
        )
        .route(
            "/dashboard/fields/{key}",
            get(fields::edit_field).post(fields::update_field),
        )
        .route(
            "/dashboard/fields/{key}/delete",
            get(fields::confirm_delete).post(fields::delete_field),
        )
        .route(keys::LIST, get(keys::list_keys).post(keys::create_key))
        .route(
            "/dashboard/keys/{id}/revoke",
            get(keys::confirm_revoke).post(keys::revoke_key),
        )
        .route(
            webhooks::LIST,
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route("/dashboard/webhooks/{id}", get(webhooks::show_webhook))
        .route(
            "/dashboard/webhooks/{id}/enable",
            post(webhooks::enable_webhook),
        )
        .route(
            "/dashboard/webhooks/{id}/disable",
            post(webhooks::disable_webhook),
        )
        .route(
            "/dashboard/webhooks/{id}/rotate-secret",
            get(webhooks::confirm_rotation).post(webhooks::rotate_secret),
        )
        .route(
            "/dashboard/webhooks/{id}/delete",
            get(webhooks::confirm_delete).post(webhooks::delete_webhook),
        )
        .route(
            "/dashboard/webhooks/{id}/deliveries/{event_id}/retry",
            post(webhooks::retry_delivery),
        )
        .route("/dashboard/logout", post(session::logout))
        // Layers run last-added first: the session is found, then the CSRF token checked.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::verify_csrf,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route(
            session::LOGIN,
            get(session::login_page).post(session::login).route_layer(
                axum::middleware::from_fn_with_state(state, session::verify_csrf),
            ),
        )
        .route("/dashboard/assets/{name}", get(assets::asset))
        .merge(signed_in)
        .route("/dashboard/{*rest}", any(page_not_found))
        .layer(axum::middleware::map_response(protect_pages))
}

/// Headers on every dashboard response: no framing, no content from elsewhere, nothing
/// cached unless the handler said otherwise (pages show contacts and new API keys).
async fn protect_pages(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn page_not_found() -> PageError {
    PageError::NotFound
}
