//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types so
//! it cannot drift from what the server does, and the interactive reference page that
//! renders it from assets embedded in the binary (no CDN: users' networks may be closed).

use axum::Router;
use axum::http::{Method, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use contactd_api as api;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AllOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{Modify, OpenApi};

use super::extract::Json;
use super::scopes::required_scope;
use super::{AppState, batch, contacts, custom_fields, events, export, health, webhooks};

/// The document: every route, schema and status.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "contactd",
        description = "A self-hostable server for the Alpharun Contacts API. Every error \
                       response has the `Error` body: `error` (the status), `message`, and \
                       where they help `code`, `field` and `conflicting_contact_id`.",
        license(name = "MIT"),
    ),
    paths(
        contacts::update_contact,
        contacts::update_contact_at,
        contacts::create_contact,
        contacts::get_contact,
        contacts::list_contacts,
        contacts::count_contacts,
        contacts::delete_contact,
        batch::upsert_contacts,
        export::export_contacts,
        custom_fields::list_fields,
        custom_fields::create_field,
        custom_fields::get_field,
        custom_fields::update_field,
        custom_fields::delete_field,
        events::list_events,
        events::contact_history,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_secret,
        webhooks::list_deliveries,
        webhooks::retry_delivery,
        health::alive,
        health::ready,
    ),
    components(schemas(
        api::ErrorBody,
        api::ErrorCode,
        api::CreateContact,
        api::ImportSummary,
        api::UpsertContact,
        api::ExportFormat,
    )),
    modifiers(&CommonResponses),
    security(("bearerAuth" = [])),
)]
pub struct ApiDoc;

/// The responses every `/api/v1` route can give, added to each operation in one place: 401
/// (no usable key), 403 (a scope lacking), 429 (a rate limit), 431, 500 and 503; and for
/// routes with a body 400, 413 and 415. Each operation's `security` names the scope it
/// needs.
#[derive(Debug)]
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearerAuth",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("An API key: `Authorization: Bearer <key>`"))
                        .build(),
                ),
            );
        require_body_id(openapi);
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") && path != "/api/v1" {
                continue;
            }
            let operations = [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PATCH, &mut item.patch),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                // The scope the route needs, from the table the middleware enforces; a
                // route the table lacks fails the document's test (tests/api/scopes.rs).
                if let Some(scope) = required_scope(&method, path) {
                    operation.security = Some(vec![SecurityRequirement::new(
                        "bearerAuth",
                        [scope.as_str()],
                    )]);
                }
                let mut common = vec![
                    ("401", unauthorized()),
                    ("403", insufficient_scope()),
                    (
                        "429",
                        error(
                            "The key is over its rate limit (or, for exports, too many run at once); `Retry-After` gives the seconds to wait",
                        ),
                    ),
                    (
                        "431",
                        error("The request's headers are too large or too many"),
                    ),
                    (
                        "500",
                        error("An internal failure; nothing of it is disclosed"),
                    ),
                    ("503", error("The database is unavailable; retry shortly")),
                ];
                constrain_path_parameters(path, operation);
                if method == Method::GET
                    && ["/api/v1/contacts", "/api/v1/contacts/count"].contains(&path.as_str())
                {
                    contact_filters(operation);
                }
                if method != Method::GET {
                    idempotent(operation);
                    common.extend([
                        ("409", error("A request with this `Idempotency-Key` is still running; `Retry-After` gives the seconds to wait")),
                        ("422", error("This `Idempotency-Key` was used for a different request")),
                    ]);
                }
                if operation.request_body.is_some() {
                    common.extend([
                        ("400", error("The body is not valid JSON, has the wrong shape, an unknown member, or a value that is refused")),
                        ("413", error("The body is larger than the server's limit")),
                        ("415", error("The body is not declared as application/json")),
                    ]);
                }
                for (status, response) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(response));
                }
            }
        }
    }
}

/// The pattern of a contact identifier in any of its four forms (docs/reference.md#4-identifiers).
const IDENTIFIER_PATTERN: &str = "^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|alt:(ext_id|email|phone_number):.+)$";

