//! Email addresses: validated by a maintained crate and stored in one normal form per
//! mailbox (docs/reference.md#email-addresses; docs/robustness.md#email-normalisation).
//!
//! Two spellings of one mailbox must become one stored value, or uniqueness and `alt:email:`
//! disagree with the person who typed them: `José` typed on a Mac (NFD) and on Windows (NFC),
//! `ｆｗ@example.com` from a full-width keyboard, `idn@bücher.de` and its DNS form
//! `idn@xn--bcher-kva.de`, `"john"@example.com` and `john@example.com`. Characters that show
//! nothing (zero-width spaces, bidi controls, …) would make two addresses that look alike
//! differ, so they are refused rather than dropped.

use contactd_api::ErrorCode;
use email_address::{EmailAddress, Options};
use icu_properties::CodePointSetData;
use icu_properties::props::DefaultIgnorableCodePoint;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use unicode_normalization::UnicodeNormalization;

use super::Invalid;

/// The longest address accepted, in characters of its normal form (the limit of an SMTP
/// path).
const MAX_CHARS: usize = 254;

/// The version of the normal form [`Email::parse`] produces. Raise it whenever a change
/// to the normalisation could give an address already stored another form: the start-up
/// data check (`store::checks`) then rewrites the stored addresses once.
pub const NORMALISATION_VERSION: i64 = 1;

/// A valid email address, in its normal form.
///
/// The normal form: trimmed; the local part in Unicode NFKC, lower-cased, and unquoted when
/// its quotes are not needed; the domain in its IDNA ASCII form (UTS #46, which also
/// lower-cases it). So uniqueness and `alt:email:` lookups treat every spelling of one
/// mailbox alike; the local part is case-sensitive in theory but not in any real mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses an address as sent by a client, refusing anything that is not a bare address.
    ///
    /// Display-name forms such as `Jane <jane@example.com>` are refused: the stored value
    /// must be the address alone, or two spellings of one mailbox could both be stored.
    pub fn parse(input: &str) -> Result<Email, Invalid> {
        normal_form(input.trim())
            .filter(|address| {
                // Validate the normal form, not the input: it is what gets stored, and a
                // stored value must parse back to itself.
                address.chars().count() <= MAX_CHARS
                    && EmailAddress::parse_with_options(
                        address,
                        Options::default().without_display_text(),
                    )
                    .is_ok()
            })
            .map(Email)
            .ok_or_else(|| {
                Invalid::new(
                    ErrorCode::InvalidEmail,
                    format!("email must be a valid address of at most {MAX_CHARS} characters"),
                )
            })
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

/// The normal form of a trimmed address, or `None` when it cannot have one (an invisible
/// character, no `@`, a malformed quoted local part, a domain UTS #46 refuses). Whether the
/// result is a valid address is left to the validation crate.
fn normal_form(address: &str) -> Option<String> {
    if address.chars().any(is_invisible) {
        return None;
    }
    // The domain cannot hold an `@`, a quoted local part can: split at the last one.
    let (local, domain) = address.rsplit_once('@')?;
    Some(format!(
        "{}@{}",
        normal_local_part(local)?,
        normal_domain(domain)?
    ))
}

/// Whether a character shows nothing, or nothing reliable, where an address is displayed:
/// Unicode's Default_Ignorable_Code_Point (zero-width space and joiners, soft hyphen, bidi
/// controls, variation selectors, the BOM, Hangul fillers, …, as ICU's property data has
/// it), control characters, and every white space but the plain space (which only a quoted
/// local part may hold).
fn is_invisible(c: char) -> bool {
    if c.is_ascii() {
        // No ASCII character is default-ignorable.
        return c.is_ascii_control() || (c.is_ascii_whitespace() && c != ' ');
    }
    const DEFAULT_IGNORABLE: icu_properties::CodePointSetDataBorrowed<'static> =
        CodePointSetData::new::<DefaultIgnorableCodePoint>();
    DEFAULT_IGNORABLE.contains(c) || c.is_control() || (c.is_whitespace() && c != ' ')
}

/// The local part in its normal form: NFKC and lower-cased, without its quotes when the
/// content needs none (RFC 5322 section 3.4.1: `"john"` and `john` are the same local part), and
/// otherwise quoted with only `"` and `\` escaped.
///
/// NFKC rather than NFC: compatibility forms (full-width letters, ligatures, circled or
/// super-script letters) never name a different mailbox in practice, and folding them is
/// what keeps `ｆｗ@` and `fw@` one contact. It runs again after lower-casing, which can
/// leave a character outside NFKC, so that the form is a fixed point.
fn normal_local_part(local: &str) -> Option<String> {
    let quoted = local
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'));
    let content = match quoted {
        Some(quoted) => unquote(quoted)?,
        None => local.to_owned(),
    };
    // Every ASCII text is in NFKC already, and most addresses are ASCII: this is on the
    // path of every `alt:email:` lookup.
    let content: String = if content.is_ascii() {
        content.to_ascii_lowercase()
    } else {
        content
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfkc()
            .collect()
    };
    if is_dot_atom(&content) {
        return Some(content);
    }
    // Only a local part that came quoted may be quoted: `a"b@…` is no address at all.
    quoted?;
    let mut quoted = String::with_capacity(content.len() + 2);
    quoted.push('"');
    for c in content.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Some(quoted)
}

/// The content of a quoted local part, its quoted pairs (`\x`) undone; `None` when it
/// holds a bare `"` or ends in a lone `\`.
fn unquote(quoted: &str) -> Option<String> {
    let mut content = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => content.push(chars.next()?),
            '"' => return None,
            c => content.push(c),
        }
    }
    Some(content)
}

