//! Custom fields: definition keys, display names and select options (docs/reference.md#7-custom-field-definitions), and the typed
//! values stored under them (docs/reference.md#custom-field-values).

use contactd_api::ErrorCode;
use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, NaiveDate};
use contactd_api::{CSV_COLUMNS, FieldType};

use super::Invalid;

/// The longest key accepted, in characters (the `{0,62}` of `^[a-z][a-z0-9_]{0,62}$`, plus one).
const KEY_MAX_CHARS: usize = 63;
/// The longest display name accepted, in characters.
const DISPLAY_NAME_MAX_CHARS: usize = 100;
/// The most options a select field may have.
const MAX_OPTIONS: usize = 500;
/// The longest select option accepted, in characters.
const OPTION_MAX_CHARS: usize = 255;
/// The longest text value accepted, in characters.
const TEXT_MAX_CHARS: usize = 10_000;
/// The largest magnitude below which every integer is exact in an `f64`: 2^53.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// The keys no new field may take: the columns of a CSV export before its field columns
/// (every member of a contact, its id and timestamps), and `custom_fields`, the member that
/// holds a contact's values in JSON. A field `email` would give an export two `email`
/// columns, and an import could not tell which cell is the address.
pub const RESERVED_KEYS: [&str; CSV_COLUMNS.len() + 1] = {
    let mut keys = ["custom_fields"; CSV_COLUMNS.len() + 1];
    let mut index = 0;
    while index < CSV_COLUMNS.len() {
        keys[index] = CSV_COLUMNS[index];
        index += 1;
    }
    keys
};

/// A custom field's machine name, such as `plan` or `lead_score`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldKey(String);

impl FieldKey {
    /// Parses a key: a lower-case ASCII letter, then up to 62 lower-case letters, digits or `_`.
    pub fn parse(input: &str) -> Result<FieldKey, Invalid> {
        let mut bytes = input.bytes();
        let valid = input.len() <= KEY_MAX_CHARS
            && bytes.next().is_some_and(|first| first.is_ascii_lowercase())
            && bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if !valid {
            return Err(Invalid::new(
                ErrorCode::InvalidCustomFieldKey,
                format!(
                    "custom field key must start with a lower-case letter and continue with at \
                     most {} lower-case letters, digits or underscores, not {}",
                    KEY_MAX_CHARS - 1,
                    super::excerpt(input)
                ),
            ));
        }
        Ok(FieldKey(input.to_owned()))
    }

    /// Parses the key of a field being defined: a key as [`FieldKey::parse`] reads it that
    /// is not reserved ([`FieldKey::is_reserved`]).
    ///
    /// Only new definitions are checked: a database from before keys were reserved may
    /// hold such a field, and it must still be read, listed, changed and deleted
    /// (docs/robustness.md#reserved-custom-field-keys).
    pub fn parse_new(input: &str) -> Result<FieldKey, Invalid> {
        let key = Self::parse(input)?;
        if key.is_reserved() {
            return Err(Invalid::new(
                ErrorCode::ReservedCustomFieldKey,
                format!(
                    "custom field key `{key}` is reserved: it names a member of every contact \
                     (and a column of the CSV export), so a field under it would make exports \
                     that cannot be imported again; the reserved keys are {}",
                    RESERVED_KEYS.join(", ")
                ),
            ));
        }
        Ok(key)
    }

