//! How a use case fails, whichever front door asked: the part of the input at fault (a
//! [`Field`]), a stable code and a sentence. Each front door names the part its own way: the
//! API as a JSON path, the dashboard as a form input, the CLI as a flag.

use contactd_api::ErrorCode;
use uuid::Uuid;

use crate::domain::Invalid;
use crate::store::{ContactVersion, StoreError, UniqueMember};

/// The part of a use case's input a failure is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Email,
    PhoneNumber,
    ExtId,
    FirstName,
    LastName,
    /// The custom field values as a whole.
    CustomFields,
    /// A custom field value of a new contact or of an upsert.
    CustomField(CustomFieldAt),
    /// A custom field value an update sets.
    SetCustomField(CustomFieldAt),
    /// The `index`-th key of the custom fields an update clears.
    RemovedCustomField {
        index: usize,
        key: String,
    },
    /// A custom field definition's key.
    Key,
    /// A custom field definition's display name.
    DisplayName,
    /// A custom field definition's type.
    FieldType,
    /// A select field's options.
    Options,
    /// A webhook endpoint's URL.
    Url,
    /// A webhook endpoint's description.
    Description,
    /// A filter of a contact list, by its name (`q`, `cf.plan`).
    Query(String),
}

impl Field {
    /// The contact member that must be unique, as the part of an input that names it.
    pub fn of_member(member: UniqueMember) -> Self {
        match member {
            UniqueMember::Email => Self::Email,
            UniqueMember::PhoneNumber => Self::PhoneNumber,
            UniqueMember::ExtId => Self::ExtId,
        }
    }
}

/// Where a custom field value is in its list: the `index`-th, given under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldAt {
    pub index: usize,
    pub key: String,
    pub part: ValuePart,
}

/// Which half of a custom field value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuePart {
    /// The key: no field has it, or it is given twice.
    Key,
    /// The value: its field's type refuses it.
    Value,
}

/// Why a use case did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The input, or a part of it, is refused.
    #[error("{message}")]
    Invalid {
        field: Option<Field>,
        code: ErrorCode,
        message: String,
    },
    /// The write would break a uniqueness rule, or was judged against a state that changed
    /// meanwhile (`conflict`).
    #[error("{message}")]
    Conflict {
        field: Option<Field>,
        code: ErrorCode,
        message: String,
        conflicting_contact_id: Option<Uuid>,
    },
    /// The contact changed since the version the caller named (docs/reference.md#etags);
    /// nothing was written.
    #[error("the contact has changed since it was read")]
    VersionChanged { current: ContactVersion },
    /// Nothing by that name in the company.
    #[error("{message}")]
    NotFound { code: ErrorCode, message: String },
    /// What was asked for existed once and no longer does (an expired feed cursor).
    #[error("{message}")]
    Gone { code: ErrorCode, message: String },
    /// The store could not answer ([`StoreError::is_unavailable`]) or failed.
    #[error(transparent)]
    Store(StoreError),
    /// Several parts of one input are refused, in the input's order (never fewer than two;
    /// see [`Refusals`]): the dashboard marks each input, the API answers the first.
    #[error("{}", .0[0])]
    Several(Vec<Failure>),
}

impl Failure {
    /// The first refusal of [`Failure::Several`]; any other failure itself.
    pub fn first(self) -> Failure {
        match self {
            Failure::Several(failures) => failures.into_iter().next().unwrap_or_else(|| {
                Failure::Store(StoreError::Internal("an empty list of refusals".to_owned()))
            }),
            other => other,
        }
    }
}

/// The refusals of the parts of one input, checked one after another rather than up to
/// the first, so that a person filling in a form sees every problem at once.
#[derive(Debug, Default)]
pub struct Refusals(Vec<Failure>);

impl Refusals {
    /// The value of a part that passed, or `None` for one refused (kept).
    pub fn check<T>(&mut self, checked: Result<T, Failure>) -> Option<T> {
        checked.map_err(|failure| self.0.push(failure)).ok()
    }

    /// Keeps a refusal found otherwise than by a check.
    pub fn refuse(&mut self, failure: Failure) {
        self.0.push(failure);
    }

