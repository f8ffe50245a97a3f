//! What every page shows of the signed-in user: the navigation, the section shown, and the
//! notice saying what the form before the page did.

use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::store::SessionUser;

/// The dashboard's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Contacts,
    Fields,
    Keys,
    Webhooks,
}

/// A change a form made, said on the page it redirected to (as `?done=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    ContactCreated,
    ContactSaved,
    ContactDeleted,
    FieldCreated,
    FieldSaved,
    FieldDeleted,
    KeyRevoked,
    WebhookEnabled,
    WebhookDisabled,
    WebhookDeleted,
    DeliveryRetried,
}

impl Notice {
    const ALL: [Self; 11] = [
        Self::ContactCreated,
        Self::ContactSaved,
        Self::ContactDeleted,
        Self::FieldCreated,
        Self::FieldSaved,
        Self::FieldDeleted,
        Self::KeyRevoked,
        Self::WebhookEnabled,
        Self::WebhookDisabled,
        Self::WebhookDeleted,
        Self::DeliveryRetried,
    ];

    /// The value of `done` in the URL.
    fn name(self) -> &'static str {
        match self {
            Self::ContactCreated => "contact_created",
            Self::ContactSaved => "contact_saved",
            Self::ContactDeleted => "contact_deleted",
            Self::FieldCreated => "field_created",
            Self::FieldSaved => "field_saved",
            Self::FieldDeleted => "field_deleted",
            Self::KeyRevoked => "key_revoked",
            Self::WebhookEnabled => "webhook_enabled",
            Self::WebhookDisabled => "webhook_disabled",
            Self::WebhookDeleted => "webhook_deleted",
            Self::DeliveryRetried => "delivery_retried",
        }
    }

    /// What the page says.
    fn sentence(self) -> &'static str {
        match self {
            Self::ContactCreated => "Contact created.",
            Self::ContactSaved => "Changes saved.",
            Self::ContactDeleted => "Contact deleted.",
            Self::FieldCreated => "Custom field created.",
            Self::FieldSaved => "Custom field saved.",
            Self::FieldDeleted => "Custom field deleted, with every value of it.",
            Self::KeyRevoked => "API key revoked: requests with it are refused from now on.",
            Self::WebhookEnabled => {
                "Endpoint enabled: deliveries resume from the first event it had not tried."
            }
            Self::WebhookDisabled => {
                "Endpoint disabled: nothing is sent to it until it is enabled again."
            }
            Self::WebhookDeleted => "Webhook endpoint deleted, with its delivery attempts.",
            Self::DeliveryRetried => {
                "Another attempt is scheduled now; it goes out within seconds while the \
                 endpoint is enabled."
            }
        }
    }

    /// A redirect to `path`, saying this was done.
    pub(super) fn redirect(self, path: &str) -> Response {
        Redirect::to(&format!("{path}?done={}", self.name())).into_response()
    }
}

/// The `done` a page was sent to with; anything else in it is ignored (it only ever shows
/// one of [`Notice`]'s fixed sentences, never text from the URL).
#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

impl NoticeQuery {
    /// The query of a page that reads its own query otherwise: `done` as it was given.
    pub fn of(done: Option<String>) -> Self {
        Self { done }
    }

    fn notice(&self) -> Option<Notice> {
        let name = self.done.as_deref()?;
        Notice::ALL.into_iter().find(|notice| notice.name() == name)
    }
}

/// What the layout shows of the signed-in user: the navigation and the logout form, and
/// what was just done.
#[derive(Debug, Clone)]
pub struct Nav {
    pub company_name: String,
    pub email: String,
    pub csrf_token: String,
    /// The section shown, if any (an error page is in none).
    pub section: Option<Section>,
    /// The sentence saying what the form before this page did.
    pub notice: Option<&'static str>,
}

impl Nav {
    pub(super) fn new(user: &SessionUser, section: Section) -> Self {
        Self {
            section: Some(section),
            ..Self::signed_in(user)
        }
    }

    /// The navigation of a page in no section.
    pub(super) fn signed_in(user: &SessionUser) -> Self {
        Self {
            company_name: user.company_name.clone(),
            email: user.email.clone(),
            csrf_token: user.csrf_token.clone(),
            section: None,
            notice: None,
        }
    }

    /// The same, saying what the form before this page did.
    pub(super) fn with_notice(self, query: &NoticeQuery) -> Self {
        Self {
            notice: query.notice().map(Notice::sentence),
            ..self
        }
    }

    /// `aria-current` of the link to the section named `name`.
    pub(super) fn current(&self, name: &str) -> &'static str {
        let shown = match self.section {
            Some(Section::Contacts) => "contacts",
            Some(Section::Fields) => "fields",
            Some(Section::Keys) => "keys",
            Some(Section::Webhooks) => "webhooks",
            None => "",
        };
        if shown == name { "page" } else { "false" }
    }
}
