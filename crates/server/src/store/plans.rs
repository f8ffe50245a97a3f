//! The query plans of the contact searches (docs/reference.md#finding-contacts): every
//! filter, alone and with the others, in every order, and every count, is read through an
//! index on both backends, never by a scan of the contacts. The plans are printed, so
//! `cargo test -p contactd --lib plans -- --nocapture` shows them.

use contactd_api::ContactSort;
use uuid::Uuid;

use super::connection::Statement;
use super::model::{
    Comparison, ContactQuery, FieldFilter, FieldTest, ListPosition, TimeRange, UniqueMember,
};
use super::sql::{self, TextIndex};

/// A query with one filter of each kind.
pub fn every_filter(field_id: Uuid) -> ContactQuery {
    let mut query = ContactQuery::default();
    for single in single_filters(field_id) {
        query.text = query.text.or(single.text);
        query.identifier.extend(single.identifier);
        query.created.after = query.created.after.or(single.created.after);
        query.created.before = query.created.before.or(single.created.before);
        query.updated.after = query.updated.after.or(single.updated.after);
        query.updated.before = query.updated.before.or(single.updated.before);
        query.fields.extend(single.fields);
    }
    query
}

/// One query per filter.
fn single_filters(field_id: Uuid) -> Vec<ContactQuery> {
    let field = |test| ContactQuery {
        fields: vec![FieldFilter { field_id, test }],
        ..ContactQuery::default()
    };
    let range = TimeRange {
        after: Some(1),
        before: Some(2),
    };
    vec![
        ContactQuery {
            text: Some("ann".to_owned()),
            ..ContactQuery::default()
        },
        ContactQuery {
            identifier: vec![(UniqueMember::Email, "ann@example.com".to_owned())],
            ..ContactQuery::default()
        },
        ContactQuery {
            identifier: vec![(UniqueMember::PhoneNumber, "+14155552671".to_owned())],
            ..ContactQuery::default()
        },
        ContactQuery {
            identifier: vec![(UniqueMember::ExtId, "crm-1".to_owned())],
            ..ContactQuery::default()
        },
        ContactQuery {
            created: range,
            ..ContactQuery::default()
        },
        ContactQuery {
            updated: range,
            ..ContactQuery::default()
        },
        field(FieldTest::AnyOf(vec!["pro".to_owned(), "team".to_owned()])),
        field(FieldTest::Compare(Comparison::Equal, 10.0)),
        field(FieldTest::Compare(Comparison::GreaterOrEqual, 1.5)),
        field(FieldTest::Exists(true)),
        field(FieldTest::Exists(false)),
    ]
}

/// Every statement a contact search may run: each query in each order, its count.
fn statements(text_index: TextIndex) -> Vec<Statement> {
    let company_id = Uuid::from_u128(1);
    let field_id = Uuid::from_u128(2);
    let mut queries = single_filters(field_id);
    queries.push(every_filter(field_id));
    queries.push(ContactQuery::default());
    let mut statements = Vec::new();
    for query in queries {
        statements.push(sql::count_found_contacts(company_id, &query, text_index));
        for sort in ContactSort::ALL {
            let query = ContactQuery {
                sort,
                ..query.clone()
            };
            let after = ListPosition::start(sort);
            statements.push(sql::find_contacts(
                company_id, &query, after, 21, text_index,
            ));
        }
    }
    statements
}

/// SQLite: every table the statement reads is searched through an index (`SEARCH`); the
/// only scans are of the text index itself and of the page the statement has already
/// found (the outer `c`).
#[test]
fn every_contact_search_reads_through_an_index_on_sqlite() {
    let conn = rusqlite::Connection::open_in_memory().expect("open");
    for migration in super::schema::SQLITE_MIGRATIONS.iter() {
        conn.execute_batch(&migration.sql).expect("schema");
    }
    for statement in statements(TextIndex::Fts5Trigram) {
        let explain = Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", statement.sql).into(),
            args: statement.args.clone(),
        };
        let mut prepared = super::sqlite::connection::prepare(&conn, &explain).expect("prepare");
        let mut rows = prepared.raw_query();
        let mut plan = Vec::new();
        while let Some(row) = rows.next().expect("plan") {
            let parent: i64 = row.get(1).expect("parent");
            let detail: String = row.get(3).expect("detail");
            plan.push((parent, detail));
        }
        let text: Vec<&str> = plan.iter().map(|(_, detail)| detail.as_str()).collect();
        println!("{}\n  {}\n", statement.sql, text.join("\n  "));
        for (parent, detail) in &plan {
            let scans_the_page = *parent == 0 && detail == "SCAN c";
            let scans_the_text_index = detail.starts_with("SCAN contacts_search VIRTUAL TABLE");
            assert!(
                !detail.starts_with("SCAN") || scans_the_page || scans_the_text_index,
                "{detail} in the plan of {}:\n{}",
                statement.sql,
                text.join("\n")
            );
        }
    }
}

/// PostgreSQL: with sequential scans priced out, no plan reads a table but through an
/// index, so an index serves every statement (on tables this small the planner would
/// rightly prefer a scan).
#[cfg(postgres_tests)]
#[tokio::test]
async fn every_contact_search_reads_through_an_index_on_postgresql() {
    use sqlx::{Connection, Executor, PgConnection};

    let url = std::env::var("CONTACTD_TEST_POSTGRES_URL").expect("the test database's URL");
    let mut admin = PgConnection::connect(&url).await.expect("connect");
    let name = format!("contactd_plans_{}", Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let database_url = format!("{}/{name}", url.rsplit_once('/').expect("a path").0);
    let mut conn = PgConnection::connect(&database_url).await.expect("connect");
    super::schema::POSTGRES_MIGRATIONS
        .run(&mut conn)
        .await
        .expect("migrate");
    conn.execute("SET enable_seqscan = off").await.expect("set");
    for statement in statements(TextIndex::PgTrgm) {
        let explain = Statement {
            sql: format!("EXPLAIN {}", statement.sql).into(),
            args: statement.args.clone(),
        };
        let plan: Vec<String> = super::postgres::connection::bind(&explain, false)
            .fetch_all(&mut conn)
            .await
            .expect("explain")
            .iter()
            .map(|row| sqlx::Row::get(row, 0))
            .collect();
        println!("{}\n{}\n", statement.sql, plan.join("\n"));
        assert!(
            !plan.iter().any(|line| line.contains("Seq Scan")),
            "a sequential scan in the plan of {}:\n{}",
            statement.sql,
            plan.join("\n")
        );
    }
    conn.close().await.expect("close");
    admin
        .execute(format!("DROP DATABASE {name}").as_str())
        .await
        .expect("drop database");
}
