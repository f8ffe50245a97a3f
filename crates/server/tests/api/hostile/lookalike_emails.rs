//! Emails that look like another contact's: a mailbox of their own, the same one, or refused.

use serde_json::json;

use super::{Seeded, Snapshot, seeded};
use crate::helpers::contract_test;

/// What happens to an email that looks like `jane@example.com`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookalike {
    /// Refused as an invalid address (invisible characters among them).
    Refused,
    /// A valid address of its own, stored in this normal form: a different mailbox, so a
    /// different contact.
    Distinct(&'static str),
    /// Another spelling of Jane's own address (docs/robustness.md#email-normalisation):
    /// refused as her duplicate, and a lookup by it finds her.
    Same,
}

async fn a_lookalike_email_never_reaches_the_ascii_contact() {
    let Seeded { app, jane, .. } = seeded().await;
    let before = Snapshot::take_data(&app).await;
    let expected = [
        (
            "j\u{430}ne@example.com",
            Lookalike::Distinct("j\u{430}ne@example.com"),
        ),
        (
            "jane@ex\u{430}mple.com",
            Lookalike::Distinct("jane@xn--exmple-4nf.com"),
        ),
        ("jane\u{ff20}example.com", Lookalike::Refused),
        (
            "\u{ff4a}\u{ff41}\u{ff4e}\u{ff45}@example.com",
            Lookalike::Same,
        ),
        ("ja\u{200d}ne@example.com", Lookalike::Refused),
        ("jane\u{200b}@example.com", Lookalike::Refused),
        ("jane@example.com\u{200b}", Lookalike::Refused),
        ("\u{202e}jane@example.com", Lookalike::Refused),
        ("jane@example.com\u{202e}", Lookalike::Refused),
        (
            "jane\u{301}@example.com",
            Lookalike::Distinct("jan\u{e9}@example.com"),
        ),
        ("ja\u{ad}ne@example.com", Lookalike::Refused),
        ("jane@example\u{3002}com", Lookalike::Same),
    ];
    for (email, expectation) in expected {
        let named = format!("alt:email:{email}");
        let created = app.create_contact(json!({"email": email})).await;
        let fetched = app.get_contact(&named).await;
        match expectation {
            Lookalike::Distinct(stored) => {
                // A mailbox of its own: every request naming it reaches it, and only it.
                created.assert_status(200);
                let id = &created.body["id"];
                assert_ne!(id, &jane["id"], "{email:?}");
                assert_eq!(created.body["email"], json!(stored), "{email:?}");
                let updated = app
                    .patch_contact(json!({"id": named, "first_name": "Mallory"}))
                    .await;
                let deleted = app.delete_contact(&named).await;
                for response in [&fetched, &updated, &deleted] {
                    response.assert_status(200);
                    assert_eq!(&response.body["id"], id, "{email:?}: {}", response.text);
                }
                assert_eq!(updated.body["first_name"], json!("Mallory"));
            }
            Lookalike::Same => {
                created.assert_error(409, "duplicate_email");
                assert_eq!(created.body["conflicting_contact_id"], jane["id"]);
                fetched.assert_status(200);
                assert_eq!(fetched.body, jane, "{email:?}");
            }
            Lookalike::Refused => {
                created.assert_error(400, "invalid_email");
                let updated = app
                    .patch_contact(json!({"id": named, "first_name": "Mallory"}))
                    .await;
                let deleted = app.delete_contact(&named).await;
                for response in [&fetched, &updated, &deleted] {
                    response.assert_error(400, "invalid_identifier");
                }
            }
        }
    }
    assert_eq!(
        app.get_contact(jane["id"].as_str().unwrap()).await.body,
        jane
    );
    // Each distinct contact was deleted again, so nothing but the change events may differ.
    before
        .assert_data_unchanged(&app, "the lookalike emails")
        .await;
}
contract_test!(a_lookalike_email_never_reaches_the_ascii_contact);
