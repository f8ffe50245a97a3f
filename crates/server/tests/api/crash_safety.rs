//! Crash safety on SQLite: a server killed with SIGKILL in the middle of a burst of writes
//! loses no write it answered 200, leaves a database that passes `PRAGMA integrity_check`
//! and whose change feed holds an event for exactly the changes that survived, and,
//! restarted on the same file, recovers it and serves new writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use contactd_api::{
    Contact, CreateContact, CreateCustomField, CustomFieldChanges, CustomFieldInput, EventType,
    FieldType, UpdateContact,
};
use contactd_client::{Client, Error};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{ServerProcess, admin};

/// Concurrent writers: more than the server's one SQLite writer connection, so that
/// requests queue for it and some are mid-transaction when the kill lands.
const WRITERS: usize = 16;

/// Kill/restart cycles; each restart recovers a WAL the previous crash left behind.
const CYCLES: usize = 3;

/// Writes each burst must have had acknowledged before the kill, so the check means something.
const MIN_ACKNOWLEDGED: usize = 100;

/// The number field every write sets, together with `first_name`.
const FIELD: &str = "score";

/// What a contact may hold after a crash, from the writes sent to it.
///
/// Each contact is written by one writer only, one request at a time, each request with a
/// larger value than the one before. So after a kill the contact holds either the value of
/// the last write answered 200, or that of the one request in flight at the kill, which
/// may or may not have been committed; anything else is a lost or a torn write.
#[derive(Debug, Default, Clone, Copy)]
struct Expected {
    /// The value of the last write answered 200; `None` while the create was not answered.
    acknowledged: Option<u64>,
    /// The value of the request in flight when the server died.
    in_flight: Option<u64>,
}

/// What one writer sent before the server died.
#[derive(Debug)]
struct WriterReport {
    /// Every contact it created or tried to create, by ext_id.
    contacts: Vec<(String, Expected)>,
    /// The error that stopped it: a transport error, the server being gone.
    stopped_by: Error,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_in_a_burst_of_writes_loses_no_acknowledged_write() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("contactd.db");
    let database_url = format!("sqlite://{}", database.display());
    admin(&database_url, &["company", "create", "acme"]);
    let key = admin(&database_url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    // The burst, and the reads after each restart, are as fast as one key can send: no
    // rate limit.
    let unlimited = [("CONTACTD_RATE_LIMIT", "0")];
    let mut server = ServerProcess::start(&database_url, &unlimited);
    Client::new(&server.base_url, &key)
        .create_custom_field(&CreateCustomField {
            key: FIELD.to_owned(),
            display_name: "Score".to_owned(),
            field_type: FieldType::Number,
            options: None,
        })
        .await
        .expect("field created");

    // Accumulates over the cycles: each restart checks the writes of every earlier burst.
    let mut expected = BTreeMap::new();
    for cycle in 0..CYCLES {
        let client = Client::new(&server.base_url, &key);
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                tokio::spawn(write_until_the_server_dies(
                    client.clone(),
                    format!("c{cycle}-w{writer}"),
                    acknowledged.clone(),
                ))
            })
            .collect();
        kill_mid_burst(server, &acknowledged).await;
        for writer in writers {
            let report = tokio::time::timeout(Duration::from_secs(10), writer)
                .await
                .expect("a writer stops once the server is gone")
                .expect("the writer ran");
            assert!(
                matches!(report.stopped_by, Error::Transport(_)),
                "only the kill may stop a writer, but one got: {:?}",
                report.stopped_by
            );
            expected.extend(report.contacts);
        }
        eprintln!(
            "cycle {cycle}: {} writes acknowledged before SIGKILL; {} contacts sent so far",
            acknowledged.load(Ordering::SeqCst),
            expected.len()
        );