/// Whether a local part may stand without quotes: RFC 5322's dot-atom, with RFC 6531's
/// non-ASCII characters (the rule the validation crate applies).
fn is_dot_atom(text: &str) -> bool {
    let atext = |c: char| c.is_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    text.split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

/// The domain in its IDNA ASCII form (UTS #46 ToASCII, non-transitional, as browsers and
/// the `idna` crate do it): mapped (case, width, NFC), every non-ASCII label in Punycode,
/// each label checked, lengths within DNS's. A domain literal (`[192.0.2.1]`) is no name
/// to map and is only lower-cased.
fn normal_domain(domain: &str) -> Option<String> {
    if domain.starts_with('[') {
        return Some(domain.to_lowercase());
    }
    Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::URL,
            Hyphens::Allow,
            DnsLength::Verify,
        )
        .ok()
        .map(|ascii| ascii.into_owned())
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
            "\"jane@example.com",
            "\"ja\"ne\"@example.com",
            "\"jane\\\"@example.com",
            "jane@xn--.example",
            "jane@exa mple.com",
        ] {
            let refused = Email::parse(input).expect_err(input);
            assert_eq!(refused.code, "invalid_email", "{input}");
        }
    }

    #[test]
    fn composed_and_decomposed_accents_are_one_address() {
        let composed = "jos\u{e9}@example.com";
        let decomposed = "jose\u{301}@example.com";
        assert_eq!(parsed(decomposed), composed);
        assert_eq!(parsed(composed), composed);
    }

    #[test]
    fn full_width_and_compatibility_letters_fold_to_their_plain_form() {
        assert_eq!(parsed("ｆｗ@example.com"), "fw@example.com");
        assert_eq!(parsed("ＦＷ@ｅｘａｍｐｌｅ．ｃｏｍ"), "fw@example.com");
        assert_eq!(parsed("\u{fb01}le@example.com"), "file@example.com");
    }

    #[test]
    fn the_domain_is_stored_in_its_idna_ascii_form() {
        assert_eq!(parsed("idn@bücher.de"), "idn@xn--bcher-kva.de");
        assert_eq!(parsed("idn@BÜCHER.de"), "idn@xn--bcher-kva.de");
        assert_eq!(parsed("idn@xn--bcher-kva.de"), "idn@xn--bcher-kva.de");
        assert_eq!(parsed("idn@XN--BCHER-KVA.DE"), "idn@xn--bcher-kva.de");
        // Non-transitional UTS #46: ß is a letter of its own, not "ss".
        assert_eq!(parsed("a@straße.de"), "a@xn--strae-oqa.de");
    }

    #[test]
    fn needless_quotes_are_dropped_and_needed_ones_kept() {
        assert_eq!(parsed("\"john\"@example.com"), "john@example.com");
        assert_eq!(parsed("\"John.Doe\"@example.com"), "john.doe@example.com");
        assert_eq!(parsed("\"jo\\hn\"@example.com"), "john@example.com");
        assert_eq!(
            parsed("\"john doe\"@example.com"),
            "\"john doe\"@example.com"
        );
        assert_eq!(parsed("\"a@b\"@example.com"), "\"a@b\"@example.com");
        assert_eq!(parsed("\"a..b\"@example.com"), "\"a..b\"@example.com");
        assert_eq!(
            parsed("\"say \\\"hi\\\"\"@example.com"),
            "\"say \\\"hi\\\"\"@example.com"
        );
    }

    #[test]
    fn invisible_characters_are_refused_wherever_they_are() {
        for invisible in [
            '\u{200B}', // zero-width space
            '\u{200C}', // zero-width non-joiner
            '\u{200D}', // zero-width joiner
            '\u{00AD}', // soft hyphen
            '\u{200E}', // left-to-right mark
            '\u{202E}', // right-to-left override
            '\u{2066}', // left-to-right isolate
            '\u{FE0F}', // variation selector 16
            '\u{FEFF}', // byte order mark
            '\u{3164}', // Hangul filler
        ] {
            for input in [
                format!("{invisible}jane@example.com"),
                format!("jane@example.com{invisible}"),
                format!("ja{invisible}ne@example.com"),
                format!("jane@exa{invisible}mple.com"),
                format!("\"ja{invisible}ne\"@example.com"),
            ] {
                assert_eq!(
                    Email::parse(&input).expect_err(&input).code,
                    "invalid_email",
                    "{input:?}"
                );
            }
        }
    }

    #[test]
    fn control_characters_and_odd_white_space_are_refused_inside() {
        // At either end they are white space, and trimmed like any other.
        for odd in [
            '\u{0085}', '\u{2028}', '\u{3000}', '\u{00A0}', '\t', '\u{0007}',
        ] {
            for input in [
                format!("ja{odd}ne@example.com"),
                format!("\"ja{odd}ne\"@example.com"),
            ] {
                assert_eq!(
                    Email::parse(&input).expect_err(&input).code,
                    "invalid_email",
                    "{input:?}"
                );
            }
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
    fn the_length_limit_applies_to_the_stored_ascii_form() {
        // 250 characters as typed, but the Punycode of the domain is longer.
        let label = "ü".repeat(60);
        let typed = format!("j@{label}.{}.{}.de", "a".repeat(63), "b".repeat(60));
        assert!(typed.chars().count() <= MAX_CHARS);
        assert_eq!(
            Email::parse(&typed).expect_err("too long once mapped").code,
            "invalid_email"
        );
    }

    #[test]
    fn message_does_not_echo_the_input() {
        let refused = Email::parse("secret-token-not-an-email").expect_err("invalid");
        assert!(!refused.message.contains("secret"));
    }

    /// A local part and domain that are valid in every spelling the strategies make:
    /// letters that have a composed form, plain letters and digits.
    fn plain_letters() -> impl Strategy<Value = String> {
        "[a-zA-Zàéîõüñç0-9]{1,12}"
    }

    /// An atom of an unquoted local part: letters, digits and every other character RFC 5322
    /// allows in one.
    const ATOM: &str = "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}";

    /// A DNS label that UTS #46 leaves as it is but for its case: no `--`, so never `xn--`.
    const LABEL: &str = "[a-zA-Z0-9]{1,10}(-[a-zA-Z0-9]{1,10})?";

    /// The strings that match a regular expression.
    fn matching(pattern: &str) -> BoxedStrategy<String> {
        proptest::string::string_regex(pattern)
            .expect("a valid pattern")
            .boxed()
    }

    /// An ASCII address that every rule accepts, in mixed case and maybe padded: its normal
    /// form is the input trimmed and lower-cased.
    fn ascii_address() -> impl Strategy<Value = String> {
        matching(&format!(
            "[ \t]{{0,2}}{ATOM}(\\.{ATOM}){{0,3}}@({LABEL}\\.){{0,3}}[a-zA-Z]{{2,6}}[ \t]{{0,2}}"
        ))
    }

    /// An address that every rule accepts, in the spellings the normal form folds: an ASCII
    /// or non-ASCII local part, bare, needlessly quoted or needing its quotes (with quoted
    /// pairs), and an ASCII or international domain.
    fn valid_address() -> impl Strategy<Value = String> {
        let local = prop_oneof![
            matching(&format!("{ATOM}(\\.{ATOM}){{0,3}}")),
            matching("[a-zA-Z0-9àéîõüñçøßσÀÉÎÕÜÑÇØΣİﬁｆＦ]{1,12}"),
            matching(r#""([a-zA-Z0-9 @.,:;<>()\[\]!#]|\\[a-zA-Z"\\]){1,12}""#),
        ];
        let domain = prop_oneof![
            matching(&format!("({LABEL}\\.){{0,3}}[a-zA-Z]{{2,6}}")),
            matching("[a-zA-Z0-9üéßøåÜÉ]{1,12}(\\.|。)[a-zA-Z]{2,6}"),
        ];
        (local, domain).prop_map(|(local, domain)| format!("{local}@{domain}"))
    }

    /// Spells a string in NFC, NFD or full-width (ASCII letters and digits at U+FF01…).
    fn respelled(text: &str, spelling: u8) -> String {
        match spelling % 3 {
            0 => text.nfc().collect(),
            1 => text.nfd().collect(),
            _ => text
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
                    } else {
                        c
                    }
                })
                .collect(),
        }
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>()) {
            let _ = Email::parse(&input);
        }

        #[test]
        fn never_panics_on_address_like_input(input in "[ a-zA-Z0-9.<>\"@+_\\\\-]{0,40}") {
            let _ = Email::parse(&input);
        }

        /// Whatever the input, what parses is a fixed point: its normal form parses back to
        /// itself. `and_then` leaves a refusal as it is, so the assertion holds for every
        /// input, whether it parses or not; the valid addresses below are the ones that must.
        #[test]
        fn normalising_is_idempotent(input in any::<String>()) {
            let once = Email::parse(&input);
            prop_assert_eq!(once.clone().and_then(|email| Email::parse(email.as_str())), once);
        }

        #[test]
        fn normalising_address_like_input_is_idempotent(
            input in "[ a-zA-Z0-9.\"@+_\\\\ÀàéÉîüÜñßİΣσςｆＦ\u{301}\u{308}-]{0,30}(@[a-zA-ZüÜß.-]{1,12})?",
        ) {
            let once = Email::parse(&input);
            prop_assert_eq!(once.clone().and_then(|email| Email::parse(email.as_str())), once);
        }

        #[test]
        fn every_spelling_of_an_address_is_one_email(
            local in plain_letters(),
            label in plain_letters(),
            spellings in (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
            upper in any::<bool>(),
        ) {
            let canonical = Email::parse(&format!("{local}@{label}.example"))
                .expect("letters and digits are a valid address");
            let local = if upper { local.to_uppercase() } else { local };
            let first = format!(
                "{}@{}.example",
                respelled(&local, spellings.0),
                respelled(&label, spellings.1)
            );
            let second = format!(
                "\"{}\"@{}.example",
                respelled(&local, spellings.2),
                respelled(&label, spellings.3)
            );
            prop_assert_eq!(Email::parse(&first), Ok(canonical.clone()));
            prop_assert_eq!(Email::parse(&second), Ok(canonical));
        }

        #[test]
        fn an_ascii_address_is_stored_trimmed_and_lower_cased(address in ascii_address()) {
            prop_assert_eq!(
                Email::parse(&address).map(Email::into_string),
                Ok(address.trim().to_lowercase())
            );
        }

        #[test]
        fn a_valid_address_in_any_spelling_is_accepted_and_its_normal_form_is_a_fixed_point(
            address in valid_address(),
        ) {
            let email = Email::parse(&address);
            prop_assert!(email.is_ok(), "a valid address is refused: {:?}", address);
            let email = email.expect("checked above");
            prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
        }

        #[test]
        fn any_address_holding_a_default_ignorable_character_is_refused(
            local in plain_letters(),
            label in plain_letters(),
            at in 0usize..32,
            ignorable in proptest::sample::select(
                CodePointSetData::new::<DefaultIgnorableCodePoint>()
                    .iter_ranges()
                    .flat_map(|range| range.filter_map(char::from_u32).take(8))
                    .collect::<Vec<char>>()
            ),
        ) {
            let mut address: Vec<char> = format!("{local}@{label}.example").chars().collect();
            let at = at % (address.len() + 1);
            address.insert(at, ignorable);
            let address: String = address.into_iter().collect();
            prop_assert_eq!(
                Email::parse(&address).map_err(|refused| refused.code.as_str()),
                Err("invalid_email"),
                "{:?}", address
            );
        }
    }
}
