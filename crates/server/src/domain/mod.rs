//! Domain types: values that have been parsed and can no longer be invalid (docs/reference.md#4-identifiers, docs/reference.md#5-normalisation-and-validation, docs/reference.md#7-custom-field-definitions).
//!
//! Every type here is built only through a `parse` function that refuses bad input with an
//! [`Invalid`], so code that holds an `Email` or a `PhoneNumber` never checks it again. Pure:
//! no I/O, no HTTP, no SQL, and no wire shapes: each front door brings its input down to
//! text and the few plain values here ([`FieldInput`]).

use contactd_api::ErrorCode;

pub mod contact;
pub mod custom_field;
pub mod email;
pub mod identifier;
pub mod person;
pub mod phone;

pub use custom_field::{DisplayName, FieldInput, FieldKey, FieldValue, SelectOptions};
pub use email::Email;
pub use identifier::ContactIdentifier;
pub use person::{ExtId, PersonName};
pub use phone::{DefaultRegion, PhoneNumber};

/// Why a value was refused: a stable machine code and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// A stable snake_case code, such as `invalid_email`, sent as the error body's `code`.
    pub code: ErrorCode,
    /// A sentence saying what is wrong, safe to show the caller.
    pub message: String,
}

impl Invalid {
    /// Builds a refusal from its code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The most of a refused input a message repeats, in characters.
///
/// Echoing a little of the input helps the caller find it; echoing all of it would let one
/// request make the server write megabytes into a response and its logs.
const EXCERPT_CHARS: usize = 100;

/// Quotes `input` for an error message, cut to [`EXCERPT_CHARS`] and with control characters
/// escaped.
fn excerpt(input: &str) -> String {
    match input.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{:?}…", &input[..cut]),
        None => format!("{input:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_quotes_short_input_whole() {
        assert_eq!(excerpt("plan"), "\"plan\"");
        assert_eq!(excerpt("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn excerpt_cuts_long_input_on_a_char_boundary() {
        let long = "é".repeat(EXCERPT_CHARS + 50);
        let quoted = excerpt(&long);
        assert_eq!(quoted.chars().filter(|c| *c == 'é').count(), EXCERPT_CHARS);
        assert!(quoted.ends_with("\"…"));
    }

    #[test]
    fn invalid_displays_its_message() {
        let invalid = Invalid::new(ErrorCode::InvalidEmail, "email must be a valid address");
        assert_eq!(invalid.to_string(), "email must be a valid address");
        assert_eq!(invalid.code, "invalid_email");
    }
}
