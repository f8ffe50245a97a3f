//! A SQLite database copied to a file, and put back from one
//! (docs/reference.md#backup-and-restore).
//!
//! A backup is `VACUUM INTO` a new file. SQLite's online backup API was the other way, and
//! is worse at it: it copies some pages per step and starts again from the first whenever
//! another connection writes between two steps, so under a server's steady writes it may
//! never finish; and copying every page in one step, which holds one snapshot as `VACUUM
//! INTO` does, keeps the source's free pages and its WAL flag, so the copy would want a
//! `-wal` and `-shm` beside it to be read. `VACUUM INTO` reads one snapshot in one
//! transaction, so it never starts again and never waits for the writer (WAL readers do
//! not), and writes a compact database in rollback-journal mode: one file, whole by itself.
//! It writes into a temporary file next to the target, which is checked, synced and only
//! then renamed to the target's name: a crash or a failure leaves no partial backup under
//! that name (at worst a `.contactd-backup-…` file beside it).
//!
//! A restore is the other way round, and there the online backup API is the tool: it
//! writes the backup's pages into the database file in place, in one write transaction, so
//! SQLite's own WAL makes the swap atomic. A crash leaves the old database or the restored
//! one, never a mix. Renaming a copy over the database file would not: a process that
//! opened the old file just before the rename would go on using the old file, whose name
//! is gone, beside a `-wal` whose name it shares with the new one; and a `-wal` left by a
//! crash would be replayed into the new database by whoever opened it next. Before anything
//! is written the database is locked exclusively (see `lock_exclusively`), which fails
//! while any other process has it open.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use sqlx::sqlite::SqliteConnectOptions;

use crate::store::schema;

/// What a backup wrote or a restore put in place.
#[derive(Debug)]
pub struct Copied {
    /// The file written: the backup, or the restored database.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The highest migration it holds.
    pub schema_version: i64,
}

/// Why a backup or a restore refused or failed; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database URL could not be read as a SQLite URL.
    #[error("the database URL is not a valid sqlite:// URL: {0}")]
    InvalidUrl(String),
    /// The database to back up does not exist.
    #[error("there is no database at {}: check --database-url", .0.display())]
    NoDatabase(PathBuf),
    /// The backup to restore does not exist.
    #[error("there is no file at {}: give --from the path of a backup", .0.display())]
    NoBackup(PathBuf),
    /// The backup's target exists and replacing it was not asked for.
    #[error("{} already exists: name a new file, or give --force to replace it", .0.display())]
    TargetExists(PathBuf),
    /// The file named is the database itself.
    #[error("{} is the database itself: name another file", .0.display())]
    SameFile(PathBuf),
    /// A file that SQLite cannot read as a database.
    #[error("{} is not a SQLite database", .0.display())]
    NotSqlite(PathBuf),
    /// A SQLite database that fails its integrity check.
    #[error(
        "{} is damaged, so nothing was written; SQLite's integrity check found: {report}",
        path.display()
    )]
    Damaged { path: PathBuf, report: String },
    /// A SQLite database that contactd never migrated.
    #[error(
        "{} is a SQLite database but not a contactd one: it has no _sqlx_migrations table",
        .0.display()
    )]
    NotContactd(PathBuf),
    /// A backup holding a migration this binary does not know.
    #[error(
        "the schema of {} is at version {backup} or later, but this contactd knows versions \
         up to {binary} only: the backup was taken from a database a newer contactd had \
         upgraded. Restore it with that newer contactd, or restore a backup taken before \
         the upgrade",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        backup: i64,
        binary: i64,
    },
    /// Another process has the file open (the database) or locked (the backup).
    #[error(
        "{} is in use by another process (a running contactd serve, an admin command or \
         an sqlite3 shell): stop it, then run the restore again; nothing was changed",
        .0.display()
    )]
    InUse(PathBuf),
    /// The database to restore into cannot be read.
    #[error(
        "the database at {} cannot be read ({reason}), so it is not replaced in place: move \
         it aside with its -wal and -shm files, then run the restore again",
        path.display()
    )]
    TargetUnreadable { path: PathBuf, reason: String },
    /// The backup's page size differs from the database's, which WAL mode cannot change.
    #[error(
        "the backup's pages are {backup} bytes and those of the database at {} are \
         {database}, which a restore in place cannot change: restore into a new path and \
         point --database-url at it",
        path.display()
    )]
    PageSize {
        path: PathBuf,
        backup: u32,
        database: u32,
    },
    /// The disk the file is written to is full.
    #[error(
        "there is no room left to write {}: free some space, then run the command again; \
         nothing was changed",
        .0.display()
    )]
    DiskFull(PathBuf),
    /// A file operation failed. (The error is shown in this message rather than chained
    /// as a source, so that it is shown once.)
    #[error("could not {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// SQLite failed on a file.
    #[error("{}: {error}", path.display())]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
}

/// The file a `sqlite://PATH` URL names, read as the server reads it.
pub fn database_path(database_url: &str) -> Result<PathBuf, BackupError> {
    let options = SqliteConnectOptions::from_str(database_url)
        .map_err(|error| BackupError::InvalidUrl(error.to_string()))?;
    Ok(options.get_filename().to_path_buf())
}

