//! A contact's history on its page: who changed what, when, newest first
//! (docs/reference.md#contact-history).

use std::collections::HashMap;

use contactd_api as api;
use serde_json::Value;
use uuid::Uuid;

use super::page::{PageError, show_time};
use crate::domain::ContactIdentifier;
use crate::events;
use crate::http::AppState;
use crate::store::{Actor, Event, SessionUser};

/// The changes a contact's page shows; the API's history has them all.
const SHOWN: u32 = 20;

/// One change as the page shows it.
#[derive(Debug)]
pub(super) struct ShownChange {
    pub when: String,
    pub who: String,
    /// What changed: "Created", "Deleted", or one line per value.
    pub what: Vec<String>,
}

/// The history the page shows, and whether older changes were left out.
#[derive(Debug)]
pub(super) struct ShownHistory {
    pub changes: Vec<ShownChange>,
    pub more: bool,
}

/// The most recent changes of a contact of the user's company.
pub(super) async fn recent_changes(
    state: &AppState,
    user: &SessionUser,
    contact_id: Uuid,
) -> Result<ShownHistory, PageError> {
    let company_id = user.caller.company_id;
    let identifier = ContactIdentifier::Id(contact_id);
    let page = events::history(&state.directory, company_id, &identifier, None, SHOWN).await?;
    let names = actor_names(state, company_id).await?;
    Ok(ShownHistory {
        more: page.next.is_some(),
        changes: page
            .events
            .into_iter()
            .map(|event| shown(event, &names))
            .collect(),
    })
}

/// What each key and user of the company is called on the page.
async fn actor_names(
    state: &AppState,
    company_id: Uuid,
) -> Result<HashMap<Actor, String>, PageError> {
    let store = &state.directory.store;
    let keys = store.list_api_keys(company_id).await?;
    let users = store.list_users(company_id).await?;
    let keys = keys.into_iter().map(|key| {
        let label = key
            .name
            .map(|name| format!(" ({name})"))
            .unwrap_or_default();
        (
            Actor::ApiKey(key.id),
            format!("API key {}…{label}", key.prefix),
        )
    });
    let users = users
        .into_iter()
        .map(|user| (Actor::User(user.id), user.email));
    Ok(keys.chain(users).collect())
}

fn shown(event: Event, names: &HashMap<Actor, String>) -> ShownChange {
    let who = names
        .get(&event.actor)
        .cloned()
        .unwrap_or_else(|| match &event.actor {
            Actor::ApiKey(id) => format!("API key {id}"),
            Actor::User(id) => format!("user {id}"),
            Actor::Cli(command) => format!("contactd {command}"),
        });
    let when = show_time(&event.occurred_at);
    let event = api::Event::from(event);
    let what = match (event.event_type, event.data.changes) {
        (api::EventType::ContactCreated, _) => vec!["Created".to_owned()],
        (api::EventType::ContactDeleted, _) => vec!["Deleted".to_owned()],
        (_, Some(changes)) => changes
            .into_iter()
            .map(|(name, change)| {
                let name = name.strip_prefix("custom_fields.").unwrap_or(&name);
                format!("{name}: {} → {}", text(&change.before), text(&change.after))
            })
            .collect(),
        (_, None) => Vec::new(),
    };
    ShownChange { when, who, what }
}

/// A value of a change as text: "none" for no value.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "none".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
