//! The dashboard: server-rendered pages where people manage custom fields, API keys and
//! contacts in a browser, on the same port as the API.
//!
//! Every page acts for the company of the signed-in user, through the same use cases the
//! API calls (so the same domain rules, store code and error messages apply); a refusal is
//! shown next to the form input it is about.
//! Pages are askama templates compiled into the binary, assets are embedded, and the only
//! script is the copy button's. Each form carries the session's CSRF token, checked in
//! one place ([`session::verify_csrf`]) before any handler runs.

mod assets;
mod contacts;
mod fields;
mod keys;
mod session;

use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::failure::{Failure, Field};
use crate::store::{SessionUser, StoreError};

/// The dashboard's routes; `state` is what the session check reads sessions from.
pub fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/dashboard", get(|| async { Redirect::to(contacts::LIST) }))
        .route(
            contacts::LIST,
            get(contacts::list_contacts).post(contacts::create_contact),
        )
        .route("/dashboard/contacts/new", get(contacts::new_contact_form))
        .route(
            "/dashboard/contacts/{id}",
            get(contacts::show_contact).post(contacts::update_contact),
        )
        .route("/dashboard/contacts/{id}/edit", get(contacts::edit_contact))
        .route(
            "/dashboard/contacts/{id}/delete",
            get(contacts::confirm_delete).post(contacts::delete_contact),
        )
        .route(
            fields::LIST,
            get(fields::list_fields).post(fields::create_field),
        )
        .route(
            "/dashboard/fields/{key}",
            get(fields::edit_field).post(fields::update_field),
        )
        .route(
            "/dashboard/fields/{key}/delete",
            get(fields::confirm_delete).post(fields::delete_field),
        )
        .route(keys::LIST, get(keys::list_keys).post(keys::create_key))
        .route("/dashboard/keys/{id}/revoke", post(keys::revoke_key))
        .route("/dashboard/logout", post(session::logout))
        // Layers run last-added first: the session is found, then the CSRF token checked.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::verify_csrf,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route(
            session::LOGIN,
            get(session::login_page).post(session::login).route_layer(
                axum::middleware::from_fn_with_state(state, session::verify_csrf),
            ),
        )
        .route("/dashboard/assets/{name}", get(assets::asset))
        .merge(signed_in)
        .route("/dashboard/{*rest}", any(page_not_found))
        .layer(axum::middleware::map_response(protect_pages))
}

/// Headers on every dashboard response: no framing, no content from elsewhere, nothing
/// cached unless the handler said otherwise (pages show contacts and new API keys).
async fn protect_pages(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn page_not_found() -> PageError {
    PageError::NotFound
}

/// Why a page could not be shown: answered with an error page of the matching status.
#[derive(Debug)]
pub enum PageError {
    /// A use case failed; its sentence is shown, with the status the API would answer.
    Failed(Failure),
    /// 403: a form came without the session's CSRF token, or with another one.
    Csrf,
    /// 404: no such page.
    NotFound,
    /// 400: the form could not be read.
    BadForm(String),
    /// 500: a failure the user cannot act on; logged, never shown.
    Internal(&'static str),
}

impl From<Failure> for PageError {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self::Failed(error.into())
    }
}

/// The error page. It is also kept in the response's extensions, so that
/// [`with_navigation`] can show it again with the signed-in user's navigation.
#[derive(Clone, Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    status: u16,
    title: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Self::Failed(failure) => {
                // A 500's cause is logged here and shown only as "internal error".
                let (status, message) = match failure {
                    Failure::Invalid { message, .. } => (400, message),
                    Failure::Conflict { message, .. } => (409, message),
                    Failure::NotFound { message, .. } => (404, message),
                    Failure::Store(error) if error.is_unavailable() => (
                        503,
                        "the database is unavailable; try again shortly".to_owned(),
                    ),
                    Failure::Store(error) => {
                        tracing::error!(error = %error, "request failed");
                        (500, "internal error".to_owned())
                    }
                };
                let title = match status {
                    404 => "Not found",
                    503 => "Try again shortly",
                    500..=599 => "Something went wrong",
                    _ => "That did not work",
                };
                (status, title, message)
            }
            Self::Csrf => (
                403,
                "This form has expired",
                "The form was sent without its security token, or with one from another \
                 session. Go back, reload the page and send it again."
                    .to_owned(),
            ),
            Self::NotFound => (
                404,
                "Not found",
                "There is no such page in your company's dashboard.".to_owned(),
            ),
            Self::BadForm(reason) => (400, "That did not work", reason),
            Self::Internal(cause) => {
                tracing::error!(cause, "a dashboard request failed");
                (500, "Something went wrong", "internal error".to_owned())
            }
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let page = ErrorPage {
            nav: None,
            status: status.as_u16(),
            title,
            message,
        };
        let mut response = render_with(status, &page);
        response.extensions_mut().insert(page);
        response
    }
}

