//! One mailbox, one contact: every spelling of an address is one email on write, on
//! lookup and in what is stored, and the start-up check brings emails stored before the
//! normal form existed to it (docs/robustness.md#email-normalisation).

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, TestDatabase, contract_test, test_postgres_settings};
use contactd::domain::{ContactIdentifier, DefaultRegion};
use contactd::store::{Actor, Contact, EventData};
use contactd_api::EventType;

/// Each group: spellings of one mailbox, the stored form first.
const SPELLINGS: [&[&str]; 4] = [
    &[
        "jos\u{e9}@example.com",
        "jose\u{301}@example.com",
        "JOS\u{c9}@Example.com",
    ],
    &[
        "fw@example.com",
        "\u{ff46}\u{ff57}@example.com",
        "\u{ff26}\u{ff37}@\u{ff45}xample.com",
    ],
    &[
        "idn@xn--bcher-kva.de",
        "idn@b\u{fc}cher.de",
        "idn@BU\u{308}CHER.DE",
    ],
    &[
        "john@example.com",
        "\"john\"@example.com",
        "\"jo\\hn\"@Example.COM",
    ],
];

async fn every_spelling_of_a_mailbox_is_one_contact() {
    let app = TestApp::spawn().await;
    for spellings in SPELLINGS {
        let first = app.given_contact(json!({"email": spellings[1]})).await;
        assert_eq!(
            first["email"], spellings[0],
            "stored and returned normalised"
        );
        for spelling in spellings {
            let again = app.create_contact(json!({"email": spelling})).await;
            again.assert_error(409, "duplicate_email");
            assert_eq!(again.body["conflicting_contact_id"], first["id"]);
            let found = app.get_contact(&format!("alt:email:{spelling}")).await;
            found.assert_status(200);
            assert_eq!(found.body["id"], first["id"], "alt:email:{spelling}");
        }
    }
    for invisible in [
        "jane\u{200b}@example.com",
        "\u{feff}jane@example.com",
        "ja\u{00ad}ne@example.com",
    ] {
        app.create_contact(json!({"email": invisible}))
            .await
            .assert_error(400, "invalid_email");
    }
}
contract_test!(every_spelling_of_a_mailbox_is_one_contact);

/// A UUID as an SQL literal of the backend.
fn uuid_sql(backend: Backend, id: Uuid) -> String {
    match backend {
        Backend::Sqlite => format!("X'{}'", id.simple()),
        Backend::Postgres => format!("'{id}'"),
    }
}

/// Emails stored in an older form are rewritten to the normal form at the next start when
/// nothing else holds it, and left alone (never merged, never deleted) when something does
/// or when they are no longer valid; a later start does not read them again.
async fn the_start_up_check_rewrites_old_forms_and_leaves_collisions_alone() {
    let backend = Backend::current();
    let database = TestDatabase::create(backend).await;
    let opened = contactd::cli::open_store(&database.url, &test_postgres_settings())
        .await
        .expect("open");
    let company = opened.create_company("acme").await.expect("company");
    drop(opened);
    // What a database from before the normal form could hold: the check never ran on it.
    database.execute("DELETE FROM data_checks").await;
    let ids: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let stored = [
        "idn@b\u{fc}cher.de",       // rewritten: its normal form is free
        "\"john\"@example.com",     // rewritten
        "jos\u{e9}@example.com",    // already normal
        "jose\u{301}@example.com",  // collides with the one above: left alone
        "ja\u{200b}ne@example.com", // no longer valid: left alone
        "fw@example.com",           // already normal
    ];
    let company_sql = uuid_sql(backend, company.id);
    for (id, email) in ids.iter().zip(stored) {
        database
            .execute(&format!(
                "INSERT INTO contacts (id, company_id, email, created_at, updated_at) \
                 VALUES ({}, {company_sql}, '{}', 1, 1)",
                uuid_sql(backend, *id),
                email.replace('\'', "''")
            ))
            .await;
    }
    database
        .execute(&format!(
            "INSERT INTO users (id, company_id, email, password_hash, created_at) \
             VALUES ({}, {company_sql}, 'admin@b\u{fc}cher.de', 'x', 1)",
            uuid_sql(backend, Uuid::now_v7())
        ))
        .await;

    let store = contactd::cli::open_store(&database.url, &test_postgres_settings())
        .await
        .expect("the check never fails a start for what it finds");
    let email_of = async |id: Uuid| {
        store
            .get_contact(company.id, &ContactIdentifier::Id(id))
            .await
            .expect("read")
            .expect("never deleted")
            .members
            .email
    };
    let expected = [
        "idn@xn--bcher-kva.de",
        "john@example.com",
        "jos\u{e9}@example.com",
        "jose\u{301}@example.com",
        "ja\u{200b}ne@example.com",
        "fw@example.com",
    ];
    for (id, email) in ids.iter().zip(expected) {
        assert_eq!(email_of(*id).await.as_deref(), Some(email));
    }
    // Each rewrite is an update of its contact, told to the feed by its event; the contacts
    // left alone have none.
    for (index, id) in ids.iter().enumerate() {
        let history = store
            .contact_history(company.id, *id, None, 10)
            .await
            .expect("read");
        if index >= 2 {
            assert!(history.is_empty(), "{} changed", expected[index]);
            continue;
        }
        let [event] = &history[..] else {
            panic!("one event, not {history:?}");
        };
        assert_eq!(event.event_type, EventType::ContactUpdated);
        assert_eq!(event.actor, Actor::Cli("email normalisation".to_owned()));
        let EventData::Contact { before, after } = &event.data else {
            panic!("a contact event: {event:?}");
        };
        let email = |contact: &Option<Box<Contact>>| {
            contact
                .as_ref()
                .and_then(|contact| contact.members.email.clone())
        };
        assert_eq!(email(before).as_deref(), Some(stored[index]));
        assert_eq!(email(after).as_deref(), Some(expected[index]));
    }
    let found = store
        .get_contact(
            company.id,
            &ContactIdentifier::parse("alt:email:idn@b\u{fc}cher.de", DefaultRegion::default())
                .expect("an identifier"),
        )
        .await
        .expect("read")
        .expect("the old spelling finds the rewritten contact");
    assert_eq!(found.id, ids[0]);
    let admin = contactd::domain::Email::parse("admin@b\u{fc}cher.de").expect("valid");
    assert!(
        store
            .user_credentials(&admin)
            .await
            .expect("read")
            .is_some(),
        "the user logs in with either spelling again"
    );
    drop(store);

    // Recorded: the next start reads nothing more, even an old form written since.
    let late = Uuid::now_v7();
    database
        .execute(&format!(
            "INSERT INTO contacts (id, company_id, email, created_at, updated_at) \
             VALUES ({}, {company_sql}, '\"late\"@example.com', 1, 1)",
            uuid_sql(backend, late)
        ))
        .await;
    let store = contactd::cli::open_store(&database.url, &test_postgres_settings())
        .await
        .expect("open");
    let late_email = store
        .get_contact(company.id, &ContactIdentifier::Id(late))
        .await
        .expect("read")
        .expect("there")
        .members
        .email;
    assert_eq!(late_email.as_deref(), Some("\"late\"@example.com"));
}
contract_test!(the_start_up_check_rewrites_old_forms_and_leaves_collisions_alone);
