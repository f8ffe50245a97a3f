//! Reading the body of a route that takes many contacts at once (docs/reference.md#11-bulk-batch-writes-import-and-export): up to
//! [`MAX_BULK_ITEMS`] objects, each read on its own, so that an item that cannot be read
//! fails alone, with its index, and is echoed back as it was sent.

use contactd_api::ErrorCode;
use contactd_api::MAX_BULK_ITEMS;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::parse_json;

/// Members of Alpharun's "Add contacts" that belong to its job openings, which contactd
/// does not have: an item carrying one fails, naming it.
const JOB_OPENING_MEMBERS: [&str; 3] = ["job_opening_id", "resume", "interview_custom_fields"];

/// Whether a create body is an array (the bulk form) rather than one contact.
pub fn is_array(body: &[u8]) -> bool {
    body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[')
}

/// Refuses a bulk body of more than [`MAX_BULK_ITEMS`] items, or one whose items are not
/// all objects, as a whole; `at` is the path of the array. The items stay raw JSON, each
/// read on its own.
pub fn bulk_items(items: Vec<Box<RawValue>>, at: &str) -> Result<Vec<Box<RawValue>>, ApiError> {
    if items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::bad_request(
            ErrorCode::TooManyItems,
            format!(
                "{} items were sent; at most {MAX_BULK_ITEMS} are accepted in one request",
                items.len()
            ),
            (!at.is_empty()).then(|| at.to_owned()),
        ));
    }
    if let Some(index) = items.iter().position(|item| !item.get().starts_with('{')) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "every item must be a JSON object",
            Some(format!("{at}[{index}]")),
        ));
    }
    Ok(items)
}

/// Items of a bulk body, or what became of them, each with its index in the body.
pub type Indexed<T> = Vec<(usize, T)>;

/// Reads every item on its own: those read, and the failures of those that could not be.
pub fn read_each<T: DeserializeOwned>(items: &[Box<RawValue>]) -> (Indexed<T>, Indexed<ApiError>) {
    let mut read = Vec::with_capacity(items.len());
    let mut failed = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_item(item) {
            Ok(item) => read.push((index, item)),
            Err(error) => failed.push((index, error)),
        }
    }
    (read, failed)
}

/// Reads one item; one refused for a member of Alpharun's job openings says so.
///
/// Items are read without tracking the path of each member first (path tracking costs on
/// every member of every item of an import); only a refused item is read again, with it,
/// for the error.
fn parse_item<T: DeserializeOwned>(item: &RawValue) -> Result<T, ApiError> {
    if let Ok(parsed) = serde_json::from_str(item.get()) {
        return Ok(parsed);
    }
    parse_json(item.get().as_bytes()).map_err(|error| {
        let members: Map<String, Value> = serde_json::from_str(item.get()).unwrap_or_default();
        match JOB_OPENING_MEMBERS
            .into_iter()
            .find(|member| members.contains_key(*member))
        {
            Some(member) => ApiError::bad_request(
                ErrorCode::UnsupportedMember,
                format!(
                    "`{member}` belongs to Alpharun's job openings, which contactd does not have"
                ),
                Some(member.to_owned()),
            ),
            None => error,
        }
    })
}

/// A failed item's members as sent, beside which its `index` and `error` are answered: an
/// item's own `index` or `error` member (refused as unknown) is left out, so the answer
/// never holds a member twice.
pub fn echo(item: &RawValue) -> Map<String, Value> {
    let mut members: Map<String, Value> = serde_json::from_str(item.get()).unwrap_or_default();
    members.remove("index");
    members.remove("error");
    members
}