/// An error page answered to a signed-in user, shown again with their navigation: errors
/// are raised where the session is not at hand, and this runs where it is.
fn with_navigation(response: Response, user: &SessionUser) -> Response {
    let Some(page) = response.extensions().get::<ErrorPage>() else {
        return response;
    };
    let page = ErrorPage {
        nav: Some(Nav::signed_in(user)),
        ..page.clone()
    };
    let Ok(html) = page.render() else {
        return response;
    };
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, Body::from(html))
}

/// A page rendered to HTML. Templates are checked when the binary is compiled; rendering
/// fails only if a value's `Display` does, which none of ours can.
fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not render a dashboard page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A page rendered with a status other than 200: a form shown again with its errors.
fn render_with(status: StatusCode, page: &impl Template) -> Response {
    (status, render(page)).into_response()
}

/// A form body; a body that cannot be read, or that holds a NUL or bytes that are not
/// UTF-8 text ([`readable_text`]), is an error page, not axum's plain text.
#[derive(Debug)]
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PageError> {
        let (parts, body) = request.into_parts();
        // Every form route runs behind the CSRF check, which has read the body within the
        // body limit and handed it on in memory: this takes what is already there.
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|_| PageError::BadForm("the form could not be read".to_owned()))?;
        readable_text(&bytes).map_err(|reason| PageError::BadForm(format!("the form {reason}")))?;
        Form::<T>::from_request(Request::from_parts(parts, Body::from(bytes)), state)
            .await
            .map(|Form(form)| Self(form))
            .map_err(|rejection| PageError::BadForm(rejection.body_text()))
    }
}

/// Refuses URL-encoded input (a dashboard address or form body) that decodes to anything
/// but UTF-8 text without NUL: the one check every such input passes before it is read
/// (`docs/robustness.md#errors-in-the-shape-whatever-the-input`).
///
/// The form decoder replaces bytes that are not UTF-8 with U+FFFD, so such input would
/// otherwise be stored as something the client never sent; and PostgreSQL text cannot hold
/// NUL, so a NUL would be a 500 there and stored on SQLite. Decoding the whole input at once
/// is exact: `&`, `=` and `+` are ASCII, so it is UTF-8 exactly when every decoded name and
/// value is.
fn readable_text(encoded: &[u8]) -> Result<(), &'static str> {
    match percent_encoding::percent_decode(encoded).decode_utf8() {
        Ok(text) if !text.contains('\0') => Ok(()),
        Ok(_) => Err("holds a NUL character"),
        Err(_) => Err("holds bytes that are not UTF-8 text"),
    }
}

/// A page's query string, refused as [`FormBody`] refuses a form.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        readable_text(parts.uri.query().unwrap_or_default().as_bytes())
            .map_err(|reason| PageError::BadForm(format!("the address {reason}")))?;
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| Self(query))
            .map_err(|rejection| PageError::BadForm(rejection.body_text()))
    }
}

/// The page that asks before deleting something: what will be lost, and the button.
#[derive(Template)]
#[template(path = "dashboard/confirm_delete.html")]
struct ConfirmDelete {
    nav: Option<Nav>,
    title: String,
    /// What deleting does, a paragraph each.
    paragraphs: Vec<String>,
    /// The page of the thing; the form posts to its `/delete`.
    url: String,
    button: &'static str,
}

/// The dashboard's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Contacts,
    Fields,
    Keys,
}

/// A change a form made, said on the page it redirected to (as `?done=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    ContactCreated,
    ContactSaved,
    ContactDeleted,
    FieldCreated,
    FieldSaved,
    FieldDeleted,
    KeyRevoked,
}

