//! A contact's `ETag`, and the `If-Match` and `If-None-Match` conditions on it
//! (docs/reference.md#etags).
//!
//! The entity-tag lists are read here rather than with the `headers` crate: its `IfMatch`
//! can only test one tag in the handler, and the test has to run in the store's
//! transaction, once the contact's row is locked, where the tags travel as a
//! [`Precondition`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contactd_api as api;
use contactd_api::ErrorCode;

use super::error::ApiError;
use super::extract::Json;
use crate::store::{Contact, ContactVersion, Precondition};

/// A contact answered with its `ETag`.
pub fn contact_response(contact: Contact) -> Response {
    let etag = etag(&contact.version());
    let mut response = Json(api::Contact::from(contact)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// The `ETag` of a contact at `version`: a strong entity tag.
pub fn etag(version: &ContactVersion) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", version.as_str())).expect("a version is hex digits")
}

/// One condition header as sent: `*`, or its entity tags.
enum Tags {
    Any,
    /// Each tag's opaque part, and whether it was weak (`W/"…"`).
    Listed(Vec<(String, bool)>),
}

/// `If-Match` on a write: the contact must be at one of the versions named, compared
/// strongly (a weak tag matches nothing). `*`, or no header, asks nothing more than that
/// the contact exists, which every write requires anyway.
pub struct IfMatch(pub Precondition);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(
            match tags(&parts.headers, header::IF_MATCH, "If-Match")? {
                None | Some(Tags::Any) => Precondition::None,
                Some(Tags::Listed(tags)) => Precondition::VersionIn(
                    tags.into_iter()
                        .filter(|(_, weak)| !weak)
                        .map(|(tag, _)| ContactVersion::quoted(&tag))
                        .collect(),
                ),
            },
        ))
    }
}

/// `If-None-Match` on a read: whether the client already holds the contact's current
/// version, compared weakly.
pub struct IfNoneMatch(Option<Tags>);

impl IfNoneMatch {
    /// 304 Not Modified, with the `ETag`, when the client holds `contact`'s version.
    pub fn not_modified(&self, contact: &Contact) -> Option<Response> {
        let version = contact.version();
        let held = match &self.0 {
            None => false,
            Some(Tags::Any) => true,
            Some(Tags::Listed(tags)) => tags.iter().any(|(tag, _)| tag == version.as_str()),
        };
        held.then(|| (StatusCode::NOT_MODIFIED, [(header::ETAG, etag(&version))]).into_response())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(tags(
            &parts.headers,
            header::IF_NONE_MATCH,
            "If-None-Match",
        )?))
    }
}

/// Reads every `name` header as one list (RFC 9110, "If-Match":
/// `"*" / #entity-tag`, `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`).
fn tags(headers: &HeaderMap, name: HeaderName, shown: &str) -> Result<Option<Tags>, ApiError> {
    let malformed = || {
        ApiError::bad_request(
            ErrorCode::InvalidPrecondition,
            format!(
                "{shown} must be * or a list of entity tags, such as \"3f2a…\" as the ETag of \
                 the contact gave it"
            ),
            Some(shown.to_owned()),
        )
    };
    let mut values = headers.get_all(&name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut listed = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| malformed())?.trim();
        if text == "*" {
            return Ok(Some(Tags::Any));
        }
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let (weak, quoted) = match rest.strip_prefix("W/") {
                Some(after) => (true, after),
                None => (false, rest),
            };
            let opened = quoted.strip_prefix('"').ok_or_else(malformed)?;
            let end = opened.find('"').ok_or_else(malformed)?;
            listed.push((opened[..end].to_owned(), weak));
            rest = opened[end + 1..].trim_start_matches([' ', '\t']);
            if !rest.is_empty() && !rest.starts_with(',') {
                return Err(malformed());
            }
        }
    }
    if listed.is_empty() {
        return Err(malformed());
    }
    Ok(Some(Tags::Listed(listed)))
}
