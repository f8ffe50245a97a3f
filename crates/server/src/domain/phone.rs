//! Phone numbers: parsed with libphonenumber's metadata into E.164, read in a default region
//! unless written internationally (docs/reference.md#phone-numbers).

use contactd_api::ErrorCode;
use std::fmt;
use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id;

use super::Invalid;

/// The longest input handed to libphonenumber, in characters.
///
/// E.164 numbers have at most 15 digits; 64 leaves room for any punctuation a person writes
/// and keeps an attacker from making the parser chew on megabytes.
const MAX_INPUT_CHARS: usize = 64;

/// The region whose numbering plan reads numbers written without a country code.
///
/// Set once per server (`--default-phone-region`); `US` unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRegion(Id);

impl DefaultRegion {
    /// Parses a two-letter region code such as `US` or `gb`, in any case.
    pub fn parse(code: &str) -> Result<DefaultRegion, Invalid> {
        let refused = || {
            Invalid::new(
                ErrorCode::InvalidDefaultRegion,
                format!(
                    "default region must be a two-letter region code such as US or GB, not {}",
                    super::excerpt(code)
                ),
            )
        };
        if code.len() != 2 || !code.bytes().all(|byte| byte.is_ascii_alphabetic()) {
            return Err(refused());
        }
        Id::from_str(&code.to_ascii_uppercase())
            .map(DefaultRegion)
            .map_err(|_| refused())
    }
}

impl Default for DefaultRegion {
    fn default() -> Self {
        DefaultRegion(Id::US)
    }
}

impl FromStr for DefaultRegion {
    type Err = Invalid;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse(code)
    }
}

impl fmt::Display for DefaultRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// A phone number that libphonenumber's metadata says is valid, held in E.164
/// (`+14155552671`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a phone number written as text, such as `"(415) 555-2671"` or `"+44 20 7946 0958"`.
    ///
    /// A number starting with `+` or `00` is international; anything else is read in
    /// `region`. Letters are refused, though libphonenumber would read `1-800-FLOWERS`: a
    /// contact's number is stored as digits, and a typo must not become a vanity number.
    pub fn parse(input: &str, region: DefaultRegion) -> Result<PhoneNumber, Invalid> {
        let text = input.trim();
        if text.is_empty() {
            return Err(invalid("phone number must not be empty"));
        }
        if text.chars().count() > MAX_INPUT_CHARS {
            return Err(invalid(format!(
                "phone number must be at most {MAX_INPUT_CHARS} characters"
            )));
        }
        // The character set also keeps out every extension marker libphonenumber knows
        // (`x`, `ext`, `#`, `;`, `,`), so no extension can be silently dropped by E.164. The
        // first character must be a digit or `(`, so `-4155552671` is not read as a number.
        let after_plus = text.strip_prefix('+').unwrap_or(text);
        let starts_well = after_plus
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit() || c == '(');
        if !starts_well || !after_plus.chars().all(is_phone_punctuation_or_digit) {
            return Err(invalid(
                "phone number may contain only digits, spaces, - . ( ) / and a leading +, \
                 and must start with +, a digit or (",
            ));
        }
        // libphonenumber reads a leading 00 by the region's own international prefix, which
        // is 011 in the US: "0044…" would come back as a US number. 00 is the international
        // prefix almost everywhere else, so it is taken to mean "+".
        let written = match text.strip_prefix("00") {
            Some(after_prefix) => format!("+{after_prefix}"),
            None => text.to_owned(),
        };
        let e164 = if written.starts_with('+') {
            read_international(&written)
        } else {
            read_national(region, &written)
        };
        e164.map(PhoneNumber).ok_or_else(|| {
            invalid(format!(
                "phone number is not a valid number; write international numbers with + or 00 \
                 and a country code, others are read as numbers of region {region}"
            ))
        })
    }

    /// The number in E.164, such as `+14155552671`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number in E.164, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

// The Rust port of libphonenumber strips a national prefix more eagerly than Google's
// libphonenumber, and strips the prefix of the region it is given rather than that of the
// number's own country. The readers below work around both; the tests name the numbers each
// workaround is for.

/// Reads a number written with `+` and a country code, giving its E.164 form.
fn read_international(written: &str) -> Option<String> {
    // No region: given one, the port strips that region's national prefix from any
    // country's number, so "+49 164…" read in region US would lose its 1.
    read_valid(None, written)
        .map(|number| e164(&number))
        .or_else(|| read_as_written(written))
}

