//! The one error type of the HTTP edge, and how each variant becomes a response in the
//! seed's `Error` shape (docs/reference.md#the-error-body).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contactd_api::ErrorCode;
use contactd_api::{ErrorBody, Scope};
use uuid::Uuid;

use super::extract::Json;
use crate::failure::{Failure, Field, ValuePart};
use crate::store::{ContactVersion, StoreError};

/// Everything a request can fail with, each variant naming its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request, or one of its members, is refused.
    #[error("{message}")]
    BadRequest {
        code: ErrorCode,
        message: String,
        /// The JSON path (or query parameter) at fault.
        field: Option<String>,
    },
    /// 401: no usable API key; answered with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: the key lacks the scope the route needs; answered with `WWW-Authenticate`
    /// naming it (RFC 6750).
    #[error("this API key lacks the scope {needed}, which this request needs")]
    InsufficientScope { needed: Scope },
    /// 404: nothing by that name in the caller's company, or no such route.
    #[error("{message}")]
    NotFound { code: ErrorCode, message: String },
    /// 410: what was asked for existed once and no longer does.
    #[error("{message}")]
    Gone { code: ErrorCode, message: String },
    /// 405: the route exists but not with this method.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// 409: the write would break a uniqueness rule, or was judged against a state that
    /// changed meanwhile (`conflict`).
    #[error("{message}")]
    Conflict {
        code: ErrorCode,
        message: String,
        field: Option<String>,
        conflicting_contact_id: Option<Uuid>,
    },
    /// 412: the contact is not at a version `If-Match` names; answered with its `ETag`.
    #[error(
        "the contact has changed since the version If-Match names: read it again (its current \
         ETag is in this response) and decide afresh"
    )]
    PreconditionFailed { current: ContactVersion },
    /// 409: a request with this `Idempotency-Key` is still running
    /// (docs/reference.md#idempotency); answered with `Retry-After`.
    #[error(
        "a request with this Idempotency-Key is still running: retry after the seconds \
         Retry-After gives to get its answer"
    )]
    IdempotencyInProgress,
    /// 422: the `Idempotency-Key` was used for a different request.
    #[error(
        "this Idempotency-Key was used for a different request (another method, path, \
         If-Match or body) in the last 24 hours: send a new key for a new request"
    )]
    IdempotencyKeyReused,
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
    TooManyRequests { code: ErrorCode, message: String },
    /// 429: the key has used its rate limit (docs/reference.md#rate-limits); answered with
    /// `Retry-After`, the whole seconds until a request would be let through.
    #[error("this API key is over its rate limit: wait the seconds Retry-After gives, then retry")]
    RateLimited { retry_after: std::time::Duration },
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
    /// A 400 with its own code and sentence.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>, field: Option<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            field,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Gone { .. } => StatusCode::GONE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } | Self::IdempotencyInProgress => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::TooManyRequests { .. } | Self::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unavailable | Self::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::Gone { code, .. }
            | Self::Conflict { code, .. }
            | Self::TooManyRequests { code, .. } => *code,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::PreconditionFailed { .. } => ErrorCode::PreconditionFailed,
            Self::IdempotencyInProgress => ErrorCode::IdempotencyInProgress,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::HeadersTooLarge => ErrorCode::HeadersTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::BodyTimeout => ErrorCode::BodyTimeout,
            Self::UriTooLong => ErrorCode::UriTooLong,
            Self::MalformedRequest => ErrorCode::MalformedRequest,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::TooManyConnections => ErrorCode::TooManyConnections,
            Self::Unavailable => ErrorCode::DatabaseUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Invalid {
                field,
                code,
                message,
            } => Self::BadRequest {
                code,
                message,
                field: field.as_ref().map(json_path),
            },
            Failure::Conflict {
                field,
                code,
                message,
                conflicting_contact_id,
            } => Self::Conflict {
                code,
                message,
                field: field.as_ref().map(json_path),
                conflicting_contact_id,
            },
            Failure::VersionChanged { current } => Self::PreconditionFailed { current },
            Failure::NotFound { code, message } => Self::NotFound { code, message },
            Failure::Gone { code, message } => Self::Gone { code, message },
            Failure::Store(error) if error.is_unavailable() => Self::Unavailable,
            Failure::Store(error) => Self::Internal(error),
            // The API's error body has one error: the first, as if checking stopped there.
            several @ Failure::Several(_) => several.first().into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Failure::from(error).into()
    }
}

/// Where a part of the input is in the request body, as the error body's `field` names it.
fn json_path(field: &Field) -> String {
    let value_part = |part: ValuePart| match part {
        ValuePart::Key => "key",
        ValuePart::Value => "value",
    };
    match field {
        Field::Email => "email".to_owned(),
        Field::PhoneNumber => "phone_number".to_owned(),
        Field::ExtId => "ext_id".to_owned(),
        Field::FirstName => "first_name".to_owned(),
        Field::LastName => "last_name".to_owned(),
        Field::CustomFields => "custom_fields".to_owned(),
        Field::CustomField(at) => format!("custom_fields[{}].{}", at.index, value_part(at.part)),
        Field::SetCustomField(at) => {
            format!("custom_fields.set[{}].{}", at.index, value_part(at.part))
        }
        Field::RemovedCustomField { index, .. } => format!("custom_fields.remove[{index}]"),
        Field::Key => "key".to_owned(),
        Field::DisplayName => "display_name".to_owned(),
        Field::FieldType => "type".to_owned(),
        Field::Options => "options".to_owned(),
        Field::Url => "url".to_owned(),
        Field::Description => "description".to_owned(),
        Field::Query(name) => name.clone(),
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
            code: Some(self.code().as_str().to_owned()),
            field,
            conflicting_contact_id,
        }
    }
}

/// What a 429, a 503 or a 409 `idempotency_in_progress` asks a client to wait before retrying, in seconds.
const RETRY_AFTER_SECS: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if let Self::InsufficientScope { needed } = &self {
            let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{needed}\"");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&challenge).expect("scope names are ASCII"),
            );
        }
        if let Self::PreconditionFailed { current } = &self {
            response
                .headers_mut()
                .insert(header::ETAG, super::preconditions::etag(current));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::RateLimited { retry_after } = &self {
            // Whole seconds, rounded up: a client that waits them is let through.
            let seconds = retry_after.as_millis().div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
        } else if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) || matches!(self, Self::IdempotencyInProgress)
        {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}
