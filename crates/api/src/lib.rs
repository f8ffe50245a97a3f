//! Wire types of the contactd API: every request and response body, and the error body.
//!
//! The server deserialises requests into these types and serialises responses from them;
//! the client does the reverse, so the two cannot disagree about the shape of a message.
//! Request types reject unknown members (a typo must never be silently dropped), and
//! update types tell an omitted member (`None`) from an explicit `null` (`Some(None)`).

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

mod error_code;
pub use error_code::ErrorCode;

/// The body of every error response, for every status: the seed's `Error` schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status code, repeated in the body.
    pub error: u16,
    /// A human sentence saying what went wrong.
    pub message: String,
    /// A stable snake_case machine code, such as `invalid_phone_number`: one of
    /// [`ErrorCode`], read as a string so that a newer server's code still decodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ErrorCode>, nullable = false)]
    pub code: Option<String>,
    /// The JSON path of the request member at fault, such as `custom_fields.set[0].value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On a 409, the contact that already holds the conflicting identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicting_contact_id: Option<Uuid>,
}

/// Request bodies are JSON objects only. serde's derived `Deserialize` also reads a struct
/// from a JSON array, filling members by position, which would let `["a@example.com"]` create
/// a contact; so each request type derives with `remote = "Self"` (an inherent
/// `deserialize`/`serialize`) and this macro implements the traits around it, accepting
/// only a map.
macro_rules! object_only {
    ($($name:ident),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData::<$name>))
            }
        }

        impl ReadFromObject for $name {
            fn read_from_object<'de, A: de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
                $name::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $name::serialize(self, serializer)
            }
        }
    )*};
}

object_only!(
    CustomFieldInput,
    CreateContact,
    UpdateContact,
    CustomFieldChanges,
    CreateCustomField,
    UpdateCustomField,
    UpsertContact,
    BatchUpsert,
);

/// A request type read from the members of a JSON object.
trait ReadFromObject: Sized {
    fn read_from_object<'de, A: de::MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// Accepts a JSON object and nothing else, then reads the request type from its members.
struct ObjectVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: ReadFromObject> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::read_from_object(map)
    }
}

/// A phone number as sent: the seed allows a JSON string or a JSON number.
#[derive(Debug, Clone, PartialEq)]
pub enum PhoneNumberInput {
    /// `"+1 415 555 2671"`, `"(415) 555-2671"`, …
    Text(String),
    /// `14155552671`; read in the server's default region.
    Number(serde_json::Number),
}

impl Serialize for PhoneNumberInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Number(number) => number.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for PhoneNumberInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PhoneVisitor;

        impl Visitor<'_> for PhoneVisitor {
            type Value = PhoneNumberInput;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a phone number as a string or a number")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(PhoneNumberInput::Text(value.to_owned()))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(PhoneNumberInput::Number(value.into()))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(PhoneNumberInput::Number(value.into()))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                serde_json::Number::from_f64(value)
                    .map(PhoneNumberInput::Number)
                    .ok_or_else(|| E::custom("phone number is not a finite number"))
            }
        }

        deserializer.deserialize_any(PhoneVisitor)
    }
}

impl PartialSchema for PhoneNumberInput {
    fn schema() -> RefOr<Schema> {
        one_of(
            "A phone number, as a string in any common format or as a JSON number of digits.",
            &[Type::String, Type::Number],
        )
    }
}

impl ToSchema for PhoneNumberInput {}

/// A custom field value on the wire: a string, or a number or boolean for those types.
fn custom_value_schema() -> RefOr<Schema> {
    one_of(
        "A string; a JSON number for `number` fields and a boolean for `boolean` fields are \
         also accepted.",
        &[Type::String, Type::Number, Type::Boolean],
    )
}

fn one_of(description: &str, types: &[Type]) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(description));
    for schema_type in types {
        one_of = one_of.item(ObjectBuilder::new().schema_type(schema_type.clone()));
    }
    RefOr::T(Schema::OneOf(one_of.build()))
}

