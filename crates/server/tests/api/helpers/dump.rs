//! A dump of a test database, every row as text, so that two dumps compare equal exactly
//! when the database did not change.

use sqlx::{Connection, Row};

use super::{Backend, TestDatabase};

/// The column a dump leaves out.
const UNDUMPED_COLUMN: &str = "last_used_at";

impl TestDatabase {
    /// Every row of every table, as text, tables and rows in a fixed order; but for a key's
    /// `last_used_at`, bookkeeping that any request writes just after it was answered.
    pub async fn dump(&self) -> String {
        match self.backend {
            Backend::Sqlite => self.dump_sqlite().await,
            Backend::Postgres => self.dump_postgres().await,
        }
    }

    /// [`TestDatabase::dump`] without the change events, which record every change, also
    /// one undone by a later change: for a test that checks the data came back to where it
    /// was.
    pub async fn dump_of_data(&self) -> String {
        self.dump()
            .await
            .split_inclusive("\n## ")
            .filter(|section| {
                let table = section.trim_start_matches("## ").split('\n').next();
                !matches!(table, Some("events" | "event_horizons" | "sqlite_sequence"))
            })
            .collect()
    }

    async fn dump_sqlite(&self) -> String {
        let mut conn = sqlx::SqliteConnection::connect(&self.url)
            .await
            .expect("open");
        let tables: Vec<String> =
            // The text index of `q` and its shadow tables are an index, which a dump leaves
            // out like the others: their pages depend on the order of past writes.
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'contacts\\_search%' ESCAPE '\\' ORDER BY name",
            )
                .fetch_all(&mut conn)
                .await
                .expect("list tables");
        let mut dump = String::new();
        for table in tables {
            let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info({table})"))
                .fetch_all(&mut conn)
                .await
                .expect("table info")
                .iter()
                .map(|row| row.get::<String, _>("name"))
                .filter(|column| column != UNDUMPED_COLUMN)
                .collect();
            let row_text = columns
                .iter()
                .map(|column| format!("quote({column})"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT {row_text} FROM {table} ORDER BY 1"))
                    .fetch_all(&mut conn)
                    .await
                    .expect("read table");
            dump.push_str(&format!("## {table}\n{}\n", rows.join("\n")));
        }
        dump
    }

    async fn dump_postgres(&self) -> String {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("open");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("list tables");
        let mut dump = String::new();
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT (row_to_json(t)::jsonb - '{UNDUMPED_COLUMN}')::text FROM {table} t \
                 ORDER BY 1"
            ))
            .fetch_all(&mut conn)
            .await
            .expect("read table");
            dump.push_str(&format!("## {table}\n{}\n", rows.join("\n")));
        }
        dump
    }
}
