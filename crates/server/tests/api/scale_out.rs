//! Horizontal scale-out (docs/reference.md#10-storage-and-scale): two `contactd serve` processes on one PostgreSQL database,
//! driven through the typed client, keep every guarantee that one process gives — reads
//! see the other process's writes at once, uniqueness holds under races split across both,
//! concurrent updates of one contact lose nothing, and list cursors work on either process.

use std::collections::HashSet;

use std::time::Duration;

use contactd_api::{
    Contact, CreateContact, CreateCustomField, CustomFieldChanges, CustomFieldInput, ErrorBody,
    Event, FieldType, PhoneNumberInput, UpdateContact,
};
use contactd_client::{Client, Error};
use serde_json::json;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::helpers::{Answer, Backend, Delivery, Receiver, ServerProcess, TestDatabase, admin};

/// Two servers on one fresh PostgreSQL database, with a client for each acting for the
/// same company.
struct TwoServers {
    a: Client,
    b: Client,
    // Fields drop in order: the processes are stopped before their database is dropped.
    processes: [ServerProcess; 2],
    _database: TestDatabase,
}

impl TwoServers {
    async fn start() -> Self {
        let database = TestDatabase::create(Backend::Postgres).await;
        admin(&database.url, &["company", "create", "acme"]);
        let key = admin(&database.url, &["key", "create", "--company", "acme"])
            .trim()
            .to_owned();
        // Both may deliver webhooks to this machine's receivers.
        let env = [("CONTACTD_WEBHOOK_ALLOW_PRIVATE", "1")];
        let servers = [
            ServerProcess::start(&database.url, &env),
            ServerProcess::start(&database.url, &env),
        ];
        Self {
            a: Client::new(&servers[0].base_url, &key),
            b: Client::new(&servers[1].base_url, &key),
            processes: servers,
            _database: database,
        }
    }

    /// The client of request number `turn`: A for even turns, B for odd ones, so that a
    /// batch of requests is split evenly across both processes.
    fn by_turn(&self, turn: usize) -> Client {
        if turn.is_multiple_of(2) {
            self.a.clone()
        } else {
            self.b.clone()
        }
    }

    /// Creates `count` contacts with ext_ids `{prefix}-0…`, all at once, alternating
    /// processes, and returns them in that order.
    async fn create_contacts(&self, prefix: &str, count: usize) -> Vec<Contact> {
        let tasks = (0..count)
            .map(|index| {
                let client = self.by_turn(index);
                let body = CreateContact {
                    ext_id: Some(format!("{prefix}-{index}")),
                    ..CreateContact::default()
                };
                tokio::spawn(async move { client.create_contact(&body).await })
            })
            .collect();
        joined(tasks)
            .await
            .into_iter()
            .map(|created| created.expect("contact created"))
            .collect()
    }
}

/// Awaits every task, keeping their order.
async fn joined<T>(tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("the request task ran"));
    }
    outcomes
}

