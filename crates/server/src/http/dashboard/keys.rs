//! The API key page: create a key (its secret shown this once, with a copy button), list
//! the company's keys with when each was made and last used, revoke one.

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use contactd_api::Scope;
use uuid::Uuid;

use super::extract::{FormBody, PageQuery};
use super::form::{FormInput, InputKind, Problem, filled, member, problem_at};
use super::nav::{Nav, Notice, NoticeQuery, Section};
use super::page::{Confirm, PageError, render, render_with, show_time};
use crate::api_key;
use crate::http::AppState;
use crate::store::{ApiKey, SessionUser};

/// The key page's path.
pub const LIST: &str = "/dashboard/keys";
/// The longest key label, in characters.
const MAX_NAME_CHARS: usize = 100;

/// A key as a row of the list.
#[derive(Debug)]
struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: String,
    revoked_at: Option<String>,
    /// "all", or the scopes' names.
    scopes: String,
}

/// A scope as a checkbox of the new-key form.
#[derive(Debug)]
struct ScopeChoice {
    name: &'static str,
    summary: &'static str,
    checked: bool,
}

/// The form input of a scope's checkbox.
fn scope_input(scope: Scope) -> String {
    format!("scope:{}", scope.as_str())
}

/// Every scope as a checkbox, checked when `checked` says.
fn scope_choices(checked: impl Fn(Scope) -> bool) -> Vec<ScopeChoice> {
    Scope::ALL
        .into_iter()
        .map(|scope| ScopeChoice {
            name: scope.as_str(),
            summary: scope.summary(),
            checked: checked(scope),
        })
        .collect()
}

impl From<&ApiKey> for KeyRow {
    fn from(key: &ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name.clone().unwrap_or_default(),
            prefix: key.prefix.clone(),
            created_at: show_time(&key.created_at),
            last_used_at: key
                .last_used_at
                .as_ref()
                .map_or_else(|| "never".to_owned(), show_time),
            revoked_at: key.revoked_at.as_ref().map(show_time),
            scopes: if key.scopes == Scope::ALL {
                "all".to_owned()
            } else {
                let names: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
                names.join(", ")
            },
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/keys.html")]
struct KeysPage {
    nav: Option<Nav>,
    keys: Vec<KeyRow>,
    /// The secret of the key just created: shown on this response only.
    new_key: Option<String>,
    inputs: Vec<FormInput>,
    scopes: Vec<ScopeChoice>,
    problem: Option<Problem>,
}

fn name_input(value: &str) -> Vec<FormInput> {
    vec![
        FormInput::new("name", "Label", InputKind::Text)
            .value(value)
            .hint("Optional: what the key is for, to tell keys apart."),
    ]
}

async fn keys_page(
    state: &AppState,
    user: &SessionUser,
    new_key: Option<String>,
    inputs: Vec<FormInput>,
    scopes: Vec<ScopeChoice>,
    problem: Option<Problem>,
) -> Result<KeysPage, PageError> {
    let keys = state.store().list_api_keys(user.caller.company_id).await?;
    Ok(KeysPage {
        nav: Some(Nav::new(user, Section::Keys)),
        keys: keys.iter().rev().map(KeyRow::from).collect(),
        new_key,
        inputs,
        scopes,
        problem,
    })
}

/// `GET /dashboard/keys`: the company's keys, newest first, and the form to make one.
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    PageQuery(notice): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let all = scope_choices(|_| true);
    let mut page = keys_page(&state, &user, None, name_input(""), all, None).await?;
    page.nav = page.nav.map(|nav| nav.with_notice(&notice));
    Ok(render(&page))
}

/// `POST /dashboard/keys`: makes a key and shows its secret, once. The page is answered
/// directly (not redirected to), so the secret is never in a URL or a later page.
pub async fn create_key(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    FormBody(form): FormBody<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let name = filled(&form, "name").map(|name| name.trim().to_owned());
    let scopes: Vec<Scope> = Scope::ALL
        .into_iter()
        .filter(|scope| form.contains_key(&scope_input(*scope)))
        .collect();
    let refusal = if name
        .as_ref()
        .is_some_and(|name| name.chars().count() > MAX_NAME_CHARS)
    {
        Some((
            Some("name".to_owned()),
            format!("a label is at most {MAX_NAME_CHARS} characters"),
        ))
    } else if scopes.is_empty() {
        Some((
            None,
            "choose at least one scope: a key without one can do nothing".to_owned(),
        ))
    } else {
        None
    };
    if let Some((input, sentence)) = refusal {
        let mut inputs = name_input(member(&form, "name"));
        let problem = problem_at(&mut inputs, input, sentence);
        let choices = scope_choices(|scope| scopes.contains(&scope));
        let page = keys_page(&state, &user, None, inputs, choices, Some(problem)).await?;
        return Ok(render_with(StatusCode::BAD_REQUEST, &page));
    }
    let key = api_key::generate(name, &scopes);
    state
        .store()
        .create_api_key(user.caller.company_id, &key.record)
        .await?;
    let all = scope_choices(|_| true);
    let page = keys_page(&state, &user, Some(key.secret), name_input(""), all, None).await?;
    Ok(render(&page))
}

/// The key of the user's company a path names, if it is not revoked yet; 404 for any other.
async fn active_key(state: &AppState, user: &SessionUser, id: &str) -> Result<ApiKey, PageError> {
    let id = Uuid::try_parse(id).map_err(|_| PageError::NotFound)?;
    // Revoking is by key id alone (as the CLI does): check the key is this company's.
    let keys = state.store().list_api_keys(user.caller.company_id).await?;
    keys.into_iter()
        .find(|key| key.id == id && key.revoked_at.is_none())
        .ok_or(PageError::NotFound)
}

/// `GET /dashboard/keys/{id}/revoke`: asks before revoking.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let key = active_key(&state, &user, &id).await?;
    let label = key
        .name
        .as_deref()
        .map(|name| format!(" ({name})"))
        .unwrap_or_default();
    let page = Confirm {
        nav: Some(Nav::new(&user, Section::Keys)),
        title: format!("Revoke key {}…{label}?", key.prefix),
        paragraphs: vec![
            "Every request made with this key is refused from the next one on, whoever \
             holds it. A revoked key cannot be brought back: an integration that uses it \
             needs a new key."
                .to_owned(),
        ],
        url: LIST.to_owned(),
        action: format!("{LIST}/{}/revoke", key.id),
        button: "Revoke key",
    };
    Ok(render(&page))
}

/// `POST /dashboard/keys/{id}/revoke`: revokes a key of the user's company; requests
/// with it are refused from the next one on.
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = active_key(&state, &user, &id).await?.id;
    state.store().revoke_api_key(id).await?;
    // The cache is keyed by the secret's hash, which is not known here: start it over.
    state.callers.clear();
    Ok(Notice::KeyRevoked.redirect(LIST))
}