impl From<&str> for PhoneNumberInput {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<u64> for PhoneNumberInput {
    fn from(number: u64) -> Self {
        Self::Number(number.into())
    }
}

/// One custom field value to write: `{"key": "plan", "value": "pro"}`.
///
/// `value` is kept as JSON because its accepted forms depend on the field's type, which
/// only the server knows (docs/reference.md#custom-field-values: `"4.50"` and `4.5` are
/// both a number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct CustomFieldInput {
    /// Machine name of a defined custom field.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub key: String,
    /// The value, as a string, or a JSON number/boolean for those types.
    #[schema(schema_with = custom_value_schema)]
    pub value: serde_json::Value,
}

/// Body of `POST /api/v1/contacts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct CreateContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<PhoneNumberInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 255)]
    pub ext_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomFieldInput>,
}

/// Body of `PATCH /api/v1/contacts` (the seed's `ContactUpdateByIdentifierPayload`) and of
/// `PATCH /api/v1/contacts/{id}`.
///
/// For each member, `None` means omitted (left unchanged) and `Some(None)` means `null`
/// (cleared).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct UpdateContact {
    /// The contact to update, in any identifier form; required by the body form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    pub email: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    pub phone_number: Option<Option<PhoneNumberInput>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    #[schema(min_length = 1, max_length = 255)]
    pub ext_id: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    #[schema(max_length = 255)]
    pub first_name: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    #[schema(max_length = 255)]
    pub last_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<CustomFieldChanges>,
}

/// The `custom_fields` member of an update: values to write and keys to clear.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct CustomFieldChanges {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<CustomFieldInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// The most items one array create or batch upsert may carry
/// (docs/reference.md#11-bulk-batch-writes-import-and-export).
pub const MAX_BULK_ITEMS: usize = 1000;

/// Response of an array `POST /api/v1/contacts` (Alpharun's "Add contacts" form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportSummary {
    /// Items that created a contact.
    pub successful_imports_count: u64,
    /// Items that did not; each is in `failed_contacts`.
    pub failed_imports_count: u64,
    /// Every failed item, in request order.
    pub failed_contacts: Vec<FailedContact>,
}

/// A failed item of an array create: the item's members as sent, its position in the
/// request, and why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailedContact {
    /// The position of the item in the request array, from 0.
    pub index: usize,
    pub error: ErrorBody,
    /// The item's own members, echoed as sent (but for members named `index` or `error`,
    /// which no contact has).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub contact: serde_json::Map<String, serde_json::Value>,
}

/// The member a batch upsert matches existing contacts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchOn {
    ExtId,
    Email,
    PhoneNumber,
}

impl MatchOn {
    /// The member's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExtId => "ext_id",
            Self::Email => "email",
            Self::PhoneNumber => "phone_number",
        }
    }
}

impl fmt::Display for MatchOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order of a contact list (`sort=`): by when contacts were created or last updated,
/// `-` first for the latest first; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub enum ContactSort {
    /// Newest first: the order when `sort` is not given.
    #[default]
    #[serde(rename = "-created_at")]
    NewestCreated,
    #[serde(rename = "created_at")]
    OldestCreated,
    #[serde(rename = "-updated_at")]
    RecentlyUpdated,
    #[serde(rename = "updated_at")]
    LeastRecentlyUpdated,
}

impl ContactSort {
    /// Every order.
    pub const ALL: [ContactSort; 4] = [
        Self::NewestCreated,
        Self::OldestCreated,
        Self::RecentlyUpdated,
        Self::LeastRecentlyUpdated,
    ];

    /// The order's name, as `sort=` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewestCreated => "-created_at",
            Self::OldestCreated => "created_at",
            Self::RecentlyUpdated => "-updated_at",
            Self::LeastRecentlyUpdated => "updated_at",
        }
    }

    /// Whether the order is by `updated_at` rather than `created_at`.
    pub fn by_update(self) -> bool {
        matches!(self, Self::RecentlyUpdated | Self::LeastRecentlyUpdated)
    }

    /// Whether the order runs from the latest time to the earliest.
    pub fn descending(self) -> bool {
        matches!(self, Self::NewestCreated | Self::RecentlyUpdated)
    }
}