/// Copies the database at `database` to a new file at `to` (replacing one there only when
/// `replace`), while other processes read and write it. It is never migrated: a backup
/// copies the schema as it is, whichever contactd made it.
pub fn backup(database: &Path, to: &Path, replace: bool) -> Result<Copied, BackupError> {
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_owned()));
    }
    // Checked first so that a refusal does not wait for the copy; the rename below refuses
    // an existing file again, should one appear meanwhile.
    if to.exists() {
        if !replace {
            return Err(BackupError::TargetExists(to.to_owned()));
        }
        if is_same_file(to, database) {
            return Err(BackupError::SameFile(to.to_owned()));
        }
    }
    let directory = directory_of(to);
    let copy = tempfile::Builder::new()
        .prefix(".contactd-backup-")
        .tempfile_in(directory)
        .map_err(io_error("create a file in", directory))?;
    let copy_path = copy.path().to_str().ok_or_else(|| BackupError::Io {
        action: "write to",
        path: copy.path().to_owned(),
        error: std::io::Error::other("SQLite names files in UTF-8 only"),
    })?;
    let source = open_existing(database)?;
    source
        .execute("VACUUM INTO ?1", [copy_path])
        .map_err(|error| match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => BackupError::DiskFull(to.to_owned()),
            _ => sqlite_error(database)(error),
        })?;
    drop(source);
    // The copy is checked before it gets its name, so that every backup written restores;
    // a damaged source fails here, in the source's name.
    let applied = inspect(&open_existing(copy.path())?, database, Check::Quick)?;
    copy.as_file()
        .sync_all()
        .map_err(io_error("sync", copy.path()))?;
    let persisted = if replace {
        copy.persist(to)
    } else {
        copy.persist_noclobber(to)
    };
    persisted.map_err(|error| match error.error.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::TargetExists(to.to_owned()),
        _ => BackupError::Io {
            action: "rename the backup to",
            path: to.to_owned(),
            error: error.error,
        },
    })?;
    sync_directory(directory)?;
    copied(to, &applied)
}

/// Puts the backup at `from` in place of the database at `database` (created if missing),
/// after checking it is a whole contactd database this binary can run. Refused while any
/// other process has the database open; the database is left as it was on any refusal or
/// failure.
pub fn restore(database: &Path, from: &Path) -> Result<Copied, BackupError> {
    if !from.is_file() {
        return Err(BackupError::NoBackup(from.to_owned()));
    }
    if is_same_file(from, database) {
        return Err(BackupError::SameFile(from.to_owned()));
    }
    let backup = open_existing(from)?;
    let applied = inspect(&backup, from, Check::Full)?;
    if let Some(version) = schema::unknown_migration(&applied) {
        return Err(BackupError::SchemaTooNew {
            path: from.to_owned(),
            backup: version,
            binary: schema::version(),
        });
    }
    let existed = database.exists();
    let restored = write_into(database, &backup, from);
    let left_empty = std::fs::metadata(database).is_ok_and(|file| file.len() == 0);
    if restored.is_err() && !existed && left_empty {
        // Where there was no database, a failure leaves none, rather than an empty file
        // that a server would take for a new database.
        let _ = std::fs::remove_file(database);
    }
    restored?;
    // The database file may be new: its name must be on disk too.
    sync_directory(directory_of(database))?;
    copied(database, &applied)
}

/// Writes every page of `backup` (the file at `from`) into the database at `database`,
/// under an exclusive lock.
fn write_into(database: &Path, backup: &Connection, from: &Path) -> Result<(), BackupError> {
    let page_size: u32 = backup
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(sqlite_error(from))?;
    let mut target = lock_exclusively(database, page_size)?;
    // Every page in one step: one write transaction, committed whole or not at all.
    let step = Backup::new(backup, &mut target)
        .and_then(|restore| restore.step(-1))
        .map_err(sqlite_error(database))?;
    // Not done in one step means the backup file is locked: another process writes to it.
    if step != StepResult::Done {
        return Err(BackupError::InUse(from.to_owned()));
    }
    // Closing copies the WAL into the database file and removes it.
    target
        .close()
        .map_err(|(_, error)| sqlite_error(database)(error))
}

