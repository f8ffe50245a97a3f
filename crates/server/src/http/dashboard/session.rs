//! Signing in and out: the login page, its bounded password checks and throttle, the
//! session cookie, and the CSRF check every form passes.
//!
//! A session is a random 256-bit token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//! when the request came over HTTPS, as a TLS-terminating proxy says with
//! `X-Forwarded-Proto` or `Forwarded`); the database keeps only its SHA-256, so a copy of the
//! database opens no session. Each session has its own CSRF token, which every form sends
//! back. The login form, which has no session yet, gets a token of its own in a short-lived
//! cookie instead (a double-submit check), so no other site can sign a browser in either.

use std::time::Duration;

use askama::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::Utc;
use serde::Deserialize;

use super::extract::FormBody;
use super::nav::Nav;
use super::page::{PageError, render, render_with, with_navigation};
use crate::domain::Email;
use crate::http::AppState;
use crate::store::{LoginAttempt, NewSession, SessionUser};
use crate::{password, secret};

/// The login page's path; where every page sends a visitor without a session.
pub const LOGIN: &str = "/dashboard/login";
/// The cookie holding the session token.
const SESSION_COOKIE: &str = "contactd_session";
/// The cookie holding the login form's CSRF token.
const LOGIN_COOKIE: &str = "contactd_login";
/// The form member every form sends its CSRF token in.
const CSRF_INPUT: &str = "csrf_token";

/// How long a session lasts after login: a working day, then the password again.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// How long a login page's token stays valid.
const LOGIN_FORM_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Password checks an email gets per [`LOGIN_WINDOW`], whether or not a user has it
/// (docs/robustness.md#dashboard-logins).
const MAX_LOGIN_ATTEMPTS: u32 = 5;
/// How long the window an email's first check opens lasts.
const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Whether the browser reached us over HTTPS, directly or through a proxy that says so.
/// Trusting the headers is safe here: a client that lies gets a `Secure` cookie its own
/// browser will not send back over plain HTTP, which hurts no one else.
fn over_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim()
                    .to_ascii_lowercase()
                    .strip_prefix("proto=")
                    .is_some_and(|proto| proto.trim_matches('"') == "https")
            })
        });
    forwarded_proto || forwarded
}

/// A cookie of ours: `HttpOnly`, `SameSite=Strict`, `Secure` over HTTPS.
fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    lifetime: Duration,
    headers: &HeaderMap,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(over_https(headers))
        .max_age(lifetime.try_into().unwrap_or(cookie::time::Duration::HOUR))
        .build()
}

/// The session cookie's user, put in the request's extensions; a request without a live
/// session is sent to the login page.
pub async fn require_session(
    State(state): State<AppState>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Result<Response, PageError> {
    let user = match jar.get(SESSION_COOKIE) {
        Some(cookie) => {
            state
                .store()
                .find_session(&secret::hash(cookie.value()))
                .await?
        }
        None => None,
    };
    let Some(user) = user else {
        return Ok(Redirect::to(LOGIN).into_response());
    };
    request.extensions_mut().insert(user.clone());
    Ok(with_navigation(next.run(request).await, &user))
}

/// Refuses (403) a form, on any method but GET and HEAD, whose `csrf_token` is missing or
/// is not the session's (or, on the login page, the login cookie's).
pub async fn verify_csrf(
    State(state): State<AppState>,
    jar: CookieJar,
    request: Request,
    next: Next,
) -> Result<Response, PageError> {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(next.run(request).await);
    }
    let expected = match request.extensions().get::<SessionUser>() {
        Some(user) => Some(user.csrf_token.clone()),
        None => jar
            .get(LOGIN_COOKIE)
            .map(|cookie| cookie.value().to_owned()),
    };
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, state.body_limit)
        .await
        .map_err(|_| PageError::BadForm("the form is larger than this server accepts".into()))?;
    let sent = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_INPUT)
        .map(|(_, value)| value.into_owned());
    match (expected, sent) {
        // Compared as hashes, so the time taken says nothing about the expected token.
        (Some(expected), Some(sent)) if secret::hash(&expected) == secret::hash(&sent) => Ok(next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await),
        _ => Err(PageError::Csrf),
    }
}

/// The login page.
#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf_token: String,
    email: String,
    error: Option<String>,
}