impl fmt::Display for ContactSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `GET /api/v1/contacts/count`: how many contacts the filters find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactCount {
    pub count: u64,
}

/// Body of `POST /api/v1/contacts/batch`.
///
/// The items stay raw JSON here so that one malformed item fails alone, with its index; the
/// server reads each as an [`UpsertContact`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct BatchUpsert {
    pub match_on: MatchOn,
    /// At most 1,000 contacts, each an `UpsertContact` carrying its `match_on` member and
    /// checked on its own (an item that is refused fails alone, in its result).
    #[schema(value_type = Vec<Object>, max_items = 1000)]
    pub contacts: Vec<Box<serde_json::value::RawValue>>,
}

/// One item of a batch upsert: a create payload, read with update semantics when it
/// matches an existing contact (an omitted member is kept, `null` clears it, and
/// `custom_fields` sets the keys it names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct UpsertContact {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    pub email: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    pub phone_number: Option<Option<PhoneNumberInput>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    #[schema(min_length = 1, max_length = 255)]
    pub ext_id: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    #[schema(max_length = 255)]
    pub first_name: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_with::rust::double_option"
    )]
    #[schema(max_length = 255)]
    pub last_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomFieldInput>,
}

/// Response of `POST /api/v1/contacts/batch`: one result per item, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResults {
    pub results: Vec<BatchResult>,
}

/// The outcome of one batch item: `status` 200 with `created` and `contact`, or an error
/// status with `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    /// The position of the item in the request, from 0.
    pub index: usize,
    /// 200, or the status the item would have had as a request of its own.
    pub status: u16,
    /// Whether the item created a contact (`false`: it updated one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    /// Whether the item changed what was stored: `false` when the contact it matched
    /// already held every value it carried, so nothing was written and `updated_at` did not
    /// move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The formats of `GET /api/v1/contacts/export`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One contact object (docs/reference.md#3-the-contact-object) per line.
    #[default]
    Ndjson,
    /// A header row, then one row per contact (RFC 4180).
    Csv,
}

impl ExportFormat {
    /// The format's name in the query string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }
}

/// The CSV columns of an export, before one column per custom field (docs/reference.md#export).
pub const CSV_COLUMNS: [&str; 8] = [
    "id",
    "email",
    "phone_number",
    "ext_id",
    "first_name",
    "last_name",
    "created_at",
    "updated_at",
];

/// A contact as returned by create, fetch, update and list, bare, not wrapped
/// (docs/reference.md#3-the-contact-object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: Uuid,
    /// Omitted when the contact has none, as are the other members below: the seed types
    /// them as plain strings, never `null` (docs/reference.md#contact-members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub email: Option<String>,
    /// E.164, such as `+14155552671`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ext_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_name: Option<String>,
    /// Only the fields that hold a value, ordered by key.
    pub custom_fields: Vec<ContactCustomField>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
}

/// One custom field value of a contact, with its definition's type and display name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactCustomField {
    pub key: String,
    /// A JSON number for `number`, a boolean for `boolean`, a string otherwise.
    #[schema(schema_with = custom_value_schema)]
    pub value: serde_json::Value,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub display_name: String,
}

/// Response of `GET /api/v1/contacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactList {
    pub data: ContactListData,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The `data` member of [`ContactList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactListData {
    pub contacts: Vec<Contact>,
}

/// Response of `DELETE /api/v1/contacts/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeletedContact {
    pub id: Uuid,
    pub deleted: bool,
}

/// Response of `DELETE /api/v1/custom-fields/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeletedCustomField {
    pub key: String,
    pub deleted: bool,
}

/// Response of the `/healthz` and `/readyz` probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready` (the database answers).
    pub status: String,
    /// The server's release, such as `0.1.0`.
    pub version: String,
    /// The git commit the server was built from; absent when it was not built from a git
    /// checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The schema version of the database the server runs on: the highest migration it
    /// knows, which it applied at start.
    pub schema_version: i64,
}

/// The type of a custom field, which fixes how its values are read and returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Up to 10,000 characters.
    Text,
    /// A finite number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// Exactly one of the field's options.
    Select,
}

