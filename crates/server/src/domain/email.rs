//! Email addresses: validated by a maintained crate, stored trimmed and lower-cased (§5).

use email_address::{EmailAddress, Options};

use super::Invalid;

/// The longest address accepted, in characters (the limit of an SMTP path).
const MAX_CHARS: usize = 254;

/// A valid email address, trimmed and lower-cased.
///
/// The whole address is lower-cased, so uniqueness and `alt:email:` lookups are
/// case-insensitive; the local part is case-sensitive in theory but not in any real mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses an address as sent by a client, refusing anything that is not a bare address.
    ///
    /// Display-name forms such as `Jane <jane@example.com>` are refused: the stored value
    /// must be the address alone, or two spellings of one mailbox could both be stored.
    pub fn parse(input: &str) -> Result<Email, Invalid> {
        // Validate the lower-cased form, not the input: it is what gets stored, and a
        // stored value must parse back to itself.
        let address = input.trim().to_lowercase();
        let options = Options::default().without_display_text();
        let valid = !address.is_empty()
            && address.chars().count() <= MAX_CHARS
            && EmailAddress::parse_with_options(&address, options).is_ok();
        if valid {
            Ok(Email(address))
        } else {
            Err(Invalid::new(
                "invalid_email",
                format!("email must be a valid address of at most {MAX_CHARS} characters"),
            ))
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised address, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parsed(input: &str) -> String {
        Email::parse(input).expect("a valid email").into_string()
    }

    #[test]
    fn trims_and_lower_cases_the_whole_address() {
        assert_eq!(parsed("  Jane.Doe@Example.COM \n"), "jane.doe@example.com");
    }

    #[test]
    fn accepts_a_domain_without_a_dot() {
        assert_eq!(parsed("root@localhost"), "root@localhost");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for input in [
            "",
            "   ",
            "jane",
            "jane@",
            "@example.com",
            "jane@@example.com",
            "jane doe@example.com",
            "Jane <jane@example.com>",
            "<jane@example.com>",
        ] {
            let refused = Email::parse(input).expect_err(input);
            assert_eq!(refused.code, "invalid_email", "{input}");
        }
    }

    #[test]
    fn refuses_addresses_longer_than_254_characters() {
        // Labels of 63 characters and a local part under 64 keep each part valid on its own,
        // so only the overall length is at fault.
        let label = "a".repeat(63);
        let domain = format!("{label}.{label}.{label}");
        let fits = format!("{}@{}", "j".repeat(MAX_CHARS - 1 - domain.len()), domain);
        assert_eq!(fits.chars().count(), MAX_CHARS);
        assert!(Email::parse(&fits).is_ok());

        let too_long = format!("j{fits}");
        assert_eq!(
            Email::parse(&too_long).expect_err("255 characters").code,
            "invalid_email"
        );
    }

    #[test]
    fn message_does_not_echo_the_input() {
        let refused = Email::parse("secret-token-not-an-email").expect_err("invalid");
        assert!(!refused.message.contains("secret"));
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>()) {
            let _ = Email::parse(&input);
        }

        #[test]
        fn never_panics_on_address_like_input(input in "[ a-zA-Z0-9.<>\"@+_-]{0,40}") {
            let _ = Email::parse(&input);
        }

        #[test]
        fn normalising_is_idempotent(
            local in "[A-Za-z0-9._%+-]{1,20}",
            domain in "[A-Za-z0-9-]{1,20}(\\.[A-Za-zİΣ]{2,6}){0,2}",
            padding in "[ \t]{0,3}",
        ) {
            let input = format!("{padding}{local}@{domain}{padding}");
            if let Ok(email) = Email::parse(&input) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                prop_assert_eq!(email.as_str(), input.trim().to_lowercase());
            }
        }
    }
}