/// Reads a number written without a country code, as dialled in `region`, giving its E.164
/// form.
fn read_national(region: DefaultRegion, written: &str) -> Option<String> {
    let metadata = phonenumber::metadata::DATABASE.by_id(region.0.as_ref())?;
    let digits: String = written.chars().filter(char::is_ascii_digit).collect();
    // A number dialled out of the region ("011 49 164…" in the US) is an international
    // number, and the port would strip the region's national prefix from it like from
    // "+49 164…" above.
    let international_prefix = metadata
        .international_prefix()
        .and_then(|prefix| prefix.find(&digits))
        // As in libphonenumber, a 0 after it means this was no international prefix: no
        // country code starts with 0.
        .filter(|found| found.start() == 0 && !digits[found.end()..].starts_with('0'));
    if let Some(found) = international_prefix {
        return read_international(&format!("+{}", &digits[found.end()..]));
    }
    if let Some(number) = read_valid(Some(region.0), written) {
        return Some(e164(&number));
    }
    // In Russia "812 123-45-67" and "8 812 123-45-67" are both +7 812 123-45-67, and the
    // port strips the 8 of the area code as if it were the national prefix.
    let without_prefix = metadata
        .national_prefix()
        .and_then(|prefix| digits.strip_prefix(prefix));
    [Some(digits.as_str()), without_prefix]
        .into_iter()
        .flatten()
        .find_map(|national| read_as_written(&format!("+{}{national}", metadata.country_code())))
}

/// A region with neither a national prefix nor a rule for stripping one, used by
/// [`read_as_written`]; a unit test checks that the metadata still says so.
const REGION_WITHOUT_NATIONAL_PREFIX: Id = Id::DK;

/// Reads an international number keeping every digit after the country code.
///
/// The port strips a national prefix whenever the number starts with one, where Google's
/// libphonenumber keeps it if the number is invalid without it: "+7 812 123-45-67" (a St
/// Petersburg number) would lose its 8 and be refused. Read in a region without a national
/// prefix, the port strips nothing.
fn read_as_written(international: &str) -> Option<String> {
    let number = read_valid(Some(REGION_WITHOUT_NATIONAL_PREFIX), international)?;
    let e164 = e164(&number);
    let digits = international.chars().filter(char::is_ascii_digit);
    e164.chars().skip(1).eq(digits).then_some(e164)
}

/// Parses `written` with libphonenumber, keeping the number only if its metadata says it is
/// valid.
fn read_valid(region: Option<Id>, written: &str) -> Option<phonenumber::PhoneNumber> {
    phonenumber::parse(region, written)
        .ok()
        .filter(phonenumber::PhoneNumber::is_valid)
}

fn e164(number: &phonenumber::PhoneNumber) -> String {
    number.format().mode(Mode::E164).to_string()
}

