//! The dashboard in a real browser: headless Chromium, driven through chromedriver, against
//! the real `contactd` binary on its first run. Each step saves a screenshot under
//! `target/dashboard-screenshots/` for review.
//!
//! These run when `CONTACTD_TEST_CHROMEDRIVER` names a chromedriver at build time (CI
//! installs Debian's `chromium` and `chromium-driver` and sets it); otherwise they are
//! listed as ignored, with the reason. The webhook steps also run on PostgreSQL when
//! `CONTACTD_TEST_POSTGRES_URL` is set, as the contract tests do.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tempfile::TempDir;

use contactd_client::webhooks::verify;

use crate::helpers::{Answer, Backend, Receiver, ServerProcess, TestDatabase, admin, contactd};

/// The WebDriver key codes of Tab and Enter.
const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';

/// A chromedriver of this test's own, in its own process group so that the Chromium it
/// starts goes with it, even when the test fails half-way.
struct Driver {
    child: Child,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
    }
}

/// A headless Chromium session, and the driver that owns it.
struct Browser {
    client: Client,
    _driver: Driver,
    shots: PathBuf,
}

impl Browser {
    async fn start() -> Self {
        let chromedriver = option_env!("CONTACTD_TEST_CHROMEDRIVER").unwrap_or("chromedriver");
        let profile = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("could not start {chromedriver} (install chromium-driver): {error}")
            });
        let driver = Driver {
            child,
            _profile: profile,
        };
        // The machine has no internet: every background connection Chromium would try is
        // turned off, and it starts on about:blank rather than a new-tab page that waits
        // for the network.
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", driver._profile.path().display()),
                ],
                "prefs": {
                    "homepage": "about:blank",
                    "homepage_is_newtabpage": false,
                    "session": {"restore_on_startup": 4, "startup_urls": ["about:blank"]}
                }
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => {
                    panic!("chromedriver did not start a session: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("dashboard-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        Self {
            client,
            _driver: driver,
            shots,
        }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    /// Checks the page (see [`ACCESSIBILITY_CHECKS`]), then saves a screenshot of it as
    /// `NAME.png`.
    async fn shot(&self, name: &str) {
        let problems = self
            .client
            .execute(ACCESSIBILITY_CHECKS, vec![])
            .await
            .expect("run the checks");
        assert_eq!(problems, serde_json::json!([]), "{name}");
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save screenshot");
    }

    async fn fill(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.expect(css);
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    async fn choose(&self, css: &str, value: &str) {
        let select = self.client.find(Locator::Css(css)).await.expect(css);
        select.select_by_value(value).await.expect("choose");
    }

    /// Clicks a link or submit button and waits for the page it leads to to load.
    async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.expect(css);
        self.client
            .execute("window.leaving = true", vec![])
            .await
            .expect("mark the page");
        element.click().await.expect("click");
        self.wait_for_page().await;
    }

    /// Waits until the page marked `window.leaving` has given way to a loaded one.
    async fn wait_for_page(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self
                .client
                .execute(
                    "return window.leaving === undefined && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .ok()
                .and_then(|value| value.as_bool())
                .unwrap_or(false);
            if arrived {
                return;
            }
            assert!(Instant::now() < deadline, "no new page loaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Clicks something that stays on the page.
    async fn press(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.expect(css);
        element.click().await.expect("click");
    }

    async fn text(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.expect(css);
        element.text().await.expect("text")
    }

    async fn value(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.expect(css);
        element
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    async fn page_text(&self) -> String {
        self.text("body").await
    }

    async fn log_in(&self, base_url: &str, email: &str, password: &str) {
        self.goto(&format!("{base_url}/dashboard")).await;
        assert_eq!(self.path().await, "/dashboard/login");
        self.fill("#input-email", email).await;
        self.fill("#input-password", password).await;
        self.click("form button[type=submit]").await;
        assert_eq!(
            self.path().await,
            "/dashboard/contacts",
            "{email} logs in: {}",
            self.page_text().await
        );
    }

    async fn finish(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.close()).await;
    }
}

/// What every page must have for people on a keyboard or a screen reader, returned as a
/// list of problems: a language; one `h1`; a label for every control; a name for every
/// button and link; unique ids; and every id that `aria-describedby` or a label's `for`
/// names present on the page.
const ACCESSIBILITY_CHECKS: &str = r#"
const problems = [];
if (!document.documentElement.lang) problems.push("no lang on <html>");
const h1 = document.querySelectorAll("h1").length;
if (h1 !== 1) problems.push(`${h1} h1 elements`);
for (const control of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
  if (control.labels.length === 0) problems.push(`unlabelled control ${control.name}`);
}
for (const element of document.querySelectorAll("button, a[href]")) {
  const name = (element.getAttribute("aria-label") || element.textContent).trim();
  if (!name) problems.push(`nameless ${element.outerHTML.slice(0, 80)}`);
}
const ids = [...document.querySelectorAll("[id]")].map((element) => element.id);
for (const id of ids.filter((id, index) => ids.indexOf(id) !== index)) {
  problems.push(`duplicate id ${id}`);
}
for (const element of document.querySelectorAll("[aria-describedby]")) {
  for (const id of element.getAttribute("aria-describedby").split(" ")) {
    if (!document.getElementById(id)) problems.push(`aria-describedby names missing ${id}`);
  }
}
for (const label of document.querySelectorAll("label[for]")) {
  if (!document.getElementById(label.htmlFor)) problems.push(`label for missing ${label.htmlFor}`);
}
return problems;
"#;

/// The word after `label` in the first run's announcement.
fn announced(log: &str, label: &str) -> String {
    log.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| panic!("the first run prints {label}: {log}"))
}

/// Creates a dashboard user with `contactd user create`, the password on stdin.
fn create_user(database_url: &str, company: &str, email: &str, password: &str) {
    let mut child = contactd()
        .args(["user", "create", "--company", company, "--email", email])
        .env("CONTACTD_DATABASE_URL", database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run contactd user create");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write password");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(browser_tests),
    ignore = "CONTACTD_TEST_CHROMEDRIVER is not set: install chromium and chromium-driver and \
              set it to /usr/bin/chromedriver to run the browser tests"
)]
async fn a_new_user_manages_fields_keys_and_contacts_in_the_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("contactd.db").display());
    let server = ServerProcess::start(&database_url, &[]);
    let base = server.base_url.clone();
    let log = server.log();
    assert_eq!(announced(&log, "dashboard:"), format!("{base}/dashboard"));
    let email = announced(&log, "email:");
    let password = announced(&log, "password:");

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/dashboard")).await;
    browser.shot("01-login").await;
    browser.fill("#input-email", &email).await;
    browser.fill("#input-password", "not the password").await;
    browser.click("form button[type=submit]").await;
    assert!(
        browser
            .text("#problem")
            .await
            .contains("Wrong email or password")
    );
    browser.log_in(&base, &email, &password).await;
    browser.shot("02-contacts-empty").await;

    // A select field, defined on the custom fields page.
    browser.click("a[href='/dashboard/fields']").await;
    assert_eq!(
        browser.value("#input-type").await,
        "text",
        "a type is chosen from the start"
    );
    browser.fill("#input-key", "Plan").await;
    browser.fill("#input-display_name", "Plan").await;
    browser.choose("#input-type", "select").await;
    browser.fill("#input-options", "free\npro").await;
    browser
        .click("form[action='/dashboard/fields'] button")
        .await;
    assert!(browser.text("#error-key").await.contains("key"));
    browser.shot("03-field-refused").await;
    browser.fill("#input-key", "plan").await;
    browser
        .click("form[action='/dashboard/fields'] button")
        .await;
    assert_eq!(browser.path().await, "/dashboard/fields");
    assert!(browser.page_text().await.contains("free, pro"));
    browser.shot("04-fields").await;

    // A key, shown once, used against the API.
    browser.click("a[href='/dashboard/keys']").await;
    browser.fill("#input-name", "browser test").await;
    browser.click("form[action='/dashboard/keys'] button").await;
    let secret = browser.value("#new-key").await;
    assert!(secret.starts_with("cd_"), "{secret}");
    browser.press("[data-copy=new-key]").await;
    assert!(!browser.text("#new-key-status").await.is_empty());
    browser.shot("05-key-created").await;
    let fields = reqwest::Client::new()
        .get(format!("{base}/api/v1/custom-fields"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("call the API");
    assert_eq!(fields.status(), 200);
    assert!(fields.text().await.expect("body").contains("\"plan\""));

    // Another key, revoked after a confirmation that names it.
    browser.fill("#input-name", "to revoke").await;
    browser.click("form[action='/dashboard/keys'] button").await;
    browser.click("a[aria-label^='Revoke key']").await;
    assert!(browser.text("h1").await.contains("(to revoke)?"));
    browser.click("button.danger").await;
    assert_eq!(browser.path().await, "/dashboard/keys");
    assert!(browser.page_text().await.contains("revoked "));

    // A contact with a custom value; a bad phone number refused, then fixed.
    browser.click("a[href='/dashboard/contacts']").await;
    browser.click("a[href='/dashboard/contacts/new']").await;
    browser.fill("#input-email", "ada@example.com").await;
    browser.fill("#input-phone_number", "(415) 555-2671").await;
    browser.fill("#input-first_name", "Ada").await;
    browser.fill("#input-last_name", "Lovelace").await;
    browser.choose("[name='field.plan']", "pro").await;
    browser.shot("06-contact-new").await;
    browser.click("main form button[type=submit]").await;
    let contact_path = browser.path().await;
    assert!(contact_path.starts_with("/dashboard/contacts/"));
    assert_eq!(browser.text("#notice").await, "Contact created.");
    let page = browser.page_text().await;
    assert!(
        page.contains("+14155552671") && page.contains("pro"),
        "{page}"
    );
    browser.shot("07-contact").await;

    browser.click("a[href$='/edit']").await;
    browser.fill("#input-phone_number", "12").await;
    browser.click("main form button[type=submit]").await;
    let error = browser.text("#error-phone_number").await;
    assert!(error.contains("phone"), "{error}");
    browser.shot("08-contact-bad-phone").await;
    browser
        .fill("#input-phone_number", "+44 20 7946 0958")
        .await;
    browser.click("main form button[type=submit]").await;
    assert_eq!(browser.path().await, contact_path);
    assert!(browser.page_text().await.contains("+442079460958"));
    // Its history says who did what, newest first.
    let history = browser.text("main table").await;
    let change = history.find("phone_number: +14155552671 → +442079460958");
    let created = history.find("Created");
    assert!(change.is_some() && change < created, "{history}");
    assert!(history.contains(&email), "{history}");
    browser.shot("08b-contact-history").await;

    // Found by its phone number written another way, and by part of its name.
    for query in ["+44 (20) 7946-0958", "lovelace"] {
        browser.click("a[href='/dashboard/contacts']").await;
        browser.fill("#input-q", query).await;
        browser.click("form[role=search] button").await;
        assert!(
            browser
                .text("#result-count")
                .await
                .starts_with("1 contact found")
        );
        assert!(browser.page_text().await.contains("Ada Lovelace"));
    }
    browser.shot("09-search").await;
    // Filtered by a custom field, with that field as a column, most recently updated first.
    browser.click("a[href='/dashboard/contacts']").await;
    browser.choose("#input-field", "plan").await;
    browser.choose("#input-test", "is").await;
    browser.fill("#input-value", "pro").await;
    browser.choose("#input-sort", "-updated_at").await;
    browser.press("[name='column.plan']").await;
    browser.click("form[role=search] button").await;
    assert_eq!(browser.text("#result-count").await, "1 contact found");
    let table = browser.text("main table").await;
    assert!(table.contains("Plan") && table.contains("pro"), "{table}");
    browser.shot("09b-filter").await;
    // The same list on a phone.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    browser.shot("10-search-phone").await;
    browser
        .client
        .set_window_size(1280, 900)
        .await
        .expect("resize");

    // A form whose CSRF token was taken out is refused.
    browser.goto(&format!("{base}{contact_path}/edit")).await;
    browser
        .client
        .execute(
            "document.querySelector('main form input[name=csrf_token]').remove()",
            vec![],
        )
        .await
        .expect("remove the token");
    browser.click("main form button[type=submit]").await;
    assert!(browser.page_text().await.contains("This form has expired"));
    browser.shot("11-csrf-refused").await;

    // Another company's user cannot open this contact.
    admin(&database_url, &["company", "create", "globex"]);
    create_user(
        &database_url,
        "globex",
        "bob@globex.example",
        "bob's long password",
    );
    browser.goto(&format!("{base}/dashboard/contacts")).await;
    browser.click("header form.logout button").await;
    assert_eq!(browser.path().await, "/dashboard/login");
    browser
        .log_in(&base, "bob@globex.example", "bob's long password")
        .await;
    browser.goto(&format!("{base}{contact_path}")).await;
    let page = browser.page_text().await;
    assert!(
        page.contains("Not found") && !page.contains("ada@example.com"),
        "{page}"
    );
    browser.shot("12-other-company").await;
    browser.click("header form.logout button").await;

    // Back as the first user, by keyboard alone: type, Tab to the password, Enter.
    browser.goto(&format!("{base}/dashboard/login")).await;
    let email_input = browser
        .client
        .find(Locator::Css("#input-email"))
        .await
        .expect("the email input");
    email_input
        .send_keys(&format!("{email}{TAB}"))
        .await
        .expect("type");
    browser
        .client
        .execute("window.leaving = true", vec![])
        .await
        .expect("mark the page");
    let focused = browser.client.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("id").await.expect("id").as_deref(),
        Some("input-password")
    );
    focused
        .send_keys(&format!("{password}{ENTER}"))
        .await
        .expect("type");
    browser.wait_for_page().await;
    assert_eq!(browser.path().await, "/dashboard/contacts");
    // Then delete the contact, after confirming.
    browser.goto(&format!("{base}{contact_path}")).await;
    browser.click("a[href$='/delete']").await;
    browser.shot("13-contact-delete").await;
    browser.click("button.danger").await;
    assert_eq!(browser.path().await, "/dashboard/contacts");
    assert!(browser.page_text().await.contains("No contacts yet."));
    browser.click("header form.logout button").await;
    assert_eq!(browser.path().await, "/dashboard/login");
    browser.shot("14-logged-out").await;
    browser.goto(&format!("{base}/dashboard/contacts")).await;
    assert_eq!(browser.path().await, "/dashboard/login");
    browser.finish().await;
}

/// An admin adds a webhook endpoint, copies its secret and checks it signs a real delivery,
/// then disables it, rotates its secret and deletes it, each after the page asks; on a
/// server allowed to deliver to this machine (`--webhook-allow-private`).
async fn an_admin_manages_a_webhook_endpoint_in_the_browser(backend: Backend) {
    let shot = |step: &str| {
        let backend = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        format!("webhooks-{backend}-{step}")
    };
    let database = TestDatabase::create(backend).await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let server = ServerProcess::start(&database.url, &[("CONTACTD_WEBHOOK_ALLOW_PRIVATE", "true")]);
    let base = server.base_url.clone();
    let log = server.log();
    let key = announced(&log, "API key:");
    let email = announced(&log, "email:");
    let password = announced(&log, "password:");

    let browser = Browser::start().await;
    browser.log_in(&base, &email, &password).await;
    browser.click("a[href='/dashboard/webhooks']").await;
    assert!(
        browser
            .page_text()
            .await
            .contains("No webhook endpoints yet.")
    );
    browser.shot(&shot("01-empty")).await;

    // A URL that is not http is refused next to its input, and creates nothing.
    browser.fill("#input-url", "ftp://x").await;
    browser.fill("#input-description", "CRM sync").await;
    browser
        .click("form[action='/dashboard/webhooks'] button[type=submit]")
        .await;
    assert!(browser.text("#error-url").await.contains("http"));
    assert!(
        browser
            .page_text()
            .await
            .contains("No webhook endpoints yet.")
    );
    browser.shot(&shot("02-refused")).await;

    browser.fill("#input-url", &receiver.url()).await;
    browser
        .press("input[name='event_type.contact.created']")
        .await;
    browser
        .click("form[action='/dashboard/webhooks'] button[type=submit]")
        .await;
    let secret = browser.value("#new-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(
        browser
            .page_text()
            .await
            .contains("It will not be shown again")
    );
    browser.press("[data-copy=new-secret]").await;
    assert!(!browser.text("#new-secret-status").await.is_empty());
    let list = browser.text("main table").await;
    assert!(
        list.contains(&receiver.url()) && list.contains("CRM sync"),
        "{list}"
    );
    assert!(
        list.contains("contact.created") && list.contains("enabled"),
        "{list}"
    );
    browser.shot(&shot("03-created")).await;

    // The copied secret is the one deliveries are signed with.
    let created = reqwest::Client::new()
        .post(format!("{base}/api/v1/contacts"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"email": "ada@example.com"}))
        .send()
        .await
        .expect("call the API");
    assert_eq!(created.status(), 200);
    let delivery = receiver.wait_for(1, Duration::from_secs(15)).await[0].clone();
    assert_eq!(
        verify(
            &secret,
            delivery.id(),
            delivery.header("webhook-timestamp"),
            delivery.header("webhook-signature"),
            &delivery.body,
        ),
        Ok(())
    );

    // Shown once: the list again has the endpoint and not its secret.
    browser.goto(&format!("{base}/dashboard/webhooks")).await;
    let source = browser.client.source().await.expect("page source");
    assert!(!source.contains(&secret), "the secret is shown once");
    browser
        .click("main table a[href^='/dashboard/webhooks/']")
        .await;
    let endpoint_path = browser.path().await;
    assert!(browser.text("#webhook-state").await.contains("enabled"));
    let attempts = browser.text("#attempts").await;
    assert!(
        attempts.contains("contact.created") && attempts.contains("delivered"),
        "{attempts}"
    );
    assert!(attempts.contains(delivery.id()), "{attempts}");
    browser.shot(&shot("04-endpoint")).await;

    browser.click("form[action$='/disable'] button").await;
    assert_eq!(browser.path().await, endpoint_path);
    assert!(
        browser
            .text("#notice")
            .await
            .starts_with("Endpoint disabled")
    );
    assert!(
        browser
            .text("#webhook-state")
            .await
            .starts_with("disabled since")
    );
    browser.shot(&shot("05-disabled")).await;

    browser.click("a[href$='/rotate-secret']").await;
    assert!(browser.text("h1").await.starts_with("Rotate the secret of"));
    browser.shot(&shot("06-rotate-confirm")).await;
    browser.click("button.danger").await;
    let rotated = browser.value("#new-secret").await;
    assert!(
        rotated.starts_with("whsec_") && rotated != secret,
        "{rotated}"
    );
    browser.shot(&shot("07-rotated")).await;

    browser.click("a[href$='/delete']").await;
    assert!(browser.text("h1").await.starts_with("Delete the endpoint"));
    browser.shot(&shot("08-delete-confirm")).await;
    browser.click("button.danger").await;
    assert_eq!(browser.path().await, "/dashboard/webhooks");
    assert!(
        browser
            .text("#notice")
            .await
            .starts_with("Webhook endpoint deleted")
    );
    assert!(
        browser
            .page_text()
            .await
            .contains("No webhook endpoints yet.")
    );
    browser.shot(&shot("09-deleted")).await;
    browser.finish().await;
}

mod an_admin_manages_a_webhook_endpoint_in_the_browser {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(browser_tests),
        ignore = "CONTACTD_TEST_CHROMEDRIVER is not set: install chromium and chromium-driver \
                  and set it to /usr/bin/chromedriver to run the browser tests"
    )]
    async fn sqlite() {
        super::an_admin_manages_a_webhook_endpoint_in_the_browser(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(browser_tests, postgres_tests)),
        ignore = "CONTACTD_TEST_CHROMEDRIVER or CONTACTD_TEST_POSTGRES_URL is not set: the \
                  browser tests on PostgreSQL need both"
    )]
    async fn postgres() {
        super::an_admin_manages_a_webhook_endpoint_in_the_browser(Backend::Postgres).await;
    }
}
