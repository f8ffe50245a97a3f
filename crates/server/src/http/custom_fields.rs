//! The custom field definition endpoints (docs/reference.md#7-custom-field-definitions).

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Router};
use contactd_api::{self as api, FieldType};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json, PathParam};
use crate::domain::{DisplayName, FieldKey, SelectOptions};
use crate::store::{
    Caller, FieldDefinition, FieldDefinitionChange, NewFieldDefinition, OptionsChange, StoreError,
};

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
    let fields = state.store.list_fields(caller.company_id).await?;
    Ok(Json(api::CustomFieldList {
        data: api::CustomFieldListData {
            custom_fields: fields.into_iter().map(field_body).collect(),
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
    Ok(Json(field_body(create(&state, &caller, body).await?)))
}

/// Creates a definition: the API's create and the dashboard's.
pub(super) async fn create(
    state: &AppState,
    caller: &Caller,
    body: api::CreateCustomField,
) -> Result<FieldDefinition, ApiError> {
    let field = parse_new_field(body)?;
    let created = state.store.create_field(caller.company_id, &field).await?;
    state.caches.fields.remove(&caller.company_id);
    Ok(created)
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
    Ok(Json(field_body(find(&state, &caller, &key).await?)))
}

/// Reads one definition, or answers 404.
pub(super) async fn find(
    state: &AppState,
    caller: &Caller,
    key: &FieldKey,
) -> Result<FieldDefinition, ApiError> {
    state
        .store
        .get_field(caller.company_id, key)
        .await?
        .ok_or_else(|| field_not_found(key))
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
    let change = FieldDefinitionChange {
        display_name: parse_display_name(body.display_name.as_deref())?,
        options: body
            .options
            .map(|options| parse_options(options).map(OptionsChange::Replace))
            .transpose()?,
    };
    Ok(Json(field_body(
        update(&state, &caller, &key, &change).await?,
    )))
}

/// Renames a definition or grows its options: the API's update and the dashboard's. The
/// store judges the change against the definition as it is when the change is written
/// (`docs/robustness.md#concurrent-admins-no-lost-updates`), so nothing is read here first.
pub(super) async fn update(
    state: &AppState,
    caller: &Caller,
    key: &FieldKey,
    change: &FieldDefinitionChange,
) -> Result<FieldDefinition, ApiError> {
    let updated = state
        .store
        .update_field(caller.company_id, key, change)
        .await
        .map_err(|error| match error {
            StoreError::NotFound => field_not_found(key),
            // Only the options can be refused by the domain here (not a select, too many).
            StoreError::Invalid(invalid) => ApiError::invalid(invalid, "options"),
            other => other.into(),
        })?;
    state.caches.fields.remove(&caller.company_id);
    Ok(updated)
}

/// A new display name, when one is given.
pub(super) fn parse_display_name(name: Option<&str>) -> Result<Option<DisplayName>, ApiError> {
    name.map(DisplayName::parse)
        .transpose()
        .map_err(|invalid| ApiError::invalid(invalid, "display_name"))
}

/// A list of options, at the request member `options`.
pub(super) fn parse_options(options: Vec<String>) -> Result<SelectOptions, ApiError> {
    SelectOptions::parse(options).map_err(|invalid| ApiError::invalid(invalid, "options"))
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
    delete(&state, &caller, &key).await?;
    Ok(Json(api::DeletedCustomField {
        key: key.as_str().to_owned(),
        deleted: true,
    }))
}

/// Deletes a definition and every value of it: the API's delete and the dashboard's.
pub(super) async fn delete(
    state: &AppState,
    caller: &Caller,
    key: &FieldKey,
) -> Result<(), ApiError> {
    state
        .store
        .delete_field(caller.company_id, key)
        .await
        .map_err(ApiError::not_found_as(|| field_not_found(key)))?;
    state.caches.fields.remove(&caller.company_id);
    Ok(())
}

/// Validates a new definition (docs/reference.md#7-custom-field-definitions); shared by the API and the admin CLI.
pub fn parse_new_field(body: api::CreateCustomField) -> Result<NewFieldDefinition, ApiError> {
    let key =
        FieldKey::parse_new(&body.key).map_err(|invalid| ApiError::invalid(invalid, "key"))?;
    let display_name = DisplayName::parse(&body.display_name)
        .map_err(|invalid| ApiError::invalid(invalid, "display_name"))?;
    let options = match (body.field_type, body.options) {
        (FieldType::Select, Some(options)) => Some(parse_options(options)?),
        (FieldType::Select, None) => {
            return Err(ApiError::bad_request(
                "invalid_options",
                "a select field needs options: 1 to 500 distinct non-empty strings",
                Some("options".to_owned()),
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_options",
                "options are only allowed on select fields",
                Some("options".to_owned()),
            ));
        }
        (_, None) => None,
    };
    Ok(NewFieldDefinition {
        key,
        display_name,
        field_type: body.field_type,
        options,
    })
}

pub(super) fn parse_path_key(key: &str) -> Result<FieldKey, ApiError> {
    FieldKey::parse(key)
        .map_err(|invalid| ApiError::bad_request(invalid.code, invalid.message, None))
}

fn field_not_found(key: &FieldKey) -> ApiError {
    ApiError::NotFound {
        code: "custom_field_not_found",
        message: format!("no custom field `{key}` is defined"),
    }
}

/// The wire form of a definition.
pub fn field_body(field: FieldDefinition) -> api::CustomField {
    api::CustomField {
        options: (field.field_type == FieldType::Select).then_some(field.options),
        key: field.key.as_str().to_owned(),
        display_name: field.display_name,
        field_type: field.field_type,
        created_at: field.created_at,
    }
}