impl Done {
    const ALL: [Self; 7] = [
        Self::ContactCreated,
        Self::ContactSaved,
        Self::ContactDeleted,
        Self::FieldCreated,
        Self::FieldSaved,
        Self::FieldDeleted,
        Self::KeyRevoked,
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
        }
    }

    /// A redirect to `path`, saying this was done.
    fn redirect(self, path: &str) -> Response {
        Redirect::to(&format!("{path}?done={}", self.name())).into_response()
    }
}

/// The `done` a page was sent to with; anything else in it is ignored (it only ever shows
/// one of [`Done`]'s fixed sentences, never text from the URL).
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

impl DoneQuery {
    fn done(&self) -> Option<Done> {
        let name = self.done.as_deref()?;
        Done::ALL.into_iter().find(|done| done.name() == name)
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
    fn new(user: &SessionUser, section: Section) -> Self {
        Self {
            section: Some(section),
            ..Self::signed_in(user)
        }
    }

    /// The navigation of a page in no section.
    fn signed_in(user: &SessionUser) -> Self {
        Self {
            company_name: user.company_name.clone(),
            email: user.email.clone(),
            csrf_token: user.csrf_token.clone(),
            section: None,
            notice: None,
        }
    }

    /// The same, saying what the form before this page did.
    fn done(self, query: &DoneQuery) -> Self {
        Self {
            notice: query.done().map(Done::sentence),
            ..self
        }
    }

    /// `aria-current` of the link to the section named `name`.
    fn current(&self, name: &str) -> &'static str {
        let shown = match self.section {
            Some(Section::Contacts) => "contacts",
            Some(Section::Fields) => "fields",
            Some(Section::Keys) => "keys",
            None => "",
        };
        if shown == name { "page" } else { "false" }
    }
}

/// One labelled input of a form, with its value and, when the form came back refused, the
/// sentence saying what is wrong with it. Every form renders its inputs through one
/// template (`dashboard/inputs.html`), so each is labelled and described alike.
#[derive(Debug, Clone)]
pub struct FormInput {
    /// The form member, also the input's id (prefixed).
    pub name: String,
    pub label: String,
    pub kind: InputKind,
    pub value: String,
    /// The choices of a `Select`.
    pub options: Vec<String>,
    /// A sentence under the label saying what is accepted.
    pub hint: Option<String>,
    pub error: Option<String>,
    pub required: bool,
    /// The value the input showed when the form was loaded, sent back with the form as a
    /// hidden input so that saving writes only what the user changed ([`changed`]).
    pub shown: Option<String>,
}

/// How an input is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Text,
    Email,
    Phone,
    Number,
    Date,
    /// One of `options`, or none.
    Select,
    /// true, false or none.
    Boolean,
    /// Several lines.
    Lines,
}

impl FormInput {
    /// An input of `kind`, empty and optional.
    fn new(name: impl Into<String>, label: impl Into<String>, kind: InputKind) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind,
            value: String::new(),
            options: Vec::new(),
            hint: None,
            error: None,
            required: false,
            shown: None,
        }
    }

    fn value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn shown(mut self, shown: impl Into<String>) -> Self {
        self.shown = Some(shown.into());
        self
    }

    /// The hidden input carrying [`FormInput::shown`] back.
    fn shown_name(&self) -> String {
        shown_name(&self.name)
    }

    fn options(mut self, options: Vec<String>) -> Self {
        self.options = options;
        self
    }

    /// The HTML `type` of an `<input>`.
    fn html_type(&self) -> &'static str {
        match self.kind {
            InputKind::Email => "email",
            InputKind::Phone => "tel",
            InputKind::Date => "date",
            // A number field takes "4.50" or "1e3" as the API does; the browser's own
            // number input would refuse some of those before the server could explain.
            InputKind::Text
            | InputKind::Number
            | InputKind::Select
            | InputKind::Boolean
            | InputKind::Lines => "text",
        }
    }

    fn is_select(&self) -> bool {
        self.kind == InputKind::Select
    }

    fn is_boolean(&self) -> bool {
        self.kind == InputKind::Boolean
    }

    fn is_lines(&self) -> bool {
        self.kind == InputKind::Lines
    }

    /// The ids of the hint and the error shown for the input, for `aria-describedby`.
    fn described_by(&self) -> String {
        let hint = self.hint.as_ref().map(|_| format!("hint-{}", self.name));
        let error = self.error.as_ref().map(|_| format!("error-{}", self.name));
        [hint, error]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn inputmode(&self) -> &'static str {
        match self.kind {
            InputKind::Number => "decimal",
            _ => "text",
        }
    }
}