fn is_phone_punctuation_or_digit(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/')
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new(ErrorCode::InvalidPhoneNumber, message)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn us() -> DefaultRegion {
        DefaultRegion::default()
    }

    fn e164(input: &str, region: DefaultRegion) -> String {
        PhoneNumber::parse(input, region)
            .expect("a valid phone number")
            .into_string()
    }

    #[test]
    fn default_region_is_us() {
        assert_eq!(DefaultRegion::default().to_string(), "US");
    }

    #[test]
    fn region_codes_parse_in_any_case() {
        assert_eq!(DefaultRegion::parse("gb").expect("GB").to_string(), "GB");
        assert_eq!("Us".parse::<DefaultRegion>(), Ok(DefaultRegion::default()));
    }

    #[test]
    fn unknown_region_codes_are_refused() {
        for code in ["", "U", "USA", "ZZ", "1A", "u\u{301}s", "+1"] {
            let refused = DefaultRegion::parse(code).expect_err(code);
            assert_eq!(refused.code, "invalid_default_region", "{code}");
        }
    }

    #[test]
    fn the_spec_examples_all_give_one_number() {
        let same = "+14155552671";
        assert_eq!(e164("4155552671", us()), same);
        assert_eq!(e164("(415) 555-2671", us()), same);
        assert_eq!(e164("14155552671", us()), same);
        assert_eq!(e164("+1 415 555 2671", us()), same);
        assert_eq!(e164(" 415.555.2671 ", us()), same);
        assert_eq!(e164("415/555-2671", us()), same);
        assert_eq!(e164("1 (415) 555-2671", us()), same);
        assert_eq!(e164("+ 1 415 555 2671", us()), same);
    }

    #[test]
    fn a_leading_00_is_international() {
        assert_eq!(e164("0044 20 7946 0958", us()), "+442079460958");
        assert_eq!(e164("+44 20 7946 0958", us()), "+442079460958");
    }

    #[test]
    fn national_numbers_are_read_in_the_default_region() {
        let gb = DefaultRegion::parse("GB").expect("GB");
        assert_eq!(e164("020 7946 0958", gb), "+442079460958");
        assert_eq!(e164("+1 415 555 2671", gb), "+14155552671");
    }

    #[test]
    fn international_numbers_ignore_the_default_region() {
        let gb = DefaultRegion::parse("GB").expect("GB");
        for region in [us(), gb] {
            assert_eq!(e164("+49 164 12345678", region), "+4916412345678");
            assert_eq!(e164("0049 164 12345678", region), "+4916412345678");
        }
    }

    #[test]
    fn numbers_dialled_out_of_the_region_keep_their_digits() {
        assert_eq!(e164("011 44 20 7946 0958", us()), "+442079460958");
        assert_eq!(e164("011 49 164 12345678", us()), "+4916412345678");
    }

    #[test]
    fn a_national_number_that_starts_like_its_national_prefix_keeps_it() {
        let ru = DefaultRegion::parse("RU").expect("RU");
        assert_eq!(e164("+7 812 123-45-67", us()), "+78121234567");
        assert_eq!(e164("+7 800 555 35 35", us()), "+78005553535");
        assert_eq!(e164("812 123-45-67", ru), "+78121234567");
        assert_eq!(e164("8 812 123-45-67", ru), "+78121234567");
        assert_eq!(e164("+7 495 123-45-67", us()), "+74951234567");
        assert_eq!(e164("8 495 123-45-67", ru), "+74951234567");
        assert_eq!(e164("88121234567", ru), "+78121234567");
        assert_eq!(e164("8121234567", ru), "+78121234567");
    }

    #[test]
    fn a_national_prefix_written_after_the_country_code_is_dropped() {
        assert_eq!(e164("+33 06 12 34 56 78", us()), "+33612345678");
        assert_eq!(e164("+39 06 1234 5678", us()), "+390612345678");
        assert_eq!(e164("+44 (0)20 7946 0958", us()), "+442079460958");
    }

    #[test]
    fn the_region_used_to_read_numbers_as_written_has_no_national_prefix() {
        let metadata = phonenumber::metadata::DATABASE
            .by_id(REGION_WITHOUT_NATIONAL_PREFIX.as_ref())
            .expect("metadata for the region");
        assert_eq!(metadata.national_prefix(), None);
        assert!(metadata.national_prefix_for_parsing().is_none());
    }

    #[test]
    fn numbers_invalid_by_metadata_are_refused() {
        for input in [
            "+1234567890",
            "123",
            "555-2671",
            "+44 20 7946",
            "+",
            "00",
            "()",
        ] {
            let refused = PhoneNumber::parse(input, us()).expect_err(input);
            assert_eq!(refused.code, "invalid_phone_number", "{input}");
        }
    }

    #[test]
    fn empty_and_blank_input_is_refused() {
        for input in ["", "   ", "\t"] {
            assert_eq!(
                PhoneNumber::parse(input, us()).expect_err(input).code,
                "invalid_phone_number"
            );
        }
    }

    #[test]
    fn letters_and_stray_symbols_are_refused() {
        for input in [
            "1-800-FLOWERS",
            "+1 415 555 2671 ext 12",
            "+1 415 555 2671;ext=12",
            "tel:+1-415-555-2671",
            "415+555+2671",
            "++1 415 555 2671",
            "415_555_2671",
            "４１５５５５２６７１",
            "-4155552671",
            ".4155552671",
            "+-1 415 555 2671",
        ] {
            assert_eq!(
                PhoneNumber::parse(input, us()).expect_err(input).code,
                "invalid_phone_number"
            );
        }
    }

    #[test]
    fn overlong_input_is_refused_before_parsing() {
        let padded = format!("+1 415 555 2671{}", " ".repeat(MAX_INPUT_CHARS));
        assert!(PhoneNumber::parse(padded.trim_end(), us()).is_ok());
        let long = format!("+1{}4155552671", "-".repeat(MAX_INPUT_CHARS));
        let refused = PhoneNumber::parse(&long, us()).expect_err("too long");
        assert!(
            refused.message.contains("at most 64"),
            "{}",
            refused.message
        );
    }

    /// Every region libphonenumber's metadata knows, with its metadata.
    fn regions() -> impl Iterator<Item = (DefaultRegion, &'static phonenumber::Metadata)> {
        phonenumber::metadata::DATABASE
            .iter()
            .filter_map(|metadata| {
                let id = Id::from_str(metadata.id()).ok()?;
                Some((DefaultRegion(id), metadata))
            })
    }

    /// The example number the metadata gives for each region and type of number a person
    /// may have: the region, its country code and the national significant number. They
    /// are valid by the metadata's own word, so a refusal of one is the parser's fault.
    fn example_numbers() -> Vec<(DefaultRegion, u16, &'static str)> {
        regions()
            .flat_map(|(region, metadata)| {
                let kinds = metadata.descriptors();
                [
                    kinds.fixed_line(),
                    kinds.mobile(),
                    kinds.toll_free(),
                    kinds.premium_rate(),
                    kinds.shared_cost(),
                    kinds.personal_number(),
                    kinds.voip(),
                    kinds.pager(),
                    kinds.uan(),
                ]
                .into_iter()
                .flatten()
                .filter_map(|kind| kind.example())
                .map(move |national| (region, metadata.country_code(), national))
            })
            .collect()
    }

    /// How a valid number is written: internationally with `+` or `00`, to be read in any
    /// region, or as its national significant number alone, to be read in its own.
    #[derive(Debug, Clone, Copy)]
    enum Writing {
        Plus,
        DoubleZero,
        National,
    }

    #[test]
    fn every_region_gives_the_valid_numbers_an_example() {
        let with_example: std::collections::BTreeSet<String> = example_numbers()
            .iter()
            .map(|(region, ..)| region.to_string())
            .collect();
        let all: std::collections::BTreeSet<String> =
            regions().map(|(region, _)| region.to_string()).collect();
        // Two empty sets would be equal too: the metadata knows some 240 regions.
        assert!(all.len() > 200, "{} regions", all.len());
        assert_eq!(with_example, all);
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in any::<String>()) {
            let _ = PhoneNumber::parse(&input, us());
        }

        #[test]
        fn parse_never_panics_on_phone_like_input(input in "[+0-9 ().\\/-]{0,70}") {
            let _ = PhoneNumber::parse(&input, us());
        }

        #[test]
        fn region_parse_never_panics(code in any::<String>()) {
            let _ = DefaultRegion::parse(&code);
        }

        /// Whatever phone-like input is read, its E.164 form reads back to itself in the
        /// region it was read in and in any other. `and_then` leaves a refusal as it is, so
        /// the assertion holds for every input, whether it parses or not.
        #[test]
        fn normalising_is_idempotent_in_every_region(
            input in "(\\+|00)?[1-9][0-9 -]{6,16}",
            region in "(US|GB|FR|DE|IN|BR|JP|IT|RU|HU|BY|AR|MX)",
        ) {
            let region = DefaultRegion::parse(&region).expect("a known region");
            let once = PhoneNumber::parse(&input, region);
            for reader in [region, us()] {
                prop_assert_eq!(
                    once.clone().and_then(|parsed| PhoneNumber::parse(parsed.as_str(), reader)),
                    once.clone()
                );
            }
        }

        #[test]
        fn a_valid_number_written_any_usual_way_is_read_and_its_e164_form_is_a_fixed_point(
            (home, country_code, national) in proptest::sample::select(example_numbers()),
            writing in prop_oneof![Just(Writing::Plus), Just(Writing::DoubleZero), Just(Writing::National)],
            reader in proptest::sample::select(regions().map(|(region, _)| region).collect::<Vec<_>>()),
            separators in proptest::collection::vec(
                proptest::sample::select(vec!["", " ", "-", ".", "/"]),
                20,
            ),
        ) {
            let spaced: String = national
                .chars()
                // A separator between digits, never before the first.
                .zip(std::iter::once("").chain(separators))
                .flat_map(|(digit, separator)| [separator.to_owned(), digit.to_string()])
                .collect();
            let (written, region) = match writing {
                Writing::Plus => (format!("+{country_code} {spaced}"), reader),
                Writing::DoubleZero => (format!("00{country_code} {spaced}"), reader),
                Writing::National => (spaced, home),
            };
            let expected = format!("+{country_code}{national}");
            let parsed = PhoneNumber::parse(&written, region);
            prop_assert_eq!(
                parsed.as_ref().map(PhoneNumber::as_str),
                Ok(expected.as_str()),
                "{:?} read in {}", written, region
            );
            let parsed = parsed.expect("checked above");
            for reader in [region, home, us()] {
                prop_assert_eq!(PhoneNumber::parse(parsed.as_str(), reader), Ok(parsed.clone()));
            }
        }
    }
}
