//! The dashboard as a browser sees it: a `DashboardUser` signed in through the router, the
//! `LoginForm` of a real server, and readers of the pages' cookies and forms.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use uuid::Uuid;

use super::{ServerProcess, TestApp, TestResponse};

/// The login form of a running server, as a browser holds it after opening the page: the
/// login cookie and the token the form sends back. One form may be sent many times.
pub struct LoginForm {
    base_url: String,
    /// `contactd_login=…`, as the browser sends it back.
    cookie: String,
    csrf: String,
}

impl ServerProcess {
    /// Opens the dashboard's login page, as a browser would.
    pub async fn login_form(&self, client: &reqwest::Client) -> LoginForm {
        let page = client
            .get(format!("{}/dashboard/login", self.base_url))
            .send()
            .await
            .expect("the login page answers");
        assert_eq!(page.status(), 200);
        let cookie = page
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("contactd_login="))
            .and_then(|value| value.split(';').next())
            .expect("the login page sets its cookie")
            .to_owned();
        let html = page.text().await.expect("the login page");
        LoginForm {
            base_url: self.base_url.clone(),
            cookie,
            csrf: csrf_token_in(&html).expect("the login form has a token"),
        }
    }
}

impl LoginForm {
    /// Sends the form with this email and password; redirects are not followed.
    pub async fn submit(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("email", email),
                ("password", password),
                ("csrf_token", &self.csrf),
            ])
            .finish();
        client
            .post(format!("{}/dashboard/login", self.base_url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, &self.cookie)
            .body(body)
            .send()
            .await
    }
}

/// A client for [`LoginForm::submit`]: it does not follow the redirect a login answers with.
pub fn login_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A person signed in to the dashboard through the router, with their session cookie and
/// the CSRF token the pages give them.
pub struct DashboardUser<'a> {
    app: &'a TestApp,
    /// `contactd_session=…`, as the browser sends it back.
    pub cookie: String,
    pub csrf: String,
}

/// The value a response's `Set-Cookie` gives the cookie `name`, and its attributes.
pub fn set_cookie(response: &TestResponse, name: &str) -> Option<String> {
    response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the first hidden `csrf_token` input of a page.
pub fn csrf_token_in(html: &str) -> Option<String> {
    let (_, rest) = html.split_once(r#"name="csrf_token" value=""#)?;
    rest.split('"').next().map(str::to_owned)
}

/// Undoes the HTML escaping of text in a page.
pub fn unescape_html(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The sentence a form page shows next to the input `name`, if any.
pub fn input_error(html: &str, name: &str) -> Option<String> {
    let (_, rest) = html.split_once(&format!(r#"id="error-{name}">"#))?;
    rest.split("</span>").next().map(unescape_html)
}

impl TestApp {
    /// Creates a dashboard user of a company with this email and password.
    pub async fn given_user(&self, company_id: Uuid, email: &str, password: &str) {
        let email = contactd::domain::Email::parse(email).expect("a valid email");
        let hash = contactd::password::Password::parse(password)
            .expect("a valid password")
            .hash();
        self.store
            .create_user(company_id, &email, &hash)
            .await
            .expect("create user");
    }

    /// The login page, and the login cookie it sets (`contactd_login=…`).
    pub async fn login_page(&self) -> (TestResponse, String) {
        let page = self
            .send(
                Request::get("/dashboard/login")
                    .body(Body::empty())
                    .expect("valid request"),
            )
            .await;
        page.assert_status(200);
        let cookie = set_cookie(&page, "contactd_login").expect("the login page sets a cookie");
        let cookie = cookie.split(';').next().expect("name=value").to_owned();
        (page, cookie)
    }

    /// Sends the login form as a browser that opened the login page would.
    pub async fn submit_login(&self, email: &str, password: &str) -> TestResponse {
        let (page, cookie) = self.login_page().await;
        let csrf = csrf_token_in(&page.text).expect("the login form has a token");
        self.post_form(
            "/dashboard/login",
            Some(&cookie),
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
    }

    /// Logs in through the login form, which must succeed.
    pub async fn log_in(&self, email: &str, password: &str) -> DashboardUser<'_> {
        let response = self.submit_login(email, password).await;
        response.assert_status(303);
        let cookie = set_cookie(&response, "contactd_session").expect("a session cookie");
        let cookie = cookie.split(';').next().expect("name=value").to_owned();
        let mut user = DashboardUser {
            app: self,
            cookie,
            csrf: String::new(),
        };
        let page = user.get("/dashboard/contacts").await;
        page.assert_status(200);
        user.csrf = csrf_token_in(&page.text).expect("pages carry the CSRF token");
        user
    }

    /// Posts a URL-encoded form with an optional `Cookie` header.
    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> TestResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(body)).expect("valid request"))
            .await
    }
}

impl DashboardUser<'_> {
    /// `GET path` with the session cookie.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.app
            .send(
                Request::get(path)
                    .header(header::COOKIE, &self.cookie)
                    .body(Body::empty())
                    .expect("valid request"),
            )
            .await
    }

    /// Posts a form with the session cookie and its CSRF token, as the page's form would.
    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
        let mut pairs = pairs.to_vec();
        pairs.push(("csrf_token", &self.csrf));
        self.app.post_form(path, Some(&self.cookie), &pairs).await
    }

    /// Posts a form with the session cookie but no CSRF token.
    pub async fn post_without_csrf(&self, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
        self.app.post_form(path, Some(&self.cookie), pairs).await
    }
}
