//! The filters and order of a contact list (docs/reference.md#finding-contacts), as a front
//! door receives them: `name=value` pairs, checked and resolved against the company's field
//! definitions into the store's [`ContactQuery`]. The API passes its query string's pairs,
//! the dashboard its search form's, so both take the same names and refuse the same way.

use chrono::DateTime;
use contactd_api::{ContactSort, ErrorCode, FieldType};

use crate::domain::{DefaultRegion, Email, ExtId, FieldInput, FieldValue, Invalid, PhoneNumber};
use crate::failure::{Failure, Field};
use crate::store::{
    Comparison, ContactQuery, FieldDefinition, FieldFilter, FieldTest, SEARCH_TEXT_MIN_CHARS,
    UniqueMember,
};

/// The longest `q`, in characters.
pub const SEARCH_TEXT_MAX_CHARS: usize = 200;

/// The names a contact list's filters take, for the message that refuses any other.
const FILTER_NAMES: [&str; 10] = [
    "q",
    "email",
    "phone_number",
    "ext_id",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "sort",
    "cf.KEY",
];

/// The prefix of a custom field filter's name: `cf.KEY`, `cf.KEY.gt`, ….
const FIELD_PREFIX: &str = "cf.";

/// The comparisons a custom field filter's name may end with, after the key.
const COMPARISONS: [(&str, Comparison); 4] = [
    ("gt", Comparison::Greater),
    ("gte", Comparison::GreaterOrEqual),
    ("lt", Comparison::Less),
    ("lte", Comparison::LessOrEqual),
];

/// The query the `filters` ask for; each name once (the front door refuses a name given
/// twice). `definitions` are the company's, which `cf.` filters name; `also` are the names
/// the front door takes besides the filters (a page's `limit`), which the refusal of an
/// unknown name lists with them.
pub fn contact_query(
    filters: &[(String, String)],
    also: &[&str],
    definitions: &[FieldDefinition],
    region: DefaultRegion,
) -> Result<ContactQuery, Failure> {
    let mut query = ContactQuery::default();
    for (name, value) in filters {
        let domain = |invalid: Invalid| Failure::invalid(invalid, Field::Query(name.clone()));
        match name.as_str() {
            "q" => query.text = Some(search_text(value).map_err(domain)?),
            "email" => query.identifier.push((
                UniqueMember::Email,
                Email::parse(value).map_err(domain)?.into_string(),
            )),
            "phone_number" => query.identifier.push((
                UniqueMember::PhoneNumber,
                PhoneNumber::parse(value, region)
                    .map_err(domain)?
                    .into_string(),
            )),
            "ext_id" => query.identifier.push((
                UniqueMember::ExtId,
                ExtId::parse(value).map_err(domain)?.into_string(),
            )),
            "created_after" => query.created.after = Some(time(name, value).map_err(domain)?),
            "created_before" => query.created.before = Some(time(name, value).map_err(domain)?),
            "updated_after" => query.updated.after = Some(time(name, value).map_err(domain)?),
            "updated_before" => query.updated.before = Some(time(name, value).map_err(domain)?),
            "sort" => query.sort = sort(value).map_err(domain)?,
            _ => match name.strip_prefix(FIELD_PREFIX) {
                Some(filter) => query
                    .fields
                    .push(field_filter(filter, value, definitions).map_err(domain)?),
                None => {
                    let names: Vec<String> = also
                        .iter()
                        .chain(&FILTER_NAMES)
                        .map(|name| format!("`{name}`"))
                        .collect();
                    return Err(domain(Invalid::new(
                        ErrorCode::InvalidQuery,
                        format!(
                            "unknown query parameter `{name:.64}`: this route takes {}",
                            names.join(", ")
                        ),
                    )));
                }
            },
        }
    }
    Ok(query)
}

/// The text of `q`: trimmed, from [`SEARCH_TEXT_MIN_CHARS`] to [`SEARCH_TEXT_MAX_CHARS`]
/// characters, without NUL.
fn search_text(value: &str) -> Result<String, Invalid> {
    let text = value.trim();
    let chars = text.chars().count();
    if (SEARCH_TEXT_MIN_CHARS..=SEARCH_TEXT_MAX_CHARS).contains(&chars) && !text.contains('\0') {
        Ok(text.to_owned())
    } else {
        Err(Invalid::new(
            ErrorCode::InvalidQuery,
            format!(
                "q must be from {SEARCH_TEXT_MIN_CHARS} to {SEARCH_TEXT_MAX_CHARS} characters \
                 without NUL: a search matches a run of at least {SEARCH_TEXT_MIN_CHARS}"
            ),
        ))
    }
}