impl FieldType {
    /// The type's name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Select => "select",
        }
    }

    /// Reads a type from its wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Text,
            Self::Number,
            Self::Boolean,
            Self::Date,
            Self::Select,
        ]
        .into_iter()
        .find(|field_type| field_type.as_str() == name)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /api/v1/custom-fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct CreateCustomField {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub key: String,
    pub display_name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Required for `select`, forbidden otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 500)]
    pub options: Option<Vec<String>>,
}

/// Body of `PATCH /api/v1/custom-fields/{key}`: a new display name, and options a select
/// field gains (existing options are never removed: stored values would break).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct UpdateCustomField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The full option list wanted: every existing option plus the new ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// A custom field definition (docs/reference.md#7-custom-field-definitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomField {
    pub key: String,
    pub display_name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Present for `select` fields only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
}

/// Response of `GET /api/v1/custom-fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldList {
    pub data: CustomFieldListData,
}

/// The `data` member of [`CustomFieldList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldListData {
    pub custom_fields: Vec<CustomField>,
}

/// What an API key may do (docs/reference.md#scopes). A key has a set of them; every
/// `/api/v1` route needs one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    /// Fetch and list contacts, and read the custom field definitions.
    #[serde(rename = "contacts:read")]
    ContactsRead,
    /// Create, update, upsert and delete contacts.
    #[serde(rename = "contacts:write")]
    ContactsWrite,
    /// Export every contact at once.
    #[serde(rename = "contacts:export")]
    ContactsExport,
    /// Create, change and delete custom field definitions.
    #[serde(rename = "fields:write")]
    FieldsWrite,
    /// Read the event feed and contact histories.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Create, change and delete webhook endpoints, read and retry their deliveries.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    /// Every scope, in the order the reference lists them: what a key created without
    /// naming scopes has.
    pub const ALL: [Self; 6] = [
        Self::ContactsRead,
        Self::ContactsWrite,
        Self::ContactsExport,
        Self::FieldsWrite,
        Self::EventsRead,
        Self::WebhooksManage,
    ];

    /// The scope's name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactsRead => "contacts:read",
            Self::ContactsWrite => "contacts:write",
            Self::ContactsExport => "contacts:export",
            Self::FieldsWrite => "fields:write",
            Self::EventsRead => "events:read",
            Self::WebhooksManage => "webhooks:manage",
        }
    }

    /// Reads a scope from its name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    /// What the scope allows, in a few words.
    pub fn summary(self) -> &'static str {
        match self {
            Self::ContactsRead => "fetch and list contacts, read custom field definitions",
            Self::ContactsWrite => "create, update, upsert and delete contacts",
            Self::ContactsExport => "export every contact at once",
            Self::FieldsWrite => "create, change and delete custom field definitions",
            Self::EventsRead => "read the event feed and contact histories",
            Self::WebhooksManage => "manage webhook endpoints and their deliveries",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event records (docs/reference.md#13-change-events-history-and-webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "contact.created")]
    ContactCreated,
    /// Only when something changed.
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.deleted")]
    ContactDeleted,
    #[serde(rename = "custom_field.created")]
    CustomFieldCreated,
    #[serde(rename = "custom_field.updated")]
    CustomFieldUpdated,
    #[serde(rename = "custom_field.deleted")]
    CustomFieldDeleted,
}

impl EventType {
    /// Every type, in the order the reference lists them.
    pub const ALL: [Self; 6] = [
        Self::ContactCreated,
        Self::ContactUpdated,
        Self::ContactDeleted,
        Self::CustomFieldCreated,
        Self::CustomFieldUpdated,
        Self::CustomFieldDeleted,
    ];

    /// The type's name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactCreated => "contact.created",
            Self::ContactUpdated => "contact.updated",
            Self::ContactDeleted => "contact.deleted",
            Self::CustomFieldCreated => "custom_field.created",
            Self::CustomFieldUpdated => "custom_field.updated",
            Self::CustomFieldDeleted => "custom_field.deleted",
        }
    }

    /// Reads a type from its wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a change: an API key, a dashboard user, or an admin command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventActor {
    /// `api_key`, `user` or `cli`.
    #[serde(rename = "type")]
    pub actor_type: String,
    /// The key's or the user's id; for `cli`, the command, such as `field create`.
    pub id: String,
}

