//! Every `code` an error can carry: the one list (docs/reference.md#error-codes). The server
//! fails with these and nothing else, the OpenAPI document's `ErrorCode` schema is built
//! from [`ErrorCode::API`], and a test checks the docs' table against it.

use std::fmt;

use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// Writes the enum, its list and its names from one table of `Variant = "code"`.
macro_rules! error_codes {
    (
        api { $($api:ident = $api_code:literal,)* }
        other { $($(#[$doc:meta])* $other:ident = $other_code:literal,)* }
    ) => {
        /// A stable machine code of an error body's `code` (docs/reference.md#error-codes).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($api,)*
            $($(#[$doc])* $other,)*
        }

        impl ErrorCode {
            /// Every code the HTTP API answers with, in the order of its name.
            pub const API: &[ErrorCode] = &[$(ErrorCode::$api,)*];
            /// The codes only the admin commands, `contactd import` and the dashboard use,
            /// in the same shape; the API never answers them.
            pub const OTHER: &[ErrorCode] = &[$(ErrorCode::$other,)*];

            /// The code as it is written in a body: snake_case.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$api => $api_code,)*
                    $(ErrorCode::$other => $other_code,)*
                }
            }
        }
    };
}

error_codes! {
    api {
    BodyTimeout = "body_timeout",
    Conflict = "conflict",
    ContactNotFound = "contact_not_found",
    CursorExpired = "cursor_expired",
    CustomFieldNotFound = "custom_field_not_found",
    DatabaseUnavailable = "database_unavailable",
    DuplicateCustomField = "duplicate_custom_field",
    DuplicateEmail = "duplicate_email",
    DuplicateExtId = "duplicate_ext_id",
    DuplicateInBatch = "duplicate_in_batch",
    DuplicatePhoneNumber = "duplicate_phone_number",
    EventNotFound = "event_not_found",
    HeadersTooLarge = "headers_too_large",
    IdMismatch = "id_mismatch",
    IdempotencyInProgress = "idempotency_in_progress",
    IdempotencyKeyReused = "idempotency_key_reused",
    IdentifierRequired = "identifier_required",
    InsufficientScope = "insufficient_scope",
    Internal = "internal",
    InvalidBody = "invalid_body",
    InvalidCursor = "invalid_cursor",
    InvalidCustomFieldKey = "invalid_custom_field_key",
    InvalidCustomFieldValue = "invalid_custom_field_value",
    InvalidDescription = "invalid_description",
    InvalidDisplayName = "invalid_display_name",
    InvalidEmail = "invalid_email",
    InvalidEventId = "invalid_event_id",
    InvalidEventType = "invalid_event_type",
    InvalidExtId = "invalid_ext_id",
    InvalidId = "invalid_id",
    InvalidIdempotencyKey = "invalid_idempotency_key",
    InvalidIdentifier = "invalid_identifier",
    InvalidJson = "invalid_json",
    InvalidLimit = "invalid_limit",
    InvalidName = "invalid_name",
    InvalidOptions = "invalid_options",
    InvalidPath = "invalid_path",
    InvalidPhoneNumber = "invalid_phone_number",
    InvalidPrecondition = "invalid_precondition",
    InvalidQuery = "invalid_query",
    InvalidRequest = "invalid_request",
    InvalidText = "invalid_text",
    InvalidWebhookUrl = "invalid_webhook_url",
    MalformedRequest = "malformed_request",
    MatchOnRequired = "match_on_required",
    MethodNotAllowed = "method_not_allowed",
    MissingId = "missing_id",
    NotFound = "not_found",
    PayloadTooLarge = "payload_too_large",
    PreconditionFailed = "precondition_failed",
    RateLimited = "rate_limited",
    ReservedCustomFieldKey = "reserved_custom_field_key",
    RouteNotFound = "route_not_found",
    TooManyConnections = "too_many_connections",
    TooManyExports = "too_many_exports",
    TooManyItems = "too_many_items",
    TooManyWebhooks = "too_many_webhooks",
    Unauthorized = "unauthorized",
    UnknownCustomField = "unknown_custom_field",
    UnsupportedMediaType = "unsupported_media_type",
    UnsupportedMember = "unsupported_member",
    UriTooLong = "uri_too_long",
    WebhookNotFound = "webhook_not_found",
    }
    other {
    /// a company with this name exists (`contactd company create`)
    DuplicateCompany = "duplicate_company",
    /// a dashboard user with this email exists (`contactd user create`)
    DuplicateUser = "duplicate_user",
    /// a `--default-phone-region` that is no two-letter region
    InvalidDefaultRegion = "invalid_default_region",
    /// a password not 8 to 256 characters long (`contactd user`, the dashboard)
    InvalidPassword = "invalid_password",
    /// a CSV row with more or fewer cells than its header, or an NDJSON line that is not an object (`contactd import`)
    InvalidRow = "invalid_row",
    /// the dashboard's field form without a type chosen
    InvalidType = "invalid_type",
    /// an import file line that is not UTF-8 (`contactd import`)
    InvalidUtf8 = "invalid_utf8",
    /// an import file that cannot be read on from this line (`contactd import`)
    UnreadableRow = "unreadable_row",
    /// a CSV file that ends inside a quoted cell (`contactd import`)
    UnterminatedQuote = "unterminated_quote",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A string that is one of [`ErrorCode::API`]. A client reads `code` as a string, so that
/// a code added by a newer server still decodes.
impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A stable machine code: what went wrong, for a client to act on (the table of \
                 docs/reference.md#error-codes says what to do for each)",
            ))
            .enum_values(Some(ErrorCode::API.iter().map(|code| code.as_str())))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// A code equals its name, so that a test can say `assert_eq!(code, "invalid_email")`.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
