//! Contact identifiers: the four ways a request can name a contact (docs/reference.md#4-identifiers).

use contactd_api::ErrorCode;
use std::fmt;

use uuid::Uuid;

use super::{DefaultRegion, Email, ExtId, Invalid, PhoneNumber};

/// The prefix of the three alternate forms, `alt:<kind>:<value>`.
const ALT_PREFIX: &str = "alt:";

/// The forms accepted, for messages.
const ACCEPTED_FORMS: &str = "a contact identifier must be a UUID, alt:ext_id:<ext_id>, \
                              alt:email:<email> or alt:phone_number:<phone_number>";

/// A contact named by its id or by one of its unique alternate identifiers.
///
/// The alternate values are parsed with the same rules as on write, so `alt:email:Jane@X.com`
/// finds the contact stored as `jane@x.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactIdentifier {
    /// A bare UUID: the contact's `id`.
    Id(Uuid),
    /// `alt:ext_id:<ext_id>`, matched exactly.
    ExtId(ExtId),
    /// `alt:email:<email>`, normalised as on write.
    Email(Email),
    /// `alt:phone_number:<phone_number>`, normalised to E.164 as on write.
    PhoneNumber(PhoneNumber),
}

impl ContactIdentifier {
    /// Parses an identifier from a request body's `id` or a path segment (already decoded).
    ///
    /// The value of an `alt:` form is everything after the second colon, so
    /// `alt:ext_id:a:b` names ext_id `a:b`. Phone numbers without a country code are read
    /// in `region`, as on write.
    pub fn parse(input: &str, region: DefaultRegion) -> Result<ContactIdentifier, Invalid> {
        let Some(alternate) = input.strip_prefix(ALT_PREFIX) else {
            return parse_uuid(input).map(ContactIdentifier::Id).ok_or_else(|| {
                invalid(format!(
                    "{} is not an identifier; {ACCEPTED_FORMS}",
                    super::excerpt(input)
                ))
            });
        };
        let Some((kind, value)) = alternate.split_once(':') else {
            return Err(invalid(format!(
                "{} has no value after its kind; {ACCEPTED_FORMS}",
                super::excerpt(input)
            )));
        };
        if value.is_empty() {
            return Err(invalid(format!(
                "identifier alt:{kind}: has an empty value; {ACCEPTED_FORMS}"
            )));
        }
        let parsed = match kind {
            "ext_id" => ExtId::parse(value).map(ContactIdentifier::ExtId),
            "email" => Email::parse(value).map(ContactIdentifier::Email),
            "phone_number" => PhoneNumber::parse(value, region).map(ContactIdentifier::PhoneNumber),
            _ => {
                return Err(invalid(format!(
                    "{} is not an identifier kind; {ACCEPTED_FORMS}",
                    super::excerpt(kind)
                )));
            }
        };
        parsed.map_err(|refused| {
            invalid(format!(
                "identifier alt:{kind}: has an invalid value: {}",
                refused.message
            ))
        })
    }
}

impl fmt::Display for ContactIdentifier {
    /// Writes the canonical form: a lower-case hyphenated UUID, or `alt:<kind>:` and the
    /// normalised value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{}", id.hyphenated()),
            Self::ExtId(ext_id) => write!(f, "{ALT_PREFIX}ext_id:{}", ext_id.as_str()),
            Self::Email(email) => write!(f, "{ALT_PREFIX}email:{}", email.as_str()),
            Self::PhoneNumber(phone) => write!(f, "{ALT_PREFIX}phone_number:{}", phone.as_str()),
        }
    }
}

/// Reads a UUID in its hyphenated form only (`8-4-4-4-12` hex digits, either case).
///
/// `Uuid::try_parse` also takes the simple, braced and URN forms; refusing them keeps one
/// spelling per contact, so ids in logs and URLs can be compared as text.
fn parse_uuid(input: &str) -> Option<Uuid> {
    // The other forms are 32, 38 and 45 characters long.
    if input.len() != 36 {
        return None;
    }
    Uuid::try_parse(input).ok()
}