/// The API error body of a call that must have failed with one.
#[track_caller]
fn api_error<T: std::fmt::Debug>(outcome: Result<T, Error>) -> ErrorBody {
    match outcome {
        Err(Error::Api(body)) => body,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Checks the outcomes of a race for one unique value: exactly one request won, and every
/// other was refused 409 with `code`, naming the winner. Returns the winner.
#[track_caller]
fn one_winner(outcomes: Vec<Result<Contact, Error>>, code: &str) -> Contact {
    let (won, lost): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    assert_eq!(won.len(), 1, "exactly one request wins; lost: {lost:?}");
    let winner = won.into_iter().next().unwrap().unwrap();
    for outcome in lost {
        let body = api_error(outcome);
        assert_eq!(body.error, 409, "{body:?}");
        assert_eq!(body.code.as_deref(), Some(code), "{body:?}");
        assert_eq!(body.conflicting_contact_id, Some(winner.id), "{body:?}");
    }
    winner
}

/// Every contact of the company, walked page by page through one client.
async fn all_contacts(client: &Client) -> Vec<Contact> {
    let mut contacts = Vec::new();
    let mut cursor = None;
    // Bounded: the tests here hold a few hundred contacts at most.
    for _ in 0..10 {
        let page = client
            .list_contacts(Some(100), cursor.as_deref())
            .await
            .expect("page listed");
        contacts.extend(page.data.contacts);
        cursor = page.next_cursor;
        if cursor.is_none() {
            return contacts;
        }
    }
    panic!("the list did not end within 10 pages");
}

/// Sorts contacts as the list returns them: newest first, ties broken by id, descending.
fn newest_first(mut contacts: Vec<Contact>) -> Vec<Contact> {
    contacts.sort_by_key(|contact| std::cmp::Reverse((contact.created_at, contact.id)));
    contacts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn a_write_through_one_process_is_read_through_the_other_at_once() {
    let servers = TwoServers::start().await;
    let created = servers
        .a
        .create_contact(&CreateContact {
            email: Some("Jane@Example.com".to_owned()),
            ext_id: Some("crm-42".to_owned()),
            first_name: Some("Jane".to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("created through A");
    let id = created.id.to_string();

    assert_eq!(
        servers.b.get_contact(&id).await.expect("fetched by id"),
        created
    );
    assert_eq!(
        servers
            .b
            .get_contact("alt:email:JANE@example.com")
            .await
            .expect("fetched by email"),
        created
    );

    let updated = servers
        .b
        .update_contact(&UpdateContact {
            id: Some("alt:ext_id:crm-42".to_owned()),
            first_name: Some(Some("Janet".to_owned())),
            phone_number: Some(Some(PhoneNumberInput::from("(415) 555-2671"))),
            ..UpdateContact::default()
        })
        .await
        .expect("updated through B");
    assert_eq!(updated.first_name.as_deref(), Some("Janet"));
    assert_eq!(
        servers.a.get_contact(&id).await.expect("fetched through A"),
        updated
    );
    assert_eq!(
        servers
            .a
            .get_contact("alt:phone_number:+14155552671")
            .await
            .expect("fetched by the new phone number through A"),
        updated
    );

    let deleted = servers.a.delete_contact(&id).await.expect("deleted");
    assert!(deleted.deleted);
    for gone in [id.as_str(), "alt:email:jane@example.com"] {
        let body = api_error(servers.b.get_contact(gone).await);
        assert_eq!(body.error, 404, "{gone}: {body:?}");
    }
    // docs/reference.md#6-contact-endpoints: a deleted contact's identifiers are free for reuse at once, on every process.
    let reused = servers
        .b
        .create_contact(&CreateContact {
            email: Some("jane@example.com".to_owned()),
            ext_id: Some("crm-42".to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("the deleted contact's identifiers are free");
    assert_ne!(reused.id, created.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn creates_racing_for_one_email_across_both_processes_have_one_winner() {
    let servers = TwoServers::start().await;
    let tasks = (0..64)
        .map(|index| {
            let client = servers.by_turn(index);
            let body = CreateContact {
                email: Some("race@example.com".to_owned()),
                ext_id: Some(format!("racer-{index}")),
                ..CreateContact::default()
            };
            tokio::spawn(async move { client.create_contact(&body).await })
        })
        .collect();
    let winner = one_winner(joined(tasks).await, "duplicate_email");

    let contacts = all_contacts(&servers.b).await;
    assert_eq!(contacts, vec![winner.clone()], "only the winner was stored");
    assert_eq!(
        servers
            .a
            .get_contact("alt:email:race@example.com")
            .await
            .expect("the winner, through A"),
        winner
    );
}

/// The same create sent with one `Idempotency-Key` 32 times at once, split across both
/// processes: it runs once, and every other gets its answer or is told to wait (a second
/// run would be refused as a duplicate ext_id, which the test would see).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn an_idempotency_key_runs_its_write_once_across_both_processes() {
    let servers = TwoServers::start().await;
    let body = CreateContact {
        ext_id: Some("once".to_owned()),
        ..CreateContact::default()
    };
    let tasks = (0..32)
        .map(|index| {
            let client = servers.by_turn(index).idempotent("one-create");
            let body = body.clone();
            tokio::spawn(async move { client.create_contact(&body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for outcome in joined(tasks).await {
        match outcome {
            Ok(contact) => answers.push(contact),
            Err(Error::RetryLater { body, .. }) => {
                assert_eq!(body.code.as_deref(), Some("idempotency_in_progress"));
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert!(!answers.is_empty());
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "one answer"
    );
    assert_eq!(all_contacts(&servers.a).await, vec![answers[0].clone()]);
    // Once answered, a repeat through either process gets that answer.
    for client in [&servers.a, &servers.b] {
        let repeat = client.idempotent("one-create").create_contact(&body).await;
        assert_eq!(repeat.expect("the answer"), answers[0]);
    }
}

/// One uniqueness rule raced for: a patch setting a member to a value every contact wants,
/// the code its losers get, and whether a contact holds the value.
struct UniqueRace {
    patch: UpdateContact,
    conflict_code: &'static str,
    holds: fn(&Contact) -> bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn patches_racing_across_both_processes_keep_every_uniqueness_rule() {
    let servers = TwoServers::start().await;
    servers.create_contacts("r", 32).await;
    let races = [
        UniqueRace {
            patch: UpdateContact {
                email: Some(Some("shared@example.com".to_owned())),
                ..UpdateContact::default()
            },
            conflict_code: "duplicate_email",
            holds: |contact| contact.email.as_deref() == Some("shared@example.com"),
        },
        UniqueRace {
            patch: UpdateContact {
                phone_number: Some(Some(PhoneNumberInput::from("+1 415 555 2671"))),
                ..UpdateContact::default()
            },
            conflict_code: "duplicate_phone_number",
            holds: |contact| contact.phone_number.as_deref() == Some("+14155552671"),
        },
        // Last, so that the earlier races can still name every contact by its own ext_id.
        UniqueRace {
            patch: UpdateContact {
                ext_id: Some(Some("shared".to_owned())),
                ..UpdateContact::default()
            },
            conflict_code: "duplicate_ext_id",
            holds: |contact| contact.ext_id.as_deref() == Some("shared"),
        },
    ];
    for race in races {
        let tasks = (0..32)
            .map(|index| {
                let client = servers.by_turn(index);
                let body = UpdateContact {
                    id: Some(format!("alt:ext_id:r-{index}")),
                    ..race.patch.clone()
                };
                tokio::spawn(async move { client.update_contact(&body).await })
            })
            .collect();
        let winner = one_winner(joined(tasks).await, race.conflict_code);

        let contacts = all_contacts(&servers.a).await;
        assert_eq!(contacts.len(), 32);
        let holders: Vec<Uuid> = contacts
            .iter()
            .filter(|contact| (race.holds)(contact))
            .map(|contact| contact.id)
            .collect();
        assert_eq!(
            holders,
            vec![winner.id],
            "{}: only the winner holds the value",
            race.conflict_code
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn concurrent_patches_of_one_contact_across_both_processes_lose_nothing() {
    let servers = TwoServers::start().await;
    let keys: Vec<String> = (0..16).map(|index| format!("f{index}")).collect();
    for key in &keys {
        servers
            .a
            .create_custom_field(&CreateCustomField {
                key: key.clone(),
                display_name: key.to_uppercase(),
                field_type: FieldType::Text,
                options: None,
            })
            .await
            .expect("field defined");
    }
    let contact = servers
        .b
        .create_contact(&CreateContact {
            ext_id: Some("busy".to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("contact created");

    // One patch per custom field, and one per member beside the ext_id: each changes
    // something no other patch touches, so every one of them must show in the end.
    let field_patches = keys.iter().map(|key| UpdateContact {
        custom_fields: Some(CustomFieldChanges {
            set: vec![CustomFieldInput {
                key: key.clone(),
                value: json!(format!("value of {key}")),
            }],
            remove: Vec::new(),
        }),
        ..UpdateContact::default()
    });
    let member_patches = [
        UpdateContact {
            email: Some(Some("busy@example.com".to_owned())),
            ..UpdateContact::default()
        },
        UpdateContact {
            phone_number: Some(Some(PhoneNumberInput::from("+442079460958"))),
            ..UpdateContact::default()
        },
        UpdateContact {
            first_name: Some(Some("Busy".to_owned())),
            ..UpdateContact::default()
        },
        UpdateContact {
            last_name: Some(Some("Bee".to_owned())),
            ..UpdateContact::default()
        },
    ];
    let tasks = field_patches
        .chain(member_patches)
        .enumerate()
        .map(|(index, patch)| {
            let client = servers.by_turn(index);
            let body = UpdateContact {
                id: Some("alt:ext_id:busy".to_owned()),
                ..patch
            };
            tokio::spawn(async move { client.update_contact(&body).await })
        })
        .collect();
    for outcome in joined(tasks).await {
        let updated = outcome.expect("every patch succeeds");
        assert_eq!(updated.id, contact.id);
    }

    let mut expected_keys = keys.clone();
    expected_keys.sort();
    for client in [&servers.a, &servers.b] {
        let after = client
            .get_contact(&contact.id.to_string())
            .await
            .expect("fetched");
        assert_eq!(after.email.as_deref(), Some("busy@example.com"));
        assert_eq!(after.phone_number.as_deref(), Some("+442079460958"));
        assert_eq!(after.ext_id.as_deref(), Some("busy"));
        assert_eq!(after.first_name.as_deref(), Some("Busy"));
        assert_eq!(after.last_name.as_deref(), Some("Bee"));
        let values: Vec<(String, serde_json::Value)> = after
            .custom_fields
            .into_iter()
            .map(|field| (field.key, field.value))
            .collect();
        let expected: Vec<(String, serde_json::Value)> = expected_keys
            .iter()
            .map(|key| (key.clone(), json!(format!("value of {key}"))))
            .collect();
        assert_eq!(values, expected, "every value is kept, ordered by key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn a_list_walk_alternating_processes_returns_every_contact_once_newest_first() {
    let servers = TwoServers::start().await;
    // Created all at once, so that many share a millisecond and the tie-break by id counts.
    let expected = newest_first(servers.create_contacts("p", 120).await);

    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    // 120 contacts in pages of 25: five pages; the bound only stops a cursor that loops.
    for turn in 0..6 {
        let page = servers
            .by_turn(turn)
            .list_contacts(Some(25), cursor.as_deref())
            .await
            .expect("page listed");
        pages += 1;
        walked.extend(page.data.contacts);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(cursor, None, "the walk ends with a null next_cursor");
    assert_eq!(pages, 5);
    assert_eq!(walked, expected, "every contact once, newest first");

    // The same cursor names the same position on either process.
    let first_page = servers
        .a
        .list_contacts(Some(25), None)
        .await
        .expect("first page");
    let cursor = first_page.next_cursor.expect("a second page");
    let through_a = servers
        .a
        .list_contacts(Some(25), Some(&cursor))
        .await
        .expect("second page through A");
    let through_b = servers
        .b
        .list_contacts(Some(25), Some(&cursor))
        .await
        .expect("second page through B");
    assert_eq!(through_a, through_b);
    assert_eq!(through_b.data.contacts, expected[25..50]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn a_list_walk_across_both_processes_survives_writes_through_the_other() {
    let servers = TwoServers::start().await;
    let existing: Vec<Uuid> = newest_first(servers.create_contacts("p", 120).await)
        .iter()
        .map(|contact| contact.id)
        .collect();
    // Every tenth contact is deleted during the walk; the rest exist, unchanged, throughout.
    let doomed: Vec<Uuid> = existing.iter().copied().step_by(10).collect();
    let stable: Vec<Uuid> = existing
        .iter()
        .copied()
        .filter(|id| !doomed.contains(id))
        .collect();
    let mut doomed_left = doomed.chunks(3);

    let mut walked: Vec<Contact> = Vec::new();
    let mut cursor: Option<String> = None;
    for turn in 0..10 {
        let page = servers
            .by_turn(turn)
            .list_contacts(Some(25), cursor.as_deref())
            .await
            .expect("page listed");
        walked.extend(page.data.contacts);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        // Between pages, the other process creates a contact and deletes a few.
        let other = servers.by_turn(turn + 1);
        other
            .create_contact(&CreateContact {
                ext_id: Some(format!("new-{turn}")),
                ..CreateContact::default()
            })
            .await
            .expect("created during the walk");
        for id in doomed_left.next().unwrap_or_default() {
            other
                .delete_contact(&id.to_string())
                .await
                .expect("deleted during the walk");
        }
    }
    assert_eq!(cursor, None, "the walk ends");

    let ids: Vec<Uuid> = walked.iter().map(|contact| contact.id).collect();
    let distinct: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "no contact is listed twice");
    assert!(
        walked
            .windows(2)
            .all(|pair| (pair[0].created_at, pair[0].id) > (pair[1].created_at, pair[1].id)),
        "the walk is newest first throughout"
    );
    let stable_seen: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| stable.contains(id))
        .collect();
    assert_eq!(
        stable_seen, stable,
        "every contact that existed throughout is listed"
    );
    let others: Vec<&Contact> = walked
        .iter()
        .filter(|contact| !stable.contains(&contact.id) && !doomed.contains(&contact.id))
        .collect();
    assert!(
        others.iter().all(|contact| contact
            .ext_id
            .as_deref()
            .is_some_and(|ext_id| ext_id.starts_with("new-"))),
        "anything else listed was created during the walk: {others:?}"
    );
}

/// One acknowledged change, as the feed must show it: its type, its contact, and the
/// first name the change left it with.
type Change = (String, Uuid, Option<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn a_reader_of_the_feed_sees_every_committed_change_of_both_processes_exactly_once() {
    const WRITERS: usize = 12;
    const ROUNDS: usize = 15;
    const HOT: usize = 3;
    let servers = TwoServers::start().await;
    let hot = servers.create_contacts("hot", HOT).await;
    let hot_ids: Vec<Uuid> = hot.iter().map(|contact| contact.id).collect();

    // Writers on both processes: creates, updates of a few contacts they all contend for
    // (row locks queue them, so positions are taken out of commit order), and creates
    // refused as duplicates, which must leave nothing.
    let writers: Vec<JoinHandle<Vec<Change>>> = (0..WRITERS)
        .map(|writer| {
            let client = servers.by_turn(writer);
            let hot_ids = hot_ids.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for round in 0..ROUNDS {
                    let name = format!("w{writer}-r{round}");
                    let created = client
                        .create_contact(&CreateContact {
                            ext_id: Some(name.clone()),
                            first_name: Some(name.clone()),
                            ..CreateContact::default()
                        })
                        .await
                        .expect("created");
                    acknowledged.push((
                        "contact.created".to_owned(),
                        created.id,
                        Some(name.clone()),
                    ));
                    let target = hot_ids[(writer + round) % HOT];
                    let updated = client
                        .update_contact(&UpdateContact {
                            id: Some(target.to_string()),
                            first_name: Some(Some(name.clone())),
                            ..UpdateContact::default()
                        })
                        .await
                        .expect("updated");
                    acknowledged.push((
                        "contact.updated".to_owned(),
                        updated.id,
                        Some(name.clone()),
                    ));
                    let refused = client
                        .create_contact(&CreateContact {
                            ext_id: Some(name),
                            ..CreateContact::default()
                        })
                        .await;
                    assert_eq!(api_error(refused).code.as_deref(), Some("duplicate_ext_id"));
                }
                acknowledged
            })
        })
        .collect();

    // The reader follows the feed through both processes in turn while the writes run,
    // and goes on until it has seen as many events as were acknowledged.
    let reader = {
        let clients = [servers.a.clone(), servers.b.clone()];
        let expected = HOT + WRITERS * ROUNDS * 2;
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            for turn in 0.. {
                let page = clients[turn % 2]
                    .list_events(after.as_deref(), Some(50), &[])
                    .await
                    .expect("a page");
                if page.data.events.is_empty() {
                    if seen.len() >= expected {
                        return seen;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "the feed stopped at {} of {expected} events",
                        seen.len()
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                seen.extend(page.data.events);
                after = page.next_cursor;
            }
            unreachable!()
        })
    };

    let mut acknowledged: Vec<Change> = hot
        .iter()
        .map(|contact| ("contact.created".to_owned(), contact.id, None))
        .collect();
    acknowledged.extend(joined(writers).await.into_iter().flatten());
    let seen = reader.await.expect("the reader");

    let ids: HashSet<&str> = seen.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "an event was listed twice");
    let mut listed: Vec<Change> = seen
        .iter()
        .map(|event| {
            let contact = event.data.contact.as_ref().expect("a contact event");
            (
                event.event_type.as_str().to_owned(),
                contact.id,
                contact.first_name.clone(),
            )
        })
        .collect();
    listed.sort();
    acknowledged.sort();
    assert_eq!(
        listed, acknowledged,
        "the feed holds exactly the acknowledged changes"
    );

    // Each contact's events follow one another as their changes committed, in the feed and
    // in its history.
    for id in &hot_ids {
        let in_feed = seen.iter().filter(|event| {
            event
                .data
                .contact
                .as_ref()
                .is_some_and(|contact| contact.id == *id)
        });
        assert_in_commit_order(in_feed, &format!("{id} in the feed"));
        let mut history = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = servers
                .a
                .contact_history(&id.to_string(), Some(100), cursor.as_deref())
                .await
                .expect("a history page");
            history.extend(page.data.events);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(history.len(), 1 + WRITERS * ROUNDS / HOT);
        assert_in_commit_order(history.iter().rev(), &format!("{id} in its history"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn both_processes_deliver_each_event_once_in_feed_order_never_twice_at_once() {
    // More endpoints than one process serves at once (16), each kept busy for longer than a
    // deliverer's poll (20 events × 30 ms a round), so both processes must take some.
    const ENDPOINTS: usize = 20;
    const ROUNDS: usize = 6;
    const PER_ROUND: usize = 20;
    let servers = TwoServers::start().await;
    // Each receiver holds a delivery a little, so that a second sender of one still in
    // flight would be seen.
    let mut receivers = Vec::new();
    for endpoint in 0..ENDPOINTS {
        let receiver = Receiver::start(Answer::Slowly(Duration::from_millis(30))).await;
        servers
            .by_turn(endpoint)
            .create_webhook(&receiver.endpoint())
            .await
            .expect("endpoint created");
        receivers.push(receiver);
    }
    // Writes through both processes in rounds with pauses longer than a deliverer's poll,
    // so that endpoints fall idle, are given up, and are claimed again by either process.
    for round in 0..ROUNDS {
        servers
            .create_contacts(&format!("round-{round}"), PER_ROUND)
            .await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    let expected = ROUNDS * PER_ROUND;
    let mut feed = Vec::new();
    let mut events = servers.a.events(None, &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while feed.len() < expected {
        match events.next().await.expect("the feed") {
            Some(event) => feed.push(event.id),
            None => {
                assert!(tokio::time::Instant::now() < deadline, "the feed stopped");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    for receiver in &receivers {
        let deliveries = receiver.wait_for(expected, Duration::from_secs(60)).await;
        let ids: Vec<&str> = deliveries.iter().map(Delivery::id).collect();
        assert_eq!(ids, feed, "every event once, in feed order");
        assert_eq!(receiver.overlapping(), Vec::<String>::new());
    }
    for process in &servers.processes {
        assert!(
            process.log().contains("delivering to a webhook endpoint"),
            "both processes delivered"
        );
    }
}

/// Checks that one contact's events, oldest first, follow one another as their changes
/// committed: each update's "before" of `first_name` is what the event before it left.
#[track_caller]
fn assert_in_commit_order<'a>(events: impl Iterator<Item = &'a Event>, what: &str) {
    let mut first_name = None;
    for event in events {
        if let Some(change) = event
            .data
            .changes
            .as_ref()
            .and_then(|changes| changes.get("first_name"))
        {
            assert_eq!(
                change.before,
                json!(first_name),
                "{what}: out of commit order"
            );
        }
        first_name = event
            .data
            .contact
            .as_ref()
            .and_then(|contact| contact.first_name.clone());
    }
}