        assert_crash_image_intact(&database, &dir.path().join(format!("crash-{cycle}"))).await;
        server = ServerProcess::start(&database_url, &unlimited);
        assert_every_acknowledged_write_present(&Client::new(&server.base_url, &key), &expected)
            .await;
        assert_the_feed_replays_to_the_contacts(&Client::new(&server.base_url, &key)).await;
    }

    let client = Client::new(&server.base_url, &key);
    let created = client
        .create_contact(&write_of_create("after-the-last-crash".to_owned(), 1))
        .await
        .expect("the recovered server takes new writes");
    assert_eq!(
        client
            .get_contact("alt:ext_id:after-the-last-crash")
            .await
            .expect("and reads them back"),
        created
    );
    eprintln!("{CYCLES} crash cycles in {:?}", started.elapsed());
}

/// Checks that an event exists exactly for each change that survived: replaying the whole
/// feed (the contact each event left) gives every stored contact as it is now, and no
/// other.
async fn assert_the_feed_replays_to_the_contacts(client: &Client) {
    let mut replayed: BTreeMap<Uuid, Contact> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = client
            .list_events(after.as_deref(), Some(1000), &[])
            .await
            .expect("a feed page");
        if page.data.events.is_empty() {
            break;
        }
        for event in page.data.events {
            if let Some(contact) = event.data.contact {
                match event.event_type {
                    EventType::ContactDeleted => replayed.remove(&contact.id),
                    _ => replayed.insert(contact.id, contact),
                };
            }
        }
        after = page.next_cursor;
    }
    let mut stored: BTreeMap<Uuid, Contact> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = client
            .list_contacts(Some(100), cursor.as_deref())
            .await
            .expect("a list page");
        stored.extend(
            page.data
                .contacts
                .into_iter()
                .map(|contact| (contact.id, contact)),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        replayed.len(),
        stored.len(),
        "as many contacts in the feed as stored"
    );
    assert!(
        replayed == stored,
        "the feed replays to the stored contacts"
    );
}