fn invalid(message: String) -> Invalid {
    Invalid::new(ErrorCode::InvalidIdentifier, message)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(input: &str) -> Result<ContactIdentifier, Invalid> {
        ContactIdentifier::parse(input, DefaultRegion::default())
    }

    fn parsed(input: &str) -> ContactIdentifier {
        parse(input).expect("a valid identifier")
    }

    fn refused(input: &str) -> Invalid {
        let refused = parse(input).expect_err(input);
        assert_eq!(refused.code, "invalid_identifier", "{input}");
        refused
    }

    #[test]
    fn uuids_parse_in_either_case() {
        let lower = "0192f3a4-7b1c-7d2e-9f00-1234567890ab";
        let id = Uuid::try_parse(lower).expect("a uuid");
        assert_eq!(parsed(lower), ContactIdentifier::Id(id));
        assert_eq!(parsed(&lower.to_uppercase()), ContactIdentifier::Id(id));
        assert_eq!(parsed(&lower.to_uppercase()).to_string(), lower);
    }

    #[test]
    fn uuids_in_other_spellings_are_refused() {
        for input in [
            "0192f3a47b1c7d2e9f001234567890ab",
            "{0192f3a4-7b1c-7d2e-9f00-1234567890ab}",
            "urn:uuid:0192f3a4-7b1c-7d2e-9f00-1234567890ab",
            " 0192f3a4-7b1c-7d2e-9f00-1234567890ab",
            "0192f3a4-7b1c-7d2e-9f00-1234567890a",
            "0192f3a4-7b1c-7d2e-9f00-1234567890ag",
            "0192f3a47-b1c-7d2e-9f00-1234567890ab",
        ] {
            refused(input);
        }
    }

    #[test]
    fn ext_id_is_split_on_the_first_two_colons_only() {
        let expected = ExtId::parse("a:b").expect("valid");
        assert_eq!(parsed("alt:ext_id:a:b"), ContactIdentifier::ExtId(expected));
    }

    #[test]
    fn ext_id_is_case_sensitive() {
        assert_eq!(parsed("alt:ext_id:CRM-42").to_string(), "alt:ext_id:CRM-42");
    }

    #[test]
    fn email_is_normalised_as_on_write() {
        let identifier = parsed("alt:email:Jane@Example.com");
        assert_eq!(identifier.to_string(), "alt:email:jane@example.com");
    }

    #[test]
    fn phone_number_is_normalised_as_on_write() {
        for input in [
            "alt:phone_number:+14155552671",
            "alt:phone_number:(415) 555-2671",
        ] {
            assert_eq!(parsed(input).to_string(), "alt:phone_number:+14155552671");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for input in [
            "",
            "jane@example.com",
            "crm-42",
            "alt:",
            "alt:email",
            "alt:email:",
            "alt:ext_id:",
            "alt:name:Jane",
            "ALT:email:jane@example.com",
            "alt:Email:jane@example.com",
        ] {
            let message = refused(input).message;
            assert!(message.contains("alt:email:<email>"), "{message}");
        }
    }

    #[test]
    fn a_value_refused_by_its_kind_says_why() {
        let message = refused("alt:phone_number:+1234567890").message;
        assert!(message.contains("not a valid number"), "{message}");
        let message = refused("alt:email:not-an-email").message;
        assert!(message.contains("valid address"), "{message}");
    }

    #[test]
    fn messages_do_not_echo_long_input() {
        let long = format!("alt:{}:value", "k".repeat(10_000));
        assert!(refused(&long).message.len() < 400);
        assert!(refused(&"x".repeat(10_000)).message.len() < 400);
    }

    fn identifier() -> impl Strategy<Value = ContactIdentifier> {
        let region = DefaultRegion::default();
        prop_oneof![
            any::<u128>().prop_map(|bits| ContactIdentifier::Id(Uuid::from_u128(bits))),
            "[^\0]{1,40}".prop_filter_map("a valid ext_id", |text| {
                ExtId::parse(&text).ok().map(ContactIdentifier::ExtId)
            }),
            "[A-Za-z0-9._+-]{1,20}@[A-Za-z0-9-]{1,20}\\.[A-Za-z]{2,6}"
                .prop_filter_map("a valid email", |text| Email::parse(&text)
                    .ok()
                    .map(ContactIdentifier::Email)),
            "\\+?[1-9][0-9]{9,11}".prop_filter_map("a valid phone number", move |text| {
                PhoneNumber::parse(&text, region)
                    .ok()
                    .map(ContactIdentifier::PhoneNumber)
            }),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>()) {
            let _ = parse(&input);
        }

        #[test]
        fn never_panics_on_alt_like_input(
            kind in "(ext_id|email|phone_number|x)",
            value in any::<String>(),
        ) {
            let _ = parse(&format!("alt:{kind}:{value}"));
        }

        #[test]
        fn display_parses_back_to_the_same_identifier(identifier in identifier()) {
            prop_assert_eq!(parse(&identifier.to_string()), Ok(identifier));
        }
    }
}
