//! The one error type of the HTTP edge, and how each variant becomes a response in the
//! seed's `Error` shape (docs/reference.md#the-error-body).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contactd_api::ErrorBody;
use uuid::Uuid;

use super::extract::Json;
use crate::domain::Invalid;
use crate::store::{StoreError, UniqueMember};

/// Everything a request can fail with, each variant naming its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request, or one of its members, is refused.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        /// The JSON path (or query parameter) at fault.
        field: Option<String>,
    },
    /// 401: no usable API key; answered with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 404: nothing by that name in the caller's company, or no such route.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 405: the route exists but not with this method.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// 409: the write would break a uniqueness rule, or was judged against a state that
    /// changed meanwhile (`conflict`).
    #[error("{message}")]
    Conflict {
        code: String,
        message: String,
        field: Option<String>,
        conflicting_contact_id: Option<Uuid>,
    },
    /// 413: the body is larger than the configured limit.
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 431: the request's headers are too large or too many.
    #[error(
        "the request headers are too large: at most {} headers of {} KiB in all are accepted",
        super::MAX_HEADERS,
        super::MAX_HEADER_BYTES / 1024
    )]
    HeadersTooLarge,
    /// 415: the body is not declared as JSON.
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 408: the request's body stopped arriving (`docs/robustness.md`).
    #[error("the request body stopped arriving before it was complete")]
    BodyTimeout,
    /// 414: the request target is longer than the HTTP layer reads.
    #[error("the request URI is too long")]
    UriTooLong,
    /// 400: the request is not well-formed HTTP (a bad request line or header, or
    /// conflicting framing such as two different `Content-Length`s).
    #[error(
        "the request is not well-formed HTTP/1.1: its request line, a header or its framing is malformed"
    )]
    MalformedRequest,
    /// 429: the caller runs as many of these requests at once as allowed; answered with
    /// `Retry-After`.
    #[error("{message}")]
    TooManyRequests { code: &'static str, message: String },
    /// 503: the server is at its connection limit; retrying later may succeed.
    #[error("the server is at its connection limit; try again shortly")]
    TooManyConnections,
    /// 503: the database cannot be reached; retrying later may succeed.
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// 500: a failure the client cannot act on; logged here, never echoed.
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    /// A 400 for a value refused by the domain, at the given request member.
    pub fn invalid(invalid: Invalid, field: impl Into<String>) -> Self {
        Self::BadRequest {
            code: invalid.code,
            message: invalid.message,
            field: Some(field.into()),
        }
    }

    /// A 400 with its own code and sentence.
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<String>,
    ) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            field,
        }
    }

    /// Maps a store error as `From` does, but a missing resource to `not_found`, which
    /// names the resource the request asked for.
    pub fn not_found_as(not_found: impl FnOnce() -> Self) -> impl FnOnce(StoreError) -> Self {
        move |error| match error {
            StoreError::NotFound => not_found(),
            other => other.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> String {
        match self {
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::TooManyRequests { code, .. } => (*code).to_owned(),
            Self::Conflict { code, .. } => code.clone(),
            Self::Unauthorized(_) => "unauthorized".to_owned(),
            Self::MethodNotAllowed => "method_not_allowed".to_owned(),
            Self::PayloadTooLarge(_) => "payload_too_large".to_owned(),
            Self::HeadersTooLarge => "headers_too_large".to_owned(),
            Self::UnsupportedMediaType => "unsupported_media_type".to_owned(),
            Self::BodyTimeout => "body_timeout".to_owned(),
            Self::UriTooLong => "uri_too_long".to_owned(),
            Self::MalformedRequest => "malformed_request".to_owned(),
            Self::TooManyConnections => "too_many_connections".to_owned(),
            Self::Unavailable => "database_unavailable".to_owned(),
            Self::Internal(_) => "internal".to_owned(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DuplicateContact {
                member,
                conflicting_contact_id,
            } => Self::Conflict {
                code: format!("duplicate_{}", member.as_str()),
                message: format!(
                    "another contact already has this {}",
                    match member {
                        UniqueMember::Email => "email",
                        UniqueMember::PhoneNumber => "phone number",
                        UniqueMember::ExtId => "ext_id",
                    }
                ),
                field: Some(member.as_str().to_owned()),
                conflicting_contact_id,
            },
            StoreError::DuplicateFieldKey => Self::Conflict {
                code: "duplicate_custom_field".to_owned(),
                message: "a custom field with this key already exists".to_owned(),
                field: Some("key".to_owned()),
                conflicting_contact_id: None,
            },
            StoreError::DuplicateCompanyName => Self::Conflict {
                code: "duplicate_company".to_owned(),
                message: "a company with this name already exists".to_owned(),
                field: None,
                conflicting_contact_id: None,
            },
            StoreError::DuplicateUserEmail => Self::Conflict {
                code: "duplicate_user".to_owned(),
                message: "a user with this email already exists".to_owned(),
                field: Some("email".to_owned()),
                conflicting_contact_id: None,
            },
            StoreError::OptionsLeftOut { key, missing } => {
                let quoted: Vec<String> =
                    missing.iter().map(|option| format!("{option:?}")).collect();
                let (options, are, them) = match quoted.as_slice() {
                    [one] => (format!("option {one}"), "is", "it"),
                    many => (format!("options {}", many.join(", ")), "are", "them"),
                };
                Self::Conflict {
                    code: "conflict".to_owned(),
                    message: format!(
                        "{options} of {key} {are} stored but missing from this list: another \
                         change may have added {them} while this request was made, and options \
                         are never removed; read the field and send the full list again"
                    ),
                    field: Some("options".to_owned()),
                    conflicting_contact_id: None,
                }
            }
            StoreError::NotFound => Self::NotFound {
                code: "not_found",
                message: "no such resource in your company".to_owned(),
            },
            StoreError::FieldDeleted => Self::bad_request(
                "unknown_custom_field",
                "a custom field named in the request was deleted while it was being applied",
                Some("custom_fields".to_owned()),
            ),
            StoreError::Invalid(invalid) => Self::BadRequest {
                code: invalid.code,
                message: invalid.message,
                field: None,
            },
            other if other.is_unstorable_text() => Self::bad_request(
                "invalid_text",
                "the request holds a character that cannot be stored, such as NUL",
                None,
            ),
            other if other.is_unavailable() => Self::Unavailable,
            other => Self::Internal(other),
        }
    }
}

impl ApiError {
    /// The error body (docs/reference.md#the-error-body) this error is answered with; also what a failed item of a bulk
    /// request carries. A 500's cause is logged here and never put in the body.
    pub fn body(&self) -> ErrorBody {
        let status = self.status();
        if let Self::Internal(source) = self {
            tracing::error!(error = %source, "request failed");
        }
        let (field, conflicting_contact_id) = match self {
            Self::BadRequest { field, .. } => (field.clone(), None),
            Self::Conflict {
                field,
                conflicting_contact_id,
                ..
            } => (field.clone(), *conflicting_contact_id),
            _ => (None, None),
        };
        ErrorBody {
            error: status.as_u16(),
            message: self.to_string(),
            code: Some(self.code()),
            field,
            conflicting_contact_id,
        }
    }
}

/// What a 429 or 503 asks a client to wait before retrying, in seconds.
const RETRY_AFTER_SECS: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}