/// An RFC 3339 time, in milliseconds since the epoch.
fn time(name: &str, value: &str) -> Result<i64, Invalid> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.timestamp_millis())
        .map_err(|_| {
            Invalid::new(
                ErrorCode::InvalidQuery,
                format!("{name} must be an RFC 3339 time, such as 2026-01-31T09:30:00Z"),
            )
        })
}

fn sort(value: &str) -> Result<ContactSort, Invalid> {
    ContactSort::ALL
        .into_iter()
        .find(|sort| sort.as_str() == value)
        .ok_or_else(|| {
            let names: Vec<String> = ContactSort::ALL
                .iter()
                .map(|sort| format!("`{sort}`"))
                .collect();
            Invalid::new(
                ErrorCode::InvalidQuery,
                format!("sort must be one of {}", names.join(", ")),
            )
        })
}

/// A custom field filter: `filter` is its name after `cf.` (`plan`, `score.gt`,
/// `plan.exists`), `value` what it is given.
fn field_filter(
    filter: &str,
    value: &str,
    definitions: &[FieldDefinition],
) -> Result<FieldFilter, Invalid> {
    let (key, test) = filter.split_once('.').unwrap_or((filter, ""));
    let definition = definitions
        .iter()
        .find(|definition| definition.key.as_str() == key)
        .ok_or_else(|| {
            Invalid::new(
                ErrorCode::UnknownCustomField,
                format!(
                    "no custom field `{key:.64}` is defined; create it first with POST \
                     /api/v1/custom-fields"
                ),
            )
        })?;
    let typed = |text: &str| {
        FieldValue::parse(
            definition.field_type,
            &definition.options,
            FieldInput::Text(text.to_owned()),
        )
        .map_err(|invalid| {
            Invalid::new(
                invalid.code,
                format!("custom field `{key}`: {}", invalid.message),
            )
        })
    };
    let ordered = matches!(definition.field_type, FieldType::Number | FieldType::Date);
    let test = match test {
        "" if ordered => {
            let ordinal = typed(value)?.ordinal().unwrap_or_default();
            FieldTest::Compare(Comparison::Equal, ordinal)
        }
        "" => {
            let values = if definition.field_type == FieldType::Select
                && !definition.options.iter().any(|option| option == value)
            {
                value.split(',').map(typed).collect::<Result<Vec<_>, _>>()?
            } else {
                vec![typed(value)?]
            };
            FieldTest::AnyOf(values.iter().map(FieldValue::to_storage).collect())
        }
        "exists" => match value {
            "true" => FieldTest::Exists(true),
            "false" => FieldTest::Exists(false),
            _ => {
                return Err(Invalid::new(
                    ErrorCode::InvalidQuery,
                    format!("cf.{key}.exists must be `true` or `false`"),
                ));
            }
        },
        comparison => {
            let known = COMPARISONS
                .iter()
                .find(|(name, _)| *name == comparison)
                .map(|(_, comparison)| *comparison);
            match known {
                Some(comparison) if ordered => {
                    let ordinal = typed(value)?.ordinal().unwrap_or_default();
                    FieldTest::Compare(comparison, ordinal)
                }
                Some(_) => {
                    return Err(Invalid::new(
                        ErrorCode::InvalidQuery,
                        format!(
                            "cf.{key}.{comparison} compares numbers and dates; `{key}` is a {} \
                             field, which takes cf.{key}= and cf.{key}.exists=",
                            definition.field_type.as_str()
                        ),
                    ));
                }
                None => {
                    return Err(Invalid::new(
                        ErrorCode::InvalidQuery,
                        format!(
                            "unknown custom field filter `cf.{key}.{comparison:.16}`: a filter is \
                             cf.{key}, cf.{key}.gt, .gte, .lt, .lte or .exists"
                        ),
                    ));
                }
            }
        }
    };
    Ok(FieldFilter {
        field_id: definition.id,
        test,
    })
}
