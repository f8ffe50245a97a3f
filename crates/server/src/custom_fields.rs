//! The custom field definition use cases (docs/reference.md#7-custom-field-definitions): what the API, the dashboard and the CLI do
//! to definitions, and the rules they share. Every change made here drops the company's
//! cached definitions, so the next contact write of this process sees it.

use contactd_api::ErrorCode;
use contactd_api::FieldType;
use uuid::Uuid;

use crate::directory::Directory;
use crate::domain::{DisplayName, FieldKey, SelectOptions};
use crate::failure::{Failure, Field};
use crate::store::{
    Actor, FieldDefinition, FieldDefinitionChange, NewFieldDefinition, OptionsChange, StoreError,
};

/// A definition to create, as received: nothing checked yet.
#[derive(Debug, Clone)]
pub struct NewFieldInput {
    pub key: String,
    pub display_name: String,
    pub field_type: FieldType,
    /// Required for a select field, refused for any other.
    pub options: Option<Vec<String>>,
}

/// A change to a definition, as received: a new display name and/or more options.
#[derive(Debug, Clone, Default)]
pub struct FieldChangeInput {
    pub display_name: Option<String>,
    pub options: Option<OptionsInput>,
}

/// How a change grows a select field's options, as received ([`OptionsChange`]).
#[derive(Debug, Clone)]
pub enum OptionsInput {
    /// The full new list.
    Replace(Vec<String>),
    /// Options to add after the stored ones.
    Add(Vec<String>),
}

/// Creates a definition: the API's create and the dashboard's.
pub async fn create(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    input: NewFieldInput,
) -> Result<FieldDefinition, Failure> {
    let field = parse_new_field(input)?;
    let created = directory
        .store
        .create_field(company_id, actor, &field)
        .await?;
    directory.definitions_changed(company_id);
    Ok(created)
}

/// Every definition of the company, ordered by key, as stored now.
pub async fn list(
    directory: &Directory,
    company_id: Uuid,
) -> Result<Vec<FieldDefinition>, Failure> {
    Ok(directory.store.list_fields(company_id).await?)
}

/// The definition of `key`.
pub async fn find(
    directory: &Directory,
    company_id: Uuid,
    key: &FieldKey,
) -> Result<FieldDefinition, Failure> {
    directory
        .store
        .get_field(company_id, key)
        .await?
        .ok_or_else(|| field_not_found(key))
}

/// Renames a definition or grows its options: the API's update and the dashboard's. The
/// store judges the change against the definition as it is when the change is written
/// (`docs/robustness.md#concurrent-admins-no-lost-updates`), so nothing is read here first.
pub async fn update(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    key: &FieldKey,
    change: FieldChangeInput,
) -> Result<FieldDefinition, Failure> {
    let change = FieldDefinitionChange {
        display_name: change
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(|invalid| Failure::invalid(invalid, Field::DisplayName))?,
        options: change
            .options
            .map(|options| match options {
                OptionsInput::Replace(list) => parse_options(list).map(OptionsChange::Replace),
                OptionsInput::Add(added) => parse_options(added).map(OptionsChange::Add),
            })
            .transpose()?,
    };
    let updated = directory
        .store
        .update_field(company_id, actor, key, &change)
        .await
        .map_err(|error| match error {
            StoreError::NotFound => field_not_found(key),
            // Only the options can be refused by the domain here (not a select, too many).
            StoreError::Invalid(invalid) => Failure::invalid(invalid, Field::Options),
            other => other.into(),
        })?;
    directory.definitions_changed(company_id);
    Ok(updated)
}

/// Deletes a definition and every value of it: the API's delete and the dashboard's.
pub async fn delete(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    key: &FieldKey,
) -> Result<(), Failure> {
    directory
        .store
        .delete_field(company_id, actor, key)
        .await
        .map_err(|error| match error {
            StoreError::NotFound => field_not_found(key),
            other => other.into(),
        })?;
    directory.definitions_changed(company_id);
    Ok(())
}

/// How many contacts hold a value of the field.
pub async fn count_values(
    directory: &Directory,
    company_id: Uuid,
    key: &FieldKey,
) -> Result<u64, Failure> {
    Ok(directory.store.count_field_values(company_id, key).await?)
}

/// Validates a new definition (docs/reference.md#7-custom-field-definitions); shared by the API and the admin CLI.
fn parse_new_field(input: NewFieldInput) -> Result<NewFieldDefinition, Failure> {
    let key =
        FieldKey::parse_new(&input.key).map_err(|invalid| Failure::invalid(invalid, Field::Key))?;
    let display_name = DisplayName::parse(&input.display_name)
        .map_err(|invalid| Failure::invalid(invalid, Field::DisplayName))?;
    let refused = |message: &str| Failure::Invalid {
        code: ErrorCode::InvalidOptions,
        message: message.to_owned(),
        field: Some(Field::Options),
    };
    let options = match (input.field_type, input.options) {
        (FieldType::Select, Some(options)) => Some(parse_options(options)?),
        (FieldType::Select, None) => {
            return Err(refused(
                "a select field needs options: 1 to 500 distinct non-empty strings",
            ));
        }
        (_, Some(_)) => return Err(refused("options are only allowed on select fields")),
        (_, None) => None,
    };
    Ok(NewFieldDefinition {
        key,
        display_name,
        field_type: input.field_type,
        options,
    })
}

fn parse_options(options: Vec<String>) -> Result<SelectOptions, Failure> {
    SelectOptions::parse(options).map_err(|invalid| Failure::invalid(invalid, Field::Options))
}

fn field_not_found(key: &FieldKey) -> Failure {
    Failure::NotFound {
        code: ErrorCode::CustomFieldNotFound,
        message: format!("no custom field `{key}` is defined"),
    }
}
