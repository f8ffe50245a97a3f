//! Reading a form body or a page's query string: anything that cannot be read, or that is
//! not UTF-8 text without NUL, is an error page, not axum's plain text.

use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::page::PageError;

/// A form body; a body that cannot be read, or that holds a NUL or bytes that are not
/// UTF-8 text ([`readable_text`]), is an error page, not axum's plain text.
#[derive(Debug)]
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PageError> {
        let (parts, body) = request.into_parts();
        // Every form route runs behind the CSRF check, which has read the body within the
        // body limit and handed it on in memory: this takes what is already there.
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|_| PageError::BadForm("the form could not be read".to_owned()))?;
        readable_text(&bytes).map_err(|reason| PageError::BadForm(format!("the form {reason}")))?;
        Form::<T>::from_request(Request::from_parts(parts, Body::from(bytes)), state)
            .await
            .map(|Form(form)| Self(form))
            .map_err(|rejection| PageError::BadForm(rejection.body_text()))
    }
}

/// Refuses URL-encoded input (a dashboard address or form body) that decodes to anything
/// but UTF-8 text without NUL: the one check every such input passes before it is read
/// (`docs/robustness.md#errors-in-the-shape-whatever-the-input`).
///
/// The form decoder replaces bytes that are not UTF-8 with U+FFFD, so such input would
/// otherwise be stored as something the client never sent; and PostgreSQL text cannot hold
/// NUL, so a NUL would be a 500 there and stored on SQLite. Decoding the whole input at once
/// is exact: `&`, `=` and `+` are ASCII, so it is UTF-8 exactly when every decoded name and
/// value is.
fn readable_text(encoded: &[u8]) -> Result<(), &'static str> {
    match percent_encoding::percent_decode(encoded).decode_utf8() {
        Ok(text) if !text.contains('\0') => Ok(()),
        Ok(_) => Err("holds a NUL character"),
        Err(_) => Err("holds bytes that are not UTF-8 text"),
    }
}

/// A page's query string, refused as [`FormBody`] refuses a form.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        readable_text(parts.uri.query().unwrap_or_default().as_bytes())
            .map_err(|reason| PageError::BadForm(format!("the address {reason}")))?;
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| Self(query))
            .map_err(|rejection| PageError::BadForm(rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_text_refuses_nul_and_bytes_that_are_not_utf_8_however_encoded() {
        for ok in [
            "",
            "a=b&c=d",
            "q=caf%C3%A9",
            "q=%2500",
            "q=a+b",
            "q=%%41",
            "name=%E2%82%AC",
        ] {
            assert_eq!(readable_text(ok.as_bytes()), Ok(()), "{ok}");
        }
        for nul in ["q=%00", "%00=x", "q=a%00b", "q=%%00"] {
            assert_eq!(
                readable_text(nul.as_bytes()),
                Err("holds a NUL character"),
                "{nul}"
            );
        }
        assert!(readable_text(b"q=a\0b").is_err());
        for odd in [
            "q=%FF",
            "q=caf%C3",
            "q=%C3&r=%A9",
            "q=%ED%A0%80",
            "q=%C0%80",
        ] {
            assert_eq!(
                readable_text(odd.as_bytes()),
                Err("holds bytes that are not UTF-8 text"),
                "{odd}"
            );
        }
    }
}