    /// Nothing refused, the one refusal, or [`Failure::Several`].
    pub fn finish(mut self) -> Result<(), Failure> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.remove(0)),
            _ => Err(Failure::Several(self.0)),
        }
    }
}

impl Failure {
    /// A value refused by the domain, at `field` of the input.
    pub fn invalid(invalid: Invalid, field: Field) -> Self {
        Self::Invalid {
            field: Some(field),
            code: invalid.code,
            message: invalid.message,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DuplicateContact {
                member,
                conflicting_contact_id,
            } => Self::Conflict {
                code: match member {
                    UniqueMember::Email => ErrorCode::DuplicateEmail,
                    UniqueMember::PhoneNumber => ErrorCode::DuplicatePhoneNumber,
                    UniqueMember::ExtId => ErrorCode::DuplicateExtId,
                },
                message: format!(
                    "another contact already has this {}",
                    match member {
                        UniqueMember::Email => "email",
                        UniqueMember::PhoneNumber => "phone number",
                        UniqueMember::ExtId => "ext_id",
                    }
                ),
                field: Some(Field::of_member(member)),
                conflicting_contact_id,
            },
            StoreError::DuplicateFieldKey => Self::Conflict {
                code: ErrorCode::DuplicateCustomField,
                message: "a custom field with this key already exists".to_owned(),
                field: Some(Field::Key),
                conflicting_contact_id: None,
            },
            StoreError::DuplicateCompanyName => Self::Conflict {
                code: ErrorCode::DuplicateCompany,
                message: "a company with this name already exists".to_owned(),
                field: None,
                conflicting_contact_id: None,
            },
            StoreError::DuplicateUserEmail => Self::Conflict {
                code: ErrorCode::DuplicateUser,
                message: "a user with this email already exists".to_owned(),
                field: Some(Field::Email),
                conflicting_contact_id: None,
            },
            StoreError::OptionsLeftOut { key, missing } => {
                let quoted: Vec<String> =
                    missing.iter().map(|option| format!("{option:?}")).collect();
                let (options, are, them) = match quoted.as_slice() {
                    [one] => (format!("option {one}"), "is", "it"),
                    many => (format!("options {}", many.join(", ")), "are", "them"),
                };
                Self::Conflict {
                    code: ErrorCode::Conflict,
                    message: format!(
                        "{options} of {key} {are} stored but missing from this list: another \
                         change may have added {them} while this request was made, and options \
                         are never removed; read the field and send the full list again"
                    ),
                    field: Some(Field::Options),
                    conflicting_contact_id: None,
                }
            }
            StoreError::NotFound => Self::NotFound {
                code: ErrorCode::NotFound,
                message: "no such resource in your company".to_owned(),
            },
            StoreError::TooManyWebhooks => Self::Conflict {
                code: ErrorCode::TooManyWebhooks,
                message: format!(
                    "your company has {} webhook endpoints, the most it may have: delete one \
                     first",
                    crate::store::MAX_WEBHOOKS
                ),
                field: None,
                conflicting_contact_id: None,
            },
            StoreError::VersionChanged { current } => Self::VersionChanged { current },
            StoreError::CursorExpired => Self::Gone {
                code: ErrorCode::CursorExpired,
                message: "the cursor is older than the event retention: events after it were \
                          deleted; start again without one, from the oldest event kept"
                    .to_owned(),
            },
            StoreError::FieldDeleted => Self::Invalid {
                code: ErrorCode::UnknownCustomField,
                message:
                    "a custom field named in the request was deleted while it was being applied"
                        .to_owned(),
                field: Some(Field::CustomFields),
            },
            StoreError::Invalid(invalid) => Self::Invalid {
                code: invalid.code,
                message: invalid.message,
                field: None,
            },
            other if other.is_unstorable_text() => Self::Invalid {
                code: ErrorCode::InvalidText,
                message: "the request holds a character that cannot be stored, such as NUL"
                    .to_owned(),
                field: None,
            },
            other => Self::Store(other),
        }
    }
}