/// Creates contacts `{prefix}-0…` and patches random ones of them, one request at a time,
/// until a request fails; counts every write answered 200 in `acknowledged`.
async fn write_until_the_server_dies(
    client: Client,
    prefix: String,
    acknowledged: Arc<AtomicUsize>,
) -> WriterReport {
    let mut contacts: Vec<(String, Expected)> = Vec::new();
    let mut value = 0;
    loop {
        value += 1;
        // One write in three creates, so that most contacts are patched a few times.
        let (index, outcome) = if contacts.is_empty() || value % 3 == 0 {
            let ext_id = format!("{prefix}-{}", contacts.len());
            contacts.push((ext_id.clone(), Expected::default()));
            let outcome = client.create_contact(&write_of_create(ext_id, value)).await;
            (contacts.len() - 1, outcome)
        } else {
            let index = rand::random_range(0..contacts.len());
            let id = format!("alt:ext_id:{}", contacts[index].0);
            let outcome = client.update_contact_at(&id, &write_of_update(value)).await;
            (index, outcome)
        };
        let expected = &mut contacts[index].1;
        match outcome {
            Ok(contact) => {
                assert_eq!(stored_value(&contact), value, "the answer shows the write");
                expected.acknowledged = Some(value);
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            Err(stopped_by) => {
                expected.in_flight = Some(value);
                return WriterReport {
                    contacts,
                    stopped_by,
                };
            }
        }
    }
}

/// Lets the writers run until `MIN_ACKNOWLEDGED` writes were answered, and then for a
/// random 200–600 ms more, so that the kill lands at no fixed point of the burst whatever
/// the machine's speed; then kills the server with SIGKILL and reaps it.
async fn kill_mid_burst(server: ServerProcess, acknowledged: &AtomicUsize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while acknowledged.load(Ordering::SeqCst) < MIN_ACKNOWLEDGED {
        assert!(
            Instant::now() < deadline,
            "fewer than {MIN_ACKNOWLEDGED} writes were acknowledged in 15 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(rand::random_range(200..=600))).await;
    server.kill();
}

/// Checks the database exactly as the crash left it, main file and WAL, with
/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check`.
///
/// It checks a copy: opening the file replays its WAL, and closing the last connection
/// checkpoints and deletes it, so checking the original would leave the restarted server
/// nothing to recover, and the recovery it does after a real crash would go untested.
async fn assert_crash_image_intact(database: &Path, image_dir: &Path) {
    std::fs::create_dir(image_dir).expect("image dir");
    let image = image_dir.join("contactd.db");
    for suffix in ["", "-wal"] {
        let original = format!("{}{suffix}", database.display());
        if Path::new(&original).exists() {
            std::fs::copy(&original, format!("{}{suffix}", image.display()))
                .expect("copy the crash image");
        }
    }
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", image.display()))
        .await
        .expect("open the crash image");
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .expect("run integrity_check");
    assert_eq!(integrity, ["ok"], "integrity_check after SIGKILL");
    let orphans = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .expect("run foreign_key_check");
    assert!(
        orphans.is_empty(),
        "{} rows break a foreign key after SIGKILL",
        orphans.len()
    );
    conn.close().await.expect("close the crash image");
}

/// Reads every contact the writers sent, `WRITERS` reads at a time, and checks each holds
/// what [`Expected`] allows: every acknowledged create is there, with its last acknowledged
/// write or the one in flight after it.
async fn assert_every_acknowledged_write_present(
    client: &Client,
    expected: &BTreeMap<String, Expected>,
) {
    let contacts: Vec<(String, Expected)> = expected
        .iter()
        .map(|(ext_id, expected)| (ext_id.clone(), *expected))
        .collect();
    let readers: Vec<_> = contacts
        .chunks(contacts.len().div_ceil(WRITERS))
        .map(|chunk| {
            let client = client.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for (ext_id, expected) in chunk {
                    assert_holds_what_was_written(&client, &ext_id, expected).await;
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.expect("every contact holds what was written");
    }
}

async fn assert_holds_what_was_written(client: &Client, ext_id: &str, expected: Expected) {
    match client.get_contact(&format!("alt:ext_id:{ext_id}")).await {
        Ok(contact) => {
            let stored = stored_value(&contact);
            assert!(
                Some(stored) == expected.acknowledged || Some(stored) == expected.in_flight,
                "{ext_id} holds value {stored}, but the last write answered 200 set {:?} \
                 and the one in flight at the kill {:?}",
                expected.acknowledged,
                expected.in_flight
            );
        }
        Err(Error::Api(body)) if body.code.as_deref() == Some("contact_not_found") => {
            assert_eq!(
                expected.acknowledged, None,
                "{ext_id} was created and answered 200, and is gone after the crash"
            );
        }
        Err(error) => panic!("reading {ext_id} after the restart failed: {error}"),
    }
}

/// The value a contact holds, checking that its name and its field agree: both are set by
/// every write, so a disagreement is a write applied in part.
fn stored_value(contact: &Contact) -> u64 {
    let from_name = contact
        .first_name
        .as_deref()
        .and_then(|name| name.strip_prefix('v'))
        .and_then(|value| value.parse().ok());
    let from_field = contact
        .custom_fields
        .iter()
        .find(|field| field.key == FIELD)
        .and_then(|field| field.value.as_u64());
    assert_eq!(from_name, from_field, "a torn write: {contact:?}");
    from_name.unwrap_or_else(|| panic!("a contact without a written value: {contact:?}"))
}

fn write_of_create(ext_id: String, value: u64) -> CreateContact {
    CreateContact {
        ext_id: Some(ext_id),
        first_name: Some(format!("v{value}")),
        custom_fields: vec![field_value(value)],
        ..CreateContact::default()
    }
}

fn write_of_update(value: u64) -> UpdateContact {
    UpdateContact {
        first_name: Some(Some(format!("v{value}"))),
        custom_fields: Some(CustomFieldChanges {
            set: vec![field_value(value)],
            remove: Vec::new(),
        }),
        ..UpdateContact::default()
    }
}

fn field_value(value: u64) -> CustomFieldInput {
    CustomFieldInput {
        key: FIELD.to_owned(),
        value: json!(value),
    }
}