/// `GET /dashboard/login`: the form, with a fresh login token unless the browser has one;
/// a browser that is signed in already goes on to the dashboard.
pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(cookie) = jar.get(SESSION_COOKIE)
        && state
            .store()
            .find_session(&secret::hash(cookie.value()))
            .await?
            .is_some()
    {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    let token = jar
        .get(LOGIN_COOKIE)
        .map_or_else(secret::random_hex, |cookie| cookie.value().to_owned());
    let jar = jar.add(cookie(
        LOGIN_COOKIE,
        token.clone(),
        LOGIN,
        LOGIN_FORM_LIFETIME,
        &headers,
    ));
    let page = LoginPage {
        nav: None,
        csrf_token: token,
        email: String::new(),
        error: None,
    };
    Ok((jar, render(&page)).into_response())
}

/// The login form as sent.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf_token: String,
}

/// `POST /dashboard/login`: checks the password and starts a session. A login first waits
/// (a few seconds at most, else 503) for a turn at argon2, then counts its check against
/// the email's [`MAX_LOGIN_ATTEMPTS`] per [`LOGIN_WINDOW`] (429 beyond them), and only
/// then hashes; a known and an unknown email take the same steps and get the same answers.
pub async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    FormBody(form): FormBody<LoginForm>,
) -> Result<Response, PageError> {
    let refuse = |status: StatusCode, message: &str| {
        let page = LoginPage {
            nav: None,
            csrf_token: form.csrf_token.clone(),
            email: form.email.clone(),
            error: Some(message.to_owned()),
        };
        render_with(status, &page)
    };
    const WRONG: &str = "Wrong email or password.";
    // An address no account can have is refused unchecked: answering it at once tells
    // nothing an attacker could not work out alone, and it costs no argon2 run.
    let Ok(email) = Email::parse(&form.email) else {
        return Ok(refuse(StatusCode::UNAUTHORIZED, WRONG));
    };
    // The turn comes before the count, so a login turned away busy has used none of its
    // email's checks, and the table of counts grows no faster than argon2 can check.
    let Ok(turn) = state.password_checker.turn().await else {
        let page = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is checking many logins right now. Try again in a few seconds.",
        );
        return Ok(with_retry_after(page, password::QUEUE_WAIT));
    };
    let attempt = state
        .store()
        .reserve_login_attempt(&email, MAX_LOGIN_ATTEMPTS, LOGIN_WINDOW)
        .await?;
    if let LoginAttempt::Refused { until } = attempt {
        let wait = (until - Utc::now()).to_std().unwrap_or_default();
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let page = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed logins with this email address. Try again in {minutes} \
                 minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        );
        return Ok(with_retry_after(page, wait));
    }
    let credentials = state.store().user_credentials(&email).await?;
    let hash = credentials
        .as_ref()
        .map(|credentials| credentials.password_hash.clone());
    let matches = turn
        .verify(form.password.clone(), hash)
        .await
        .map_err(|_| PageError::Internal("the password check stopped unexpectedly"))?;
    let Some(credentials) = credentials.filter(|_| matches) else {
        return Ok(refuse(StatusCode::UNAUTHORIZED, WRONG));
    };
    let token = secret::random_hex();
    state
        .store()
        .create_session(&NewSession {
            token_hash: secret::hash(&token),
            user_id: credentials.id,
            csrf_token: secret::random_hex(),
            expires_at: Utc::now() + SESSION_LIFETIME,
        })
        .await?;
    let jar = jar
        .remove(Cookie::build(LOGIN_COOKIE).path(LOGIN))
        .add(cookie(
            SESSION_COOKIE,
            token,
            "/",
            SESSION_LIFETIME,
            &headers,
        ));
    Ok((jar, Redirect::to("/dashboard")).into_response())
}

/// A refusal saying, in `Retry-After`, how many seconds (rounded up) to wait.
fn with_retry_after(response: Response, wait: Duration) -> Response {
    let seconds = wait.as_millis().div_ceil(1000).max(1).to_string();
    ([(header::RETRY_AFTER, seconds)], response).into_response()
}

/// `POST /dashboard/logout`: ends the session in the database, so its cookie opens nothing
/// even if it was copied, and clears the cookie.
pub async fn logout(State(state): State<AppState>, jar: CookieJar) -> Result<Response, PageError> {
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        state
            .store()
            .delete_session(&secret::hash(cookie.value()))
            .await?;
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to(LOGIN)).into_response())
}
