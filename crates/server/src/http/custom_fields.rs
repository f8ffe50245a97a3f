//! The custom field definition endpoints (docs/reference.md#7-custom-field-definitions).

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Router};
use contactd_api as api;

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, PathParam};
use crate::custom_fields::{self, FieldChangeInput, OptionsInput};
use crate::domain::FieldKey;
use crate::store::Caller;

/// Routes under `/api/v1/custom-fields`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/custom-fields", get(list_fields).post(create_field))
        .route(
            "/custom-fields/{key}",
            get(get_field).patch(update_field).delete(delete_field),
        )
}

#[utoipa::path(
    get,
    path = "/api/v1/custom-fields",
    tag = "custom fields",
    summary = "List Custom Fields",
    responses((status = 200, description = "Every definition of your company, ordered by key", body = api::CustomFieldList))
)]
pub(super) async fn list_fields(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<api::CustomFieldList>, ApiError> {
    let fields = custom_fields::list(&state.directory, caller.company_id).await?;
    Ok(Json(api::CustomFieldList {
        data: api::CustomFieldListData {
            custom_fields: fields.into_iter().map(api::CustomField::from).collect(),
        },
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/custom-fields",
    tag = "custom fields",
    summary = "Create Custom Field",
    description = "Defines a custom field. `key` matches `^[a-z][a-z0-9_]{0,62}$`; `options` (1 to 500 distinct strings) is required for `select` and forbidden otherwise.",
    request_body = api::CreateCustomField,
    responses(
        (status = 200, description = "The definition created", body = api::CustomField),
        (status = 409, description = "A field with this key exists", body = api::ErrorBody),
    )
)]
pub(super) async fn create_field(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::CreateCustomField>,
) -> Result<Json<api::CustomField>, ApiError> {
    let created = custom_fields::create(
        &state.directory,
        caller.company_id,
        &caller.actor,
        body.into(),
    )
    .await?;
    Ok(Json(created.into()))
}

#[utoipa::path(
    get,
    path = "/api/v1/custom-fields/{key}",
    tag = "custom fields",
    summary = "Fetch Custom Field",
    params(("key" = String, Path, description = "The field's key")),
    responses(
        (status = 200, description = "The definition", body = api::CustomField),
        (status = 400, description = "The key is malformed", body = api::ErrorBody),
        (status = 404, description = "No such field", body = api::ErrorBody),
    )
)]
pub(super) async fn get_field(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(key): PathParam,
) -> Result<Json<api::CustomField>, ApiError> {
    let key = parse_path_key(&key)?;
    let field = custom_fields::find(&state.directory, caller.company_id, &key).await?;
    Ok(Json(field.into()))
}

#[utoipa::path(
    patch,
    path = "/api/v1/custom-fields/{key}",
    tag = "custom fields",
    summary = "Update Custom Field",
    description = "Renames a field, or grows a select field's options. `options` is the full new list: it must hold every option stored when the change is written, so a list that leaves one out (another change added it meanwhile, say) is refused with 409 `conflict` naming it, and nothing is written; read the field and send the full list again. Key and type never change.",
    params(("key" = String, Path, description = "The field's key")),
    request_body = api::UpdateCustomField,
    responses(
        (status = 200, description = "The definition updated", body = api::CustomField),
        (status = 404, description = "No such field", body = api::ErrorBody),
        (status = 409, description = "The list leaves out a stored option (`conflict`)", body = api::ErrorBody),
    )
)]
pub(super) async fn update_field(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(key): PathParam,
    Json(body): Json<api::UpdateCustomField>,
) -> Result<Json<api::CustomField>, ApiError> {
    let key = parse_path_key(&key)?;
    let change = FieldChangeInput {
        display_name: body.display_name,
        options: body.options.map(OptionsInput::Replace),
    };
    let updated = custom_fields::update(
        &state.directory,
        caller.company_id,
        &caller.actor,
        &key,
        change,
    )
    .await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v1/custom-fields/{key}",
    tag = "custom fields",
    summary = "Delete Custom Field",
    description = "Deletes a definition and every value of it; a field created later with the same key starts empty.",
    params(("key" = String, Path, description = "The field's key")),
    responses(
        (status = 200, description = "The definition was deleted", body = api::DeletedCustomField),
        (status = 400, description = "The key is malformed", body = api::ErrorBody),
        (status = 404, description = "No such field", body = api::ErrorBody),
    )
)]
pub(super) async fn delete_field(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(key): PathParam,
) -> Result<Json<api::DeletedCustomField>, ApiError> {
    let key = parse_path_key(&key)?;
    custom_fields::delete(&state.directory, caller.company_id, &caller.actor, &key).await?;
    Ok(Json(api::DeletedCustomField {
        key: key.as_str().to_owned(),
        deleted: true,
    }))
}

/// Reads a field key from the path.
fn parse_path_key(key: &str) -> Result<FieldKey, ApiError> {
    FieldKey::parse(key)
        .map_err(|invalid| ApiError::bad_request(invalid.code, invalid.message, None))
}