/// What was wrong with a form sent back: the sentence, and the input it is about (whose
/// own error it is also shown as), if any.
#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    pub input: Option<String>,
}

/// Shows a write a use case refused on its form: the sentence next to the input at fault
/// (the form input `input_of` names for the failure's [`Field`]) and above the form, with
/// the status the API answers (400, or 409 for a conflict). Anything not about the input
/// (a 404, the database down) is an error page.
fn refused(
    inputs: &mut [FormInput],
    failure: Failure,
    input_of: impl FnOnce(&Field) -> Option<String>,
) -> Result<(StatusCode, Problem), PageError> {
    let (status, field, message) = match failure {
        Failure::Invalid { field, message, .. } => (StatusCode::BAD_REQUEST, field, message),
        Failure::Conflict { field, message, .. } => (StatusCode::CONFLICT, field, message),
        other => return Err(PageError::Failed(other)),
    };
    let input = field.as_ref().and_then(input_of);
    Ok((status, problem_at(inputs, input, message)))
}

/// A form sent back refused for `message`: shown next to the input `name`, when the form
/// has it, and above the form.
fn problem_at(inputs: &mut [FormInput], name: Option<String>, message: String) -> Problem {
    let at = name.and_then(|name| inputs.iter_mut().find(|input| input.name == name));
    let input = at.map(|at| {
        at.error = Some(message.clone());
        at.name.clone()
    });
    Problem { message, input }
}

/// The prefix of the hidden input that carries back what the input `NAME` showed.
const SHOWN: &str = "shown.";

fn shown_name(name: &str) -> String {
    format!("{SHOWN}{name}")
}

/// What the user set the input `name` to, if they changed it: `None` when the form did not
/// have the input (it was not shown: a custom field defined after the form was loaded) or
/// when it still holds what it showed. A save writes only these, so it never overwrites
/// what someone else changed meanwhile in an input this user left alone
/// (`docs/robustness.md#concurrent-admins-no-lost-updates`). A form without the hidden
/// input (sent by a script) writes every input it has.
fn changed<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    let value = form.get(name)?;
    match form.get(&shown_name(name)) {
        Some(shown) if shown == value => None,
        _ => Some(value),
    }
}

/// What the input `name` showed when the form was loaded, as the form carries it back.
fn shown_in<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(&shown_name(name)).map(String::as_str)
}

/// The value of a form member, as typed; `""` when absent.
fn member<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

/// A form member's value, or `None` when it is blank (an empty input means "no value").
fn filled(form: &HashMap<String, String>, name: &str) -> Option<String> {
    let value = member(form, name);
    (!value.trim().is_empty()).then(|| value.to_owned())
}

/// How a time is shown: to the minute, in UTC.
fn show_time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_text_refuses_nul_and_bytes_that_are_not_utf_8_however_encoded() {
        for ok in [
            "",
            "a=b&c=d",
            "q=caf%C3%A9",
            "q=%2500",
            "q=a+b",
            "q=%%41",
            "name=%E2%82%AC",
        ] {
            assert_eq!(readable_text(ok.as_bytes()), Ok(()), "{ok}");
        }
        for nul in ["q=%00", "%00=x", "q=a%00b", "q=%%00"] {
            assert_eq!(
                readable_text(nul.as_bytes()),
                Err("holds a NUL character"),
                "{nul}"
            );
        }
        assert!(readable_text(b"q=a\0b").is_err());
        for odd in [
            "q=%FF",
            "q=caf%C3",
            "q=%C3&r=%A9",
            "q=%ED%A0%80",
            "q=%C0%80",
        ] {
            assert_eq!(
                readable_text(odd.as_bytes()),
                Err("holds bytes that are not UTF-8 text"),
                "{odd}"
            );
        }
    }
}
