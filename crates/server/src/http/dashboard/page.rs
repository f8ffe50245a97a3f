//! Rendering pages, and the error page every failure of a page becomes; the confirmation
//! page before a change that cannot be undone, and how times are shown.

use askama::Template;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::nav::Nav;
use crate::failure::Failure;
use crate::store::{SessionUser, StoreError};

/// Why a page could not be shown: answered with an error page of the matching status.
#[derive(Debug)]
pub enum PageError {
    /// A use case failed; its sentence is shown, with the status the API would answer.
    Failed(Failure),
    /// 403: a form came without the session's CSRF token, or with another one.
    Csrf,
    /// 404: no such page.
    NotFound,
    /// 400: the form, or the page's address, could not be read.
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
                    // Only the API's If-Match names a version; the dashboard's writes keep
                    // concurrent changes by writing only the inputs a user changed.
                    Failure::VersionChanged { .. } => (
                        409,
                        "the contact was changed since this page was loaded: open it again"
                            .to_owned(),
                    ),
                    Failure::NotFound { message, .. } => (404, message),
                    Failure::Gone { message, .. } => (410, message),
                    Failure::Several(failures) => {
                        let messages: Vec<String> =
                            failures.iter().map(ToString::to_string).collect();
                        (400, messages.join(" "))
                    }
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
pub(super) fn with_navigation(response: Response, user: &SessionUser) -> Response {
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
pub(super) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not render a dashboard page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A page rendered with a status other than 200: a form shown again with its errors.
pub(super) fn render_with(status: StatusCode, page: &impl Template) -> Response {
    (status, render(page)).into_response()
}

/// The page that asks before a change that cannot be undone (a delete, a new secret): what
/// will be lost, and the button.
#[derive(Template)]
#[template(path = "dashboard/confirm.html")]
pub(super) struct Confirm {
    pub(super) nav: Option<Nav>,
    pub(super) title: String,
    /// What the change does, a paragraph each.
    pub(super) paragraphs: Vec<String>,
    /// The page of the thing, where "Keep it" leads.
    pub(super) url: String,
    /// Where the form posts to make the change.
    pub(super) action: String,
    pub(super) button: &'static str,
}

/// How a time is shown: to the minute, in UTC.
pub(super) fn show_time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