    /// Whether the key is one a new field may not take: a member of the contact object or
    /// a column of the CSV export (docs/reference.md#3-the-contact-object, docs/reference.md#11-bulk-batch-writes-import-and-export), whose cells a field of that key would make
    /// ambiguous.
    pub fn is_reserved(&self) -> bool {
        RESERVED_KEYS.contains(&self.0.as_str())
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A custom field's human name, such as `Lead score`: 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name, trimming it first; blank names are refused.
    pub fn parse(input: &str) -> Result<DisplayName, Invalid> {
        let name = input.trim();
        if name.is_empty() || name.chars().count() > DISPLAY_NAME_MAX_CHARS || name.contains('\0') {
            return Err(Invalid::new(
                ErrorCode::InvalidDisplayName,
                format!(
                    "display_name must be 1 to {DISPLAY_NAME_MAX_CHARS} characters, \
                     not counting surrounding spaces, and hold no NUL character"
                ),
            ));
        }
        Ok(DisplayName(name.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trimmed name, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The choices of a select field: 1 to 500 distinct, trimmed, non-empty strings in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectOptions(Vec<String>);

impl SelectOptions {
    /// Parses a select field's options, trimming each one.
    ///
    /// Options are compared after trimming and case-sensitively: `"Pro"` and `" Pro"` are
    /// the same option, `"Pro"` and `"pro"` are two.
    pub fn parse(options: Vec<String>) -> Result<SelectOptions, Invalid> {
        let invalid = |message: String| Invalid::new(ErrorCode::InvalidOptions, message);
        if options.is_empty() || options.len() > MAX_OPTIONS {
            return Err(invalid(format!(
                "options must list 1 to {MAX_OPTIONS} choices, not {}",
                options.len()
            )));
        }
        let mut seen = HashSet::with_capacity(options.len());
        for option in &options {
            let option = option.trim();
            if option.is_empty() {
                return Err(invalid(
                    "options must not contain an empty choice".to_owned(),
                ));
            }
            if option.contains('\0') {
                return Err(invalid(format!(
                    "option {} holds a NUL character",
                    super::excerpt(option)
                )));
            }
            if option.chars().count() > OPTION_MAX_CHARS {
                return Err(invalid(format!(
                    "each option must be at most {OPTION_MAX_CHARS} characters; {} is longer",
                    super::excerpt(option)
                )));
            }
            if !seen.insert(option) {
                return Err(invalid(format!(
                    "options must be distinct, but {} appears more than once",
                    super::excerpt(option)
                )));
            }
        }
        Ok(SelectOptions(
            options
                .iter()
                .map(|option| option.trim().to_owned())
                .collect(),
        ))
    }

    /// The options, in the order given.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The options, owned, in the order given.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    /// Whether `option` is exactly one of the choices.
    pub fn contains(&self, option: &str) -> bool {
        self.0.iter().any(|choice| choice == option)
    }
}

/// A custom field value as a front door received it, before its field's type reads it.
///
/// Each front door brings its own shapes down to these: the API's JSON values, the
/// dashboard's and a CSV file's text.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldInput {
    /// No value: refused, since a value is cleared by removing it.
    Null,
    /// Text, which every type reads in its own way.
    Text(String),
    /// A number sent as a number rather than as text.
    Number(f64),
    /// `true` or `false` sent as such rather than as text.
    Boolean(bool),
    /// A list or a record (a JSON array or object): no field type takes one.
    Compound,
}

/// A custom field value, typed by its field's definition.
///
/// Values built by [`FieldValue::parse`] always fit their type: numbers are finite and never
/// `-0.0`, texts are at most 10,000 characters and dates have four-digit years.
/// [`FieldValue::from_storage`] trusts the store to hold only what `parse` produced.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A string of at most 10,000 characters.
    Text(String),
    /// A finite number.
    Number(f64),
    /// `true` or `false`.
    Boolean(bool),
    /// A calendar date.
    Date(NaiveDate),
    /// One of the field's options.
    Select(String),
}

impl FieldValue {
    /// Parses a value sent for a field of type `field_type` whose select `options` are given
    /// (empty for other types).
    ///
    /// Numbers may be sent as a number or as text such as `"4.50"`, booleans as a boolean or
    /// `"true"`/`"false"` in any case; every other type takes text. The message says what
    /// the type expects; the caller adds which key was at fault.
    pub fn parse(
        field_type: FieldType,
        options: &[String],
        raw: FieldInput,
    ) -> Result<FieldValue, Invalid> {
        if raw == FieldInput::Null {
            return Err(Invalid::new(
                ErrorCode::InvalidCustomFieldValue,
                "null is not a value; use remove to clear a custom field",
            ));
        }
        let parsed = match (field_type, raw) {
            (FieldType::Text, FieldInput::Text(text))
                if text.chars().count() <= TEXT_MAX_CHARS && !text.contains('\0') =>
            {
                Some(FieldValue::Text(text))
            }
            (FieldType::Number, FieldInput::Number(number)) => {
                finite(number).map(FieldValue::Number)
            }
            (FieldType::Number, FieldInput::Text(text)) => {
                parse_number(text.trim()).map(FieldValue::Number)
            }
            (FieldType::Boolean, FieldInput::Boolean(boolean)) => {
                Some(FieldValue::Boolean(boolean))
            }
            (FieldType::Boolean, FieldInput::Text(text)) => {
                parse_boolean(&text).map(FieldValue::Boolean)
            }
            (FieldType::Date, FieldInput::Text(text)) => parse_date(&text).map(FieldValue::Date),
            (FieldType::Select, FieldInput::Text(text)) if options.contains(&text) => {
                Some(FieldValue::Select(text))
            }
            _ => None,
        };
        parsed.ok_or_else(|| {
            Invalid::new(
                ErrorCode::InvalidCustomFieldValue,
                expected(field_type, options),
            )
        })
    }

    /// The value's canonical text, as stored in the database and shown to people.
    ///
    /// A number with no fraction is written as an integer (`12`, not `12.0`) as long as
    /// every integer of its size is exact in an `f64` ([`exact_integer`]); beyond that, and
    /// for fractions, the shortest form that reads back as the same `f64` (`4.5`, `1e+20`).
    /// Booleans are `true`/`false`; dates `YYYY-MM-DD`.
    pub fn to_storage(&self) -> String {
        match self {
            FieldValue::Text(text) | FieldValue::Select(text) => text.clone(),
            FieldValue::Number(number) => exact_integer(*number).map_or_else(
                || zmij::Buffer::new().format(*number).to_owned(),
                |integer| integer.to_string(),
            ),
            FieldValue::Boolean(boolean) => boolean.to_string(),
            FieldValue::Date(date) => date.format("%Y-%m-%d").to_string(),
        }
    }

    /// The value as a number that orders as the value does, for the range filters of a
    /// contact list (docs/reference.md#finding-contacts): a number itself, a date as days
    /// since 1970-01-01; `None` for the types that have no order.
    pub fn ordinal(&self) -> Option<f64> {
        match self {
            FieldValue::Number(number) => Some(*number),
            FieldValue::Date(date) => {
                let epoch = DateTime::UNIX_EPOCH.date_naive();
                Some(date.signed_duration_since(epoch).num_days() as f64)
            }
            FieldValue::Text(_) | FieldValue::Boolean(_) | FieldValue::Select(_) => None,
        }
    }

    /// Reads back a value written by [`FieldValue::to_storage`] for a field of type
    /// `field_type`.
    ///
    /// Select values are not checked against the options: a stored value was checked when
    /// written, and options are only ever added.
    pub fn from_storage(field_type: FieldType, stored: &str) -> Result<FieldValue, Invalid> {
        let parsed = match field_type {
            FieldType::Text => Some(FieldValue::Text(stored.to_owned())),
            FieldType::Select => Some(FieldValue::Select(stored.to_owned())),
            FieldType::Number => parse_number(stored).map(FieldValue::Number),
            FieldType::Boolean => parse_boolean(stored).map(FieldValue::Boolean),
            FieldType::Date => parse_date(stored).map(FieldValue::Date),
        };
        parsed.ok_or_else(|| {
            Invalid::new(
                ErrorCode::InvalidCustomFieldValue,
                format!(
                    "stored value {} is not a {field_type} value",
                    super::excerpt(stored)
                ),
            )
        })
    }
}

/// `number` as an integer when it has no fraction and every integer of its size is exact in
/// an `f64` (its magnitude is below 2^53): the form it is written in, `12` rather than
/// `12.0`. `-0.0` is `0`.
pub fn exact_integer(number: f64) -> Option<i64> {
    // Exact: the magnitude is below 2^53, so the cast neither truncates nor saturates.
    (number.fract() == 0.0 && number.abs() < EXACT_INTEGER_LIMIT).then_some(number as i64)
}

/// What a field of each type accepts, for messages; a select's names its options (the
/// first 20 of them: a list of 500 would drown the sentence).
fn expected(field_type: FieldType, options: &[String]) -> String {
    match field_type {
        FieldType::Text => {
            format!(
                "a text field takes a string of at most {TEXT_MAX_CHARS} characters, with no \
                 NUL character"
            )
        }
        FieldType::Number => "a number field takes a finite number, as a JSON number or a \
                              string such as \"4.50\""
            .to_owned(),
        FieldType::Boolean => "a boolean field takes true or false, as a JSON boolean or a \
                               string in any case"
            .to_owned(),
        FieldType::Date => {
            "a date field takes a real calendar date as a string YYYY-MM-DD".to_owned()
        }
        FieldType::Select => {
            const LISTED: usize = 20;
            let mut quoted: Vec<String> = options
                .iter()
                .take(LISTED)
                .map(|option| format!("{option:?}"))
                .collect();
            if options.len() > LISTED {
                quoted.push(format!("and {} more", options.len() - LISTED));
            }
            format!(
                "a select field takes a string that is exactly one of its options: {}",
                quoted.join(", ")
            )
        }
    }
}

/// Keeps a finite number, turning `-0.0` into `0.0` so that zero has one stored form.
fn finite(number: f64) -> Option<f64> {
    // Adding positive zero maps -0.0 to 0.0 and leaves every other value alone.
    number.is_finite().then_some(number + 0.0)
}

/// Reads a finite number written in JSON's number grammar,
/// `-?digits(.digits)?([eE][+-]?digits)?`, leading zeros allowed.
///
/// Rust's `f64::from_str` alone would also take `inf`, `NaN`, `+1` and `.5`; the grammar
/// check keeps the accepted text to what a JSON client could have sent as a number.
fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    let digits_from = |at: usize| {
        at + bytes[at..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count()
    };
    let integer_end = digits_from(at);
    if integer_end == at {
        return None;
    }
    at = integer_end;
    if bytes.get(at) == Some(&b'.') {
        let fraction_end = digits_from(at + 1);
        if fraction_end == at + 1 {
            return None;
        }
        at = fraction_end;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent_end = digits_from(at);
        if exponent_end == at {
            return None;
        }
        at = exponent_end;
    }
    if at != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().and_then(finite)
}

fn parse_boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Reads exactly `YYYY-MM-DD` naming a real calendar date.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(at, byte)| match at {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    // The shape check leaves only ASCII digits in these ranges, so each parse succeeds.
    let year = text[0..4].parse().ok()?;
    let month = text[5..7].parse().ok()?;
    let day = text[8..10].parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ALL_TYPES: [FieldType; 5] = [
        FieldType::Text,
        FieldType::Number,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::Select,
    ];

    fn plans() -> Vec<String> {
        vec!["free".to_owned(), "pro".to_owned()]
    }

    fn parse(field_type: FieldType, raw: FieldInput) -> Result<FieldValue, Invalid> {
        FieldValue::parse(field_type, &plans(), raw)
    }

    fn parsed(field_type: FieldType, raw: FieldInput) -> FieldValue {
        parse(field_type, raw.clone()).unwrap_or_else(|refused| panic!("{raw:?}: {refused}"))
    }

    fn refused(field_type: FieldType, raw: FieldInput) -> Invalid {
        let refused = parse(field_type, raw.clone()).expect_err("refused");
        assert_eq!(refused.code, "invalid_custom_field_value", "{raw:?}");
        refused
    }

    fn text(text: impl Into<String>) -> FieldInput {
        FieldInput::Text(text.into())
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("a real date")
    }

    #[test]
    fn keys_follow_the_pattern() {
        for key in [
            "a",
            "plan",
            "lead_score",
            "x9",
            &format!("k{}", "_".repeat(62)),
        ] {
            assert_eq!(FieldKey::parse(key).expect(key).to_string(), key);
        }
        for key in [
            "",
            "Plan",
            "9lives",
            "_plan",
            "lead-score",
            "plan ",
            "é",
            &format!("k{}", "_".repeat(63)),
        ] {
            assert_eq!(
                FieldKey::parse(key).expect_err(key).code,
                "invalid_custom_field_key"
            );
        }
    }

    #[test]
    fn new_keys_may_not_be_a_contact_member_or_an_export_column() {
        for key in CSV_COLUMNS.into_iter().chain(["custom_fields"]) {
            let refused = FieldKey::parse_new(key).expect_err(key);
            assert_eq!(refused.code, "reserved_custom_field_key");
            assert!(
                refused.message.contains(&format!("`{key}`")),
                "{}",
                refused.message
            );
            // A stored field under the key is still read.
            assert!(FieldKey::parse(key).expect(key).is_reserved());
        }
        for key in ["plan", "emails", "email_2", "ids", "custom"] {
            assert!(!FieldKey::parse_new(key).expect(key).is_reserved());
        }
        assert_eq!(
            FieldKey::parse_new("Email").expect_err("pattern").code,
            "invalid_custom_field_key"
        );
    }

    #[test]
    fn display_names_are_trimmed_and_1_to_100_characters() {
        assert_eq!(
            DisplayName::parse("  Lead score ").expect("valid").as_str(),
            "Lead score"
        );
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        for name in ["", "   ", &"é".repeat(101)] {
            assert_eq!(
                DisplayName::parse(name).expect_err("refused").code,
                "invalid_display_name"
            );
        }
    }

    #[test]
    fn options_are_trimmed_and_kept_in_order() {
        let options = SelectOptions::parse(vec![" pro ".to_owned(), "free".to_owned()])
            .expect("valid options");
        assert_eq!(options.as_slice(), ["pro", "free"]);
        assert!(options.contains("pro"));
        assert!(!options.contains(" pro "));
        assert_eq!(options.into_vec(), ["pro", "free"]);
    }

    #[test]
    fn options_refuse_empty_lists_blanks_long_choices_and_duplicates() {
        let cases = [
            (vec![], "1 to 500"),
            (vec!["x".to_owned(); MAX_OPTIONS + 1], "1 to 500"),
            (vec!["pro".to_owned(), "  ".to_owned()], "empty"),
            (vec!["o".repeat(OPTION_MAX_CHARS + 1)], "at most 255"),
            (vec!["pro".to_owned(), " pro".to_owned()], "\"pro\" appears"),
        ];
        for (options, says) in cases {
            let refused = SelectOptions::parse(options).expect_err(says);
            assert_eq!(refused.code, "invalid_options");
            assert!(refused.message.contains(says), "{}", refused.message);
        }
        let distinct = (0..MAX_OPTIONS).map(|n| n.to_string()).collect();
        assert!(SelectOptions::parse(distinct).is_ok());
        assert!(SelectOptions::parse(vec!["Pro".to_owned(), "pro".to_owned()]).is_ok());
    }

    #[test]
    fn text_takes_strings_up_to_10000_characters() {
        let longest = "é".repeat(TEXT_MAX_CHARS);
        assert_eq!(
            parsed(FieldType::Text, text(longest.clone())),
            FieldValue::Text(longest)
        );
        refused(FieldType::Text, text("é".repeat(TEXT_MAX_CHARS + 1)));
        refused(FieldType::Text, FieldInput::Number(12.0));
        refused(FieldType::Text, FieldInput::Boolean(true));
    }

    #[test]
    fn numbers_come_as_numbers_or_numeric_text() {
        for (raw, expected) in [
            (FieldInput::Number(4.5), 4.5),
            (FieldInput::Number(12.0), 12.0),
            (FieldInput::Number(-3.0), -3.0),
            (text("4.50"), 4.5),
            (text(" -3 "), -3.0),
            (text("1e3"), 1000.0),
            (text("1E-2"), 0.01),
            (text("2.5e+1"), 25.0),
            (text("007"), 7.0),
        ] {
            assert_eq!(
                parsed(FieldType::Number, raw.clone()),
                FieldValue::Number(expected),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn numbers_refuse_anything_not_finite_or_not_json_shaped() {
        for raw in [
            "", " ", "inf", "-inf", "NaN", "infinity", "0x10", "+1", ".5", "5.", "1e", "1e+",
            "--1", "1 000", "1,5", "1e400", "١",
        ] {
            refused(FieldType::Number, text(raw));
        }
        for number in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            refused(FieldType::Number, FieldInput::Number(number));
        }
        refused(FieldType::Number, FieldInput::Boolean(true));
    }

    #[test]
    fn negative_zero_becomes_zero() {
        let zero = parsed(FieldType::Number, text("-0.0"));
        assert_eq!(zero, FieldValue::Number(0.0));
        assert!(matches!(zero, FieldValue::Number(number) if number.is_sign_positive()));
        assert_eq!(zero.to_storage(), "0");
        assert_eq!(
            parsed(FieldType::Number, FieldInput::Number(-0.0)).to_storage(),
            "0"
        );
        assert_eq!(FieldValue::Number(-0.0).to_storage(), "0");
        assert_eq!(exact_integer(-0.0), Some(0));
    }

    #[test]
    fn booleans_come_as_booleans_or_text_in_any_case() {
        assert_eq!(
            parsed(FieldType::Boolean, FieldInput::Boolean(true)),
            FieldValue::Boolean(true)
        );
        assert_eq!(
            parsed(FieldType::Boolean, text("TRUE")),
            FieldValue::Boolean(true)
        );
        assert_eq!(
            parsed(FieldType::Boolean, text("False")),
            FieldValue::Boolean(false)
        );
        for raw in [
            text("yes"),
            text("1"),
            FieldInput::Number(1.0),
            text(" true"),
            text(""),
        ] {
            refused(FieldType::Boolean, raw);
        }
    }

    #[test]
    fn dates_are_real_calendar_dates_written_yyyy_mm_dd() {
        assert_eq!(
            parsed(FieldType::Date, text("2024-02-29")),
            FieldValue::Date(date(2024, 2, 29))
        );
        for raw in [
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-2-29",
            "24-02-29",
            "2024/02/29",
            "2024-02-29T00:00:00",
            " 2024-02-29",
            "+202-02-29",
            "２０２４-02-29",
        ] {
            refused(FieldType::Date, text(raw));
        }
        refused(FieldType::Date, FieldInput::Number(20_240_229.0));
    }

    #[test]
    fn select_takes_exactly_one_of_the_options() {
        assert_eq!(
            parsed(FieldType::Select, text("pro")),
            FieldValue::Select("pro".to_owned())
        );
        for raw in [
            text("Pro"),
            text(" pro"),
            text("enterprise"),
            FieldInput::Number(1.0),
        ] {
            refused(FieldType::Select, raw);
        }
    }

    #[test]
    fn null_is_refused_with_a_pointer_to_remove() {
        for field_type in ALL_TYPES {
            let refused = refused(field_type, FieldInput::Null);
            assert_eq!(
                refused.message,
                "null is not a value; use remove to clear a custom field"
            );
        }
    }

    #[test]
    fn lists_and_records_are_refused_for_every_type() {
        for field_type in ALL_TYPES {
            let message = refused(field_type, FieldInput::Compound).message;
            assert!(message.contains(field_type.as_str()), "{message}");
        }
    }

    #[test]
    fn numbers_are_written_as_integers_when_whole() {
        for (value, integer, stored) in [
            (12.0, Some(12), "12"),
            (4.5, None, "4.5"),
            (-3.0, Some(-3), "-3"),
            (0.1, None, "0.1"),
            (
                9_007_199_254_740_991.0,
                Some(9_007_199_254_740_991),
                "9007199254740991",
            ),
        ] {
            assert_eq!(exact_integer(value), integer, "{value}");
            assert_eq!(FieldValue::Number(value).to_storage(), stored, "{value}");
        }
    }

    #[test]
    fn numbers_beyond_exact_integers_keep_their_float_form() {
        let big = FieldValue::Number(1e20);
        assert_eq!(exact_integer(1e20), None);
        assert_eq!(big.to_storage(), "1e+20");
        assert_eq!(
            FieldValue::from_storage(FieldType::Number, &big.to_storage()),
            Ok(big)
        );
    }

    #[test]
    fn storage_forms_are_canonical() {
        assert_eq!(parsed(FieldType::Number, text("4.50")).to_storage(), "4.5");
        assert_eq!(
            parsed(FieldType::Boolean, text("TRUE")).to_storage(),
            "true"
        );
        assert_eq!(
            FieldValue::Date(date(2024, 2, 29)).to_storage(),
            "2024-02-29"
        );
        assert_eq!(FieldValue::Text("hi".to_owned()).to_storage(), "hi");
        assert_eq!(FieldValue::Select("pro".to_owned()).to_storage(), "pro");
        assert_eq!(FieldValue::Boolean(false).to_storage(), "false");
    }

    #[test]
    fn corrupt_storage_is_refused() {
        for (field_type, stored) in [
            (FieldType::Number, "twelve"),
            (FieldType::Number, "NaN"),
            (FieldType::Boolean, "yes"),
            (FieldType::Date, "2024-02-30"),
        ] {
            let refused = FieldValue::from_storage(field_type, stored).expect_err(stored);
            assert_eq!(refused.code, "invalid_custom_field_value");
        }
    }

    fn value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![
            any::<String>().prop_map(FieldValue::Text),
            any::<f64>().prop_filter_map("finite", |number| finite(number).map(FieldValue::Number)),
            any::<i64>().prop_map(|number| FieldValue::Number(number as f64)),
            any::<bool>().prop_map(FieldValue::Boolean),
            (0..=9999_i32, 1..=12_u32, 1..=31_u32).prop_filter_map("a real date", |(y, m, d)| {
                NaiveDate::from_ymd_opt(y, m, d).map(FieldValue::Date)
            }),
            any::<String>().prop_map(FieldValue::Select),
        ]
    }

    fn field_type_of(value: &FieldValue) -> FieldType {
        match value {
            FieldValue::Text(_) => FieldType::Text,
            FieldValue::Number(_) => FieldType::Number,
            FieldValue::Boolean(_) => FieldType::Boolean,
            FieldValue::Date(_) => FieldType::Date,
            FieldValue::Select(_) => FieldType::Select,
        }
    }

    proptest! {
        #[test]
        fn storage_round_trips(value in value()) {
            let stored = value.to_storage();
            let read = FieldValue::from_storage(field_type_of(&value), &stored);
            prop_assert_eq!(read, Ok(value));
        }

        #[test]
        fn numbers_read_back_exactly_as_numbers_and_as_text(number in any::<f64>()) {
            if let Some(number) = finite(number) {
                let written = FieldValue::Number(number).to_storage();
                let expected = Ok(FieldValue::Number(number));
                prop_assert_eq!(parse(FieldType::Number, FieldInput::Number(number)), expected.clone());
                prop_assert_eq!(parse(FieldType::Number, FieldInput::Text(written)), expected);
            }
        }

        #[test]
        fn parse_never_panics_on_strings(text in any::<String>()) {
            for field_type in ALL_TYPES {
                let _ = parse(field_type, FieldInput::Text(text.clone()));
                let _ = FieldValue::from_storage(field_type, &text);
            }
        }

        #[test]
        fn parse_never_panics_on_number_like_strings(text in "[-+0-9.eE ]{0,30}") {
            if let Ok(FieldValue::Number(number)) = parse(FieldType::Number, FieldInput::Text(text)) {
                prop_assert!(number.is_finite());
            }
        }

        #[test]
        fn parse_never_panics_on_date_like_strings(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}") {
            let _ = parse(FieldType::Date, FieldInput::Text(text));
        }

        #[test]
        fn key_and_display_name_never_panic(text in any::<String>()) {
            let _ = FieldKey::parse(&text);
            let _ = DisplayName::parse(&text);
        }

        #[test]
        fn options_never_panic(options in proptest::collection::vec(any::<String>(), 0..8)) {
            let _ = SelectOptions::parse(options);
        }
    }
}
