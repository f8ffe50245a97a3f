//! A contact's own words: its external id and its first and last names, kept as given (docs/reference.md#5-normalisation-and-validation).

use super::Invalid;
use contactd_api::ErrorCode;

/// The longest ext_id or name accepted, in characters.
const MAX_CHARS: usize = 255;

/// The caller's own id for a contact, such as a CRM key; matched exactly, case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtId(String);

impl ExtId {
    /// Parses an ext_id: 1 to 255 characters, stored exactly as given, not even trimmed.
    ///
    /// NUL is refused because PostgreSQL text cannot hold it; accepting it would make the
    /// two stores disagree.
    pub fn parse(input: &str) -> Result<ExtId, Invalid> {
        if input.is_empty() || input.chars().count() > MAX_CHARS || input.contains('\0') {
            return Err(Invalid::new(
                ErrorCode::InvalidExtId,
                format!(
                    "ext_id must be a non-empty string of at most {MAX_CHARS} characters without NUL"
                ),
            ));
        }
        Ok(ExtId(input.to_owned()))
    }

    /// The ext_id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ext_id as given, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A first or last name, stored as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

impl PersonName {
    /// Parses a name of at most 255 characters; `""` gives `None`, which clears the name.
    ///
    /// NUL is refused for the same reason as in [`ExtId::parse`].
    pub fn parse(input: &str) -> Result<Option<PersonName>, Invalid> {
        if input.chars().count() > MAX_CHARS || input.contains('\0') {
            return Err(Invalid::new(
                ErrorCode::InvalidName,
                format!("a name must be a string of at most {MAX_CHARS} characters without NUL"),
            ));
        }
        Ok((!input.is_empty()).then(|| PersonName(input.to_owned())))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as given, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ext_id_is_kept_exactly_as_given() {
        for input in ["crm-42", " padded ", "a:b", "CaSe", "é"] {
            assert_eq!(ExtId::parse(input).expect(input).as_str(), input);
        }
    }

    #[test]
    fn ext_id_length_counts_characters_not_bytes() {
        let longest = "é".repeat(MAX_CHARS);
        assert_eq!(
            ExtId::parse(&longest).expect("255 chars").into_string(),
            longest
        );
        let too_long = "é".repeat(MAX_CHARS + 1);
        assert_eq!(
            ExtId::parse(&too_long).expect_err("256 chars").code,
            "invalid_ext_id"
        );
    }

    #[test]
    fn ext_id_refuses_empty_and_nul() {
        for input in ["", "a\0b"] {
            assert_eq!(ExtId::parse(input).expect_err(input).code, "invalid_ext_id");
        }
    }

    #[test]
    fn empty_name_clears() {
        assert_eq!(PersonName::parse(""), Ok(None));
    }

    #[test]
    fn name_is_kept_exactly_as_given() {
        let name = PersonName::parse(" Jane ")
            .expect("valid")
            .expect("not empty");
        assert_eq!(name.into_string(), " Jane ");
    }

    #[test]
    fn name_refuses_overlong_and_nul() {
        let too_long = "n".repeat(MAX_CHARS + 1);
        for input in [too_long.as_str(), "Ja\0ne"] {
            assert_eq!(
                PersonName::parse(input).expect_err("refused").code,
                "invalid_name"
            );
        }
        assert!(PersonName::parse(&"n".repeat(MAX_CHARS)).is_ok());
    }

    proptest! {
        #[test]
        fn ext_id_never_panics_and_round_trips(input in any::<String>()) {
            if let Ok(ext_id) = ExtId::parse(&input) {
                prop_assert_eq!(ext_id.as_str(), input.as_str());
            }
        }

        #[test]
        fn name_never_panics_and_round_trips(input in any::<String>()) {
            if let Ok(name) = PersonName::parse(&input) {
                prop_assert_eq!(name.as_ref().map_or("", PersonName::as_str), input.as_str());
            }
        }
    }
}