/// States what each path parameter accepts, so that generated clients and fuzzers know:
/// a contact identifier, a field key, a webhook's UUID, an event id.
/// The filters both contact lists take (docs/reference.md#finding-contacts), added to each
/// in one place; the `cf.KEY` filters are named by a company's own keys, so the operation's
/// description states them instead.
fn contact_filters(operation: &mut utoipa::openapi::path::Operation) {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let time = || text().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
    let filters = [
        (
            "q",
            "Contacts whose full name, email or ext_id contains this text, case-insensitively",
            text()
                .min_length(Some(crate::store::SEARCH_TEXT_MIN_CHARS))
                .max_length(Some(crate::contacts::SEARCH_TEXT_MAX_CHARS)),
        ),
        (
            "email",
            "The contact with this email, compared in its normal form",
            text(),
        ),
        (
            "phone_number",
            "The contact with this phone number, in any format the API reads",
            text(),
        ),
        (
            "ext_id",
            "The contact with this ext_id",
            text().min_length(Some(1)).max_length(Some(255)),
        ),
        (
            "created_after",
            "Created strictly after this time (RFC 3339)",
            time(),
        ),
        (
            "created_before",
            "Created strictly before this time (RFC 3339)",
            time(),
        ),
        (
            "updated_after",
            "Last updated strictly after this time (RFC 3339)",
            time(),
        ),
        (
            "updated_before",
            "Last updated strictly before this time (RFC 3339)",
            time(),
        ),
    ];
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    for (name, description, schema) in filters {
        parameters.push(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .build(),
        );
    }
}

fn constrain_path_parameters(path: &str, operation: &mut utoipa::openapi::path::Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in != ParameterIn::Path {
            continue;
        }
        let text = ObjectBuilder::new().schema_type(Type::String);
        let schema = match parameter.name.as_str() {
            "id" if path.starts_with("/api/v1/contacts") => text.pattern(Some(IDENTIFIER_PATTERN)),
            "key" => text.pattern(Some("^[a-z][a-z0-9_]{0,62}$")),
            "id" => text.format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            "event_id" => text.pattern(Some("^evt_[0-9a-f]{32}$")),
            _ => continue,
        };
        parameter.schema = Some(schema.into());
    }
}

/// A write takes an optional `Idempotency-Key` (docs/reference.md#idempotency), and any of
/// its answers may be one given again, marked `Idempotent-Replayed`.
fn idempotent(operation: &mut utoipa::openapi::path::Operation) {
    let key = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes the write run once: a repeat of the same request with this key within 24 \
             hours gets the first answer again, with `Idempotent-Replayed: true`",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(super::idempotency::MAX_KEY_LEN))
                .pattern(Some("^[ -~]+$")),
        ))
        .build();
    operation.parameters.get_or_insert_with(Vec::new).push(key);
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.insert(
                "Idempotent-Replayed".to_owned(),
                HeaderBuilder::new()
                    .description(Some(
                        "`true` on an answer given again for a repeated Idempotency-Key",
                    ))
                    .build(),
            );
        }
    }
}

/// `PATCH /api/v1/contacts` takes the seed's `ContactUpdateByIdentifierPayload`: the update
/// body with `id` required (the path form shares the body type but takes `id` from the path).
fn require_body_id(openapi: &mut utoipa::openapi::OpenApi) {
    let payload = AllOfBuilder::new()
        .item(Ref::from_schema_name("UpdateContact"))
        .item(
            ObjectBuilder::new()
                .property(
                    "id",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(IDENTIFIER_PATTERN)),
                )
                .required("id"),
        )
        .description(Some(
            "The seed's update body: `id` (required) names the contact, in any identifier form.",
        ));
    openapi
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(
            "ContactUpdateByIdentifierPayload".to_owned(),
            RefOr::T(Schema::AllOf(payload.build())),
        );
    let body = openapi
        .paths
        .paths
        .get_mut("/api/v1/contacts")
        .and_then(|item| item.patch.as_mut())
        .and_then(|operation| operation.request_body.as_mut())
        .and_then(|body| body.content.get_mut("application/json"));
    if let Some(content) = body {
        content.schema = Some(Ref::from_schema_name("ContactUpdateByIdentifierPayload").into());
    }
}

fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn unauthorized() -> Response {
    let mut response = error("No API key, a malformed one, or an unknown or revoked one");
    response.headers.insert(
        "WWW-Authenticate".to_owned(),
        HeaderBuilder::new()
            .description(Some("Always `Bearer`"))
            .build(),
    );
    response
}

fn insufficient_scope() -> Response {
    let mut response = error("The API key lacks the scope this operation needs (its `security`)");
    response.headers.insert(
        "WWW-Authenticate".to_owned(),
        HeaderBuilder::new()
            .description(Some(
                "`Bearer error=\"insufficient_scope\", scope=\"…\"`, naming the scope",
            ))
            .build(),
    );
    response
}

/// `/api/v1/openapi.json` and the `/docs` page, served without a key: the contract is public.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(document))
        .route("/docs", get(docs_page))
        .route("/docs/swagger-ui-bundle.js", get(swagger_script))
        .route("/docs/swagger-ui.css", get(swagger_style))
}

async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn docs_page() -> Html<&'static str> {
    Html(include_str!("../../assets/docs.html"))
}

async fn swagger_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    )
}

async fn swagger_style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/swagger-ui/swagger-ui.css"),
    )
}
