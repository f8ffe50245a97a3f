//! The filters of a contact list (`GET /api/v1/contacts` and `/count`), built one at a time:
//!
//! ```
//! use contactd_client::ContactFilter;
//! use contactd_api::ContactSort;
//!
//! let filter = ContactFilter::new()
//!     .text("lovelace")
//!     .any_of("plan", ["pro", "team"])
//!     .greater_than("seats", 10)
//!     .sort(ContactSort::RecentlyUpdated);
//! assert_eq!(
//!     filter.pairs(),
//!     [
//!         ("q", "lovelace"),
//!         ("cf.plan", "pro,team"),
//!         ("cf.seats.gt", "10"),
//!         ("sort", "-updated_at"),
//!     ]
//!     .map(|(name, value)| (name.to_owned(), value.to_owned()))
//! );
//! ```
//!
//! Every filter must hold for a contact to be found; each is checked by the server, which
//! answers a filter it refuses with a 400 naming it.

use std::fmt::Display;

use chrono::{DateTime, SecondsFormat, Utc};
use contactd_api::ContactSort;

/// Filters and an order for a contact list; [`ContactFilter::new`] finds every contact,
/// newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    pairs: Vec<(String, String)>,
}

impl ContactFilter {
    /// No filter: every contact, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Contacts whose full name, email or ext_id contains `text` (at least 3 characters),
    /// case-insensitively (`q`).
    pub fn text(self, text: impl Into<String>) -> Self {
        self.with("q", text)
    }

    /// The contact with this email.
    pub fn email(self, email: impl Into<String>) -> Self {
        self.with("email", email)
    }

    /// The contact with this phone number.
    pub fn phone_number(self, phone_number: impl Into<String>) -> Self {
        self.with("phone_number", phone_number)
    }

    /// The contact with this ext_id.
    pub fn ext_id(self, ext_id: impl Into<String>) -> Self {
        self.with("ext_id", ext_id)
    }

    /// Contacts created strictly after `time`.
    pub fn created_after(self, time: DateTime<Utc>) -> Self {
        self.with("created_after", rfc3339(time))
    }

    /// Contacts created strictly before `time`.
    pub fn created_before(self, time: DateTime<Utc>) -> Self {
        self.with("created_before", rfc3339(time))
    }

    /// Contacts last updated strictly after `time`.
    pub fn updated_after(self, time: DateTime<Utc>) -> Self {
        self.with("updated_after", rfc3339(time))
    }

    /// Contacts last updated strictly before `time`.
    pub fn updated_before(self, time: DateTime<Utc>) -> Self {
        self.with("updated_before", rfc3339(time))
    }

    /// Contacts whose custom field `key` holds `value`, read as its type reads values.
    pub fn equals(self, key: &str, value: impl Display) -> Self {
        self.with(format!("cf.{key}"), value.to_string())
    }

    /// Contacts whose select field `key` holds any of `options`.
    pub fn any_of<S: AsRef<str>>(self, key: &str, options: impl IntoIterator<Item = S>) -> Self {
        let options: Vec<String> = options
            .into_iter()
            .map(|option| option.as_ref().to_owned())
            .collect();
        self.with(format!("cf.{key}"), options.join(","))
    }

    /// Contacts whose number or date field `key` is greater than `value`.
    pub fn greater_than(self, key: &str, value: impl Display) -> Self {
        self.with(format!("cf.{key}.gt"), value.to_string())
    }

    /// Contacts whose number or date field `key` is at least `value`.
    pub fn at_least(self, key: &str, value: impl Display) -> Self {
        self.with(format!("cf.{key}.gte"), value.to_string())
    }

    /// Contacts whose number or date field `key` is less than `value`.
    pub fn less_than(self, key: &str, value: impl Display) -> Self {
        self.with(format!("cf.{key}.lt"), value.to_string())
    }

    /// Contacts whose number or date field `key` is at most `value`.
    pub fn at_most(self, key: &str, value: impl Display) -> Self {
        self.with(format!("cf.{key}.lte"), value.to_string())
    }

    /// Contacts that hold a value of the custom field `key` (`true`) or hold none.
    pub fn has(self, key: &str, holds: bool) -> Self {
        self.with(format!("cf.{key}.exists"), holds.to_string())
    }

    /// The list's order.
    pub fn sort(self, sort: ContactSort) -> Self {
        self.with("sort", sort.as_str())
    }

    /// The query parameters, in the order they were added.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((name.into(), value.into()));
        self
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}