/// Opens the database at `database` (creating it if missing) for a restore, holding an
/// exclusive lock on it for as long as the connection is open, and checks it may be
/// replaced: empty, or a contactd database whose pages are `page_size` bytes.
///
/// In WAL mode every connection holds a shared lock on the database file for as long as it
/// is open, idle or not, and a running contactd always has connections open. A connection
/// in exclusive locking mode takes an exclusive lock at its first read of a WAL database
/// (and keeps its WAL index in its own memory instead of the `-shm` file), which SQLite
/// refuses as busy while any other connection of any process has the file open: that
/// refusal is the test that the database is not in use. Once the lock is held, a process
/// that opens the database waits on it (as long as its busy timeout lets it), then reads
/// the restored database.
fn lock_exclusively(database: &Path, page_size: u32) -> Result<Connection, BackupError> {
    let conn = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .map_err(sqlite_error(database))?;
    // A database in use is reported at once: waiting would only let its user go on.
    conn.busy_timeout(std::time::Duration::ZERO)
        .map_err(sqlite_error(database))?;
    let unreadable = |error: rusqlite::Error| match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            BackupError::InUse(database.to_owned())
        }
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            BackupError::TargetUnreadable {
                path: database.to_owned(),
                reason: error.to_string(),
            }
        }
        _ => sqlite_error(database)(error),
    };
    // A new database takes the backup's page size; an existing one keeps its own.
    conn.execute_batch(&format!(
        "PRAGMA locking_mode = EXCLUSIVE; PRAGMA page_size = {page_size}; \
         PRAGMA synchronous = FULL;"
    ))
    .map_err(unreadable)?;
    // The first read: the exclusive lock, or busy. WAL mode is what every contactd
    // database is in; a database in another mode (a new one) is switched first.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(unreadable)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .map_err(unreadable)?;
    if tables > 0 && !has_migrations(&conn).map_err(unreadable)? {
        return Err(BackupError::NotContactd(database.to_owned()));
    }
    let database_page_size: u32 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(unreadable)?;
    if database_page_size != page_size {
        return Err(BackupError::PageSize {
            path: database.to_owned(),
            backup: page_size,
            database: database_page_size,
        });
    }
    Ok(conn)
}

/// How thoroughly [`inspect`] checks a database.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// `PRAGMA quick_check`: every page and row is well formed. For a copy SQLite has just
    /// written, whose indexes it built from the rows: 1 s for a million contacts.
    Quick,
    /// `PRAGMA integrity_check`: also that every index holds exactly its table's rows. For
    /// a backup that may have lain anywhere since it was written: 12 s for a million
    /// contacts.
    Full,
}

/// Checks a database is a whole contactd database and returns the migrations it holds.
/// Errors name `name`, the file the person asked for.
fn inspect(conn: &Connection, name: &Path, check: Check) -> Result<Vec<i64>, BackupError> {
    // The first five problems found are enough to say what is wrong.
    let pragma = match check {
        Check::Quick => "PRAGMA quick_check(5)",
        Check::Full => "PRAGMA integrity_check(5)",
    };
    let report = conn
        .prepare(pragma)
        .and_then(|mut check| {
            check
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sqlite_error(name))?;
    if report != ["ok"] {
        // One line per problem, without the line naming the schema ("main").
        let problems: Vec<&str> = report
            .iter()
            .flat_map(|row| row.lines())
            .filter(|line| !line.starts_with("***"))
            .collect();
        return Err(BackupError::Damaged {
            path: name.to_owned(),
            report: problems.join("; "),
        });
    }
    if !has_migrations(conn).map_err(sqlite_error(name))? {
        return Err(BackupError::NotContactd(name.to_owned()));
    }
    conn.prepare("SELECT version FROM _sqlx_migrations ORDER BY version")
        .and_then(|mut versions| {
            versions
                .query_map([], |row| row.get(0))?
                .collect::<Result<Vec<i64>, _>>()
        })
        .map_err(sqlite_error(name))
}

/// Whether the database has the table sqlx records its migrations in.
fn has_migrations(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
         AND name = '_sqlx_migrations')",
        [],
        |row| row.get(0),
    )
}

/// Opens an existing database (never creating one) to read it. Nothing is written through
/// it; it is opened read-write (or read-only, where the file is) only because a read-only
/// connection that finds no `-wal` and `-shm` beside a WAL database makes them and cannot
/// remove them, where the last read-write connection to close does.
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sqlite_error(path))
}

/// What was written at `path`, holding the migrations `applied`.
fn copied(path: &Path, applied: &[i64]) -> Result<Copied, BackupError> {
    let bytes = std::fs::metadata(path)
        .map_err(io_error("read the size of", path))?
        .len();
    Ok(Copied {
        path: path.to_owned(),
        bytes,
        schema_version: applied.iter().copied().max().unwrap_or(0),
    })
}

/// The directory a file is in.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Syncs a directory, so that the names of the files just made or renamed in it are on
/// disk.
fn sync_directory(directory: &Path) -> Result<(), BackupError> {
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error("sync the directory", directory))
}

/// Whether two paths name one file (the same one, or hard links of it).
fn is_same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// SQLite's error on the file at `path`, sorted into what a person acts on.
fn sqlite_error(path: &Path) -> impl FnOnce(rusqlite::Error) -> BackupError + '_ {
    move |error| match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => BackupError::NotSqlite(path.to_owned()),
        Some(ErrorCode::DatabaseCorrupt) => BackupError::Damaged {
            path: path.to_owned(),
            report: error.to_string(),
        },
        Some(ErrorCode::DiskFull) => BackupError::DiskFull(path.to_owned()),
        _ => BackupError::Sqlite {
            path: path.to_owned(),
            error,
        },
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |error| BackupError::Io {
        action,
        path,
        error,
    }
}