/// One change, as the feed, a contact's history and a webhook delivery show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// `evt_` and 32 hex digits; a webhook delivery's `webhook-id`.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(with = "millis")]
    pub occurred_at: DateTime<Utc>,
    pub actor: EventActor,
    pub data: EventData,
}

/// What an event is about: a contact (with its changes, for `contact.updated`) or a
/// custom field definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventData {
    /// The contact after the change; for `contact.deleted`, as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// For `contact.updated`: each member or `custom_fields.KEY` that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub changes: Option<std::collections::BTreeMap<String, Change>>,
    /// The definition after the change; for `custom_field.deleted`, as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_field: Option<CustomField>,
}

/// A value before and after a change; `null` for "had no value".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

/// Response of `GET /api/v1/events` and `GET /api/v1/contacts/{id}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    pub data: EventListData,
    /// Pass as `after` (the feed) or `cursor` (a history) for the next page. The feed's is
    /// always a string, also on an empty page: poll with it. A history's is `null` on its
    /// last page.
    pub next_cursor: Option<String>,
}

/// The `data` member of [`EventList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventListData {
    pub events: Vec<Event>,
}

/// Body of `POST /api/v1/webhooks` (docs/reference.md#webhooks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: `http` or `https`, at most 2,048 characters, on a
    /// public address unless the server runs with `--webhook-allow-private`.
    pub url: String,
    /// The types delivered; every type when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<EventType>>,
    /// At most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `PATCH /api/v1/webhooks/{id}`: the members given are changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An empty list means every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<EventType>>,
    /// `true` also resumes an endpoint disabled for failing, from where it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// An empty string removes the description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A webhook endpoint (docs/reference.md#webhooks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// The types delivered; every type when empty.
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// Why the server disabled it: `failing` (every delivery failed for 5 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
    /// `whsec_` and the base64 of 32 random bytes: only in the answers to create and
    /// rotate-secret, never again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Response of `GET /api/v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub data: WebhookListData,
}

/// The `data` member of [`WebhookList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookListData {
    pub webhooks: Vec<Webhook>,
}

/// Response of `DELETE /api/v1/webhooks/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeletedWebhook {
    pub id: Uuid,
    pub deleted: bool,
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx within 10 seconds.
    Delivered,
    /// It did not; another attempt is due at `next_attempt_at`.
    Retrying,
    /// It did not, and it was the last attempt of the schedule.
    Failed,
}

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    /// The event's id, also the delivery's `webhook-id`.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the attempt failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// From sending the request to the end of the response read.
    pub duration_ms: u64,
    #[serde(with = "millis")]
    pub attempted_at: DateTime<Utc>,
    /// For `retrying`: when the next attempt is due.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_millis"
    )]
    #[schema(value_type = Option<String>)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Response of `GET /api/v1/webhooks/{id}/deliveries`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttemptList {
    pub data: DeliveryAttemptListData,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The `data` member of [`DeliveryAttemptList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttemptListData {
    pub deliveries: Vec<DeliveryAttempt>,
}

/// Response of `POST /api/v1/webhooks/{id}/deliveries/{event_id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduledDelivery {
    pub event_id: String,
    /// The number the attempt will have.
    pub attempt: u32,
    #[serde(with = "millis")]
    pub next_attempt_at: DateTime<Utc>,
}

/// Timestamps on the wire: RFC 3339 in UTC with exactly three fractional digits,
/// `2026-11-26T21:00:00.123Z`, so that they sort as strings and compare across languages.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// [`millis`] for a timestamp that may be absent.
mod optional_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::millis::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct Millis(#[serde(with = "super::millis")] DateTime<Utc>);
        Ok(Option::<Millis>::deserialize(deserializer)?.map(|Millis(at)| at))
    }
}

/// Formats a timestamp as the API does, for callers that print one outside a body.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
