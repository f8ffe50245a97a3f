//! The `contactd` command line (docs/reference.md#9-command-line): the server and the admin commands.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use contactd_api::{CustomField, FieldType, Scope};
use uuid::Uuid;

use crate::config::{DatabaseConfig, LogFormat, ServeConfig};
use crate::custom_fields::{self, NewFieldInput};
use crate::directory::Directory;
use crate::domain::{DefaultRegion, Email, FieldKey};
use crate::failure::{Failure, Field};
use crate::password::Password;
use crate::store::{
    self, Actor, Company, Database, PostgresBackend, PostgresSettings, RateLimit, SqliteBackend,
    Store, StoreError, backup,
};
use crate::transfer::{self, ExportArgs, ImportArgs};
use crate::{api_key, server};

/// A self-hostable server for the Alpharun Contacts API.
#[derive(Debug, Parser)]
#[command(name = "contactd", version)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Format of the log lines written to stderr.
    #[arg(
        long,
        env = "CONTACTD_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Database(DatabaseCommand),
    /// Copy the SQLite database to a new file, while servers run and write on it.
    Backup(BackupArgs),
    /// Put a backup in place of the SQLite database; refused while any process uses it.
    Restore(RestoreArgs),
    /// Import contacts from a CSV or NDJSON file into a running server.
    Import(ImportArgs),
    /// Export every contact of a company from a running server, as CSV or NDJSON.
    Export(ExportArgs),
}

/// The commands that open the database themselves.
#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Run migrations, then serve the API until SIGTERM or SIGINT.
    Serve(ServeConfig),
    /// Run migrations and exit.
    Migrate,
    /// Manage companies (tenants).
    #[command(subcommand)]
    Company(CompanyCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage custom field definitions.
    #[command(subcommand)]
    Field(FieldCommand),
    /// Manage dashboard users.
    #[command(subcommand)]
    User(UserCommand),
}

/// `contactd backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write the backup to; it must not exist, unless `--force`.
    #[arg(long, env = "CONTACTD_TO", value_name = "FILE")]
    pub to: PathBuf,
    /// Replace the file if it exists.
    #[arg(long, env = "CONTACTD_FORCE", value_parser = BoolishValueParser::new())]
    pub force: bool,
}

/// `contactd restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to put in place of the database, as `contactd backup` wrote it.
    #[arg(long, env = "CONTACTD_FROM", value_name = "FILE")]
    pub from: PathBuf,
}

/// `contactd company …`
#[derive(Debug, Subcommand)]
pub enum CompanyCommand {
    /// Create a company and print its id.
    Create {
        /// The company's unique name.
        name: String,
    },
    /// Print one line per company: id, name.
    List,
}

/// `contactd key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it; it is shown this once and never again.
    Create {
        /// The company the key acts for, by id or name.
        #[arg(long, env = "CONTACTD_COMPANY")]
        company: String,
        /// A label to tell the key apart in listings.
        #[arg(long, env = "CONTACTD_NAME")]
        name: Option<String>,
        /// What the key may do; repeat it, or separate scopes with commas. Without it the
        /// key has every scope: contacts:read, contacts:write, contacts:export,
        /// fields:write, events:read, webhooks:manage.
        #[arg(
            long = "scope",
            env = "CONTACTD_SCOPES",
            value_name = "SCOPE",
            value_delimiter = ',',
            value_parser = parse_scope
        )]
        scopes: Vec<Scope>,
        /// The key's own rate limit, in requests a second, in place of the server's
        /// `--rate-limit` (docs/reference.md#rate-limits).
        #[arg(long, env = "CONTACTD_KEY_RATE_LIMIT", value_parser = clap::value_parser!(u32).range(1..))]
        rate_limit: Option<u32>,
        /// The key's own burst, with `--rate-limit`; twice the rate when not given.
        #[arg(long, env = "CONTACTD_KEY_RATE_BURST", requires = "rate_limit", value_parser = clap::value_parser!(u32).range(1..))]
        rate_burst: Option<u32>,
    },
    /// Print one line per key: id, prefix, name, created, last used, state, scopes, and
    /// its own rate limit (`-` for the server's).
    List {
        /// The company whose keys to list, by id or name.
        #[arg(long, env = "CONTACTD_COMPANY")]
        company: String,
    },
    /// Revoke a key; requests with it are refused from then on.
    Revoke {
        /// The key's id, as `key list` prints it.
        key_id: Uuid,
    },
}

/// `contactd field …`
#[derive(Debug, Subcommand)]
pub enum FieldCommand {
    /// Create a custom field definition and print it as JSON.
    Create {
        /// The company, by id or name.
        #[arg(long, env = "CONTACTD_COMPANY")]
        company: String,
        /// Machine name: a lower-case letter, then up to 62 of a-z, 0-9 and _.
        #[arg(long, env = "CONTACTD_FIELD_KEY")]
        key: String,
        /// One of text, number, boolean, date, select.
        #[arg(long = "type", env = "CONTACTD_TYPE", value_parser = parse_field_type)]
        field_type: FieldType,
        /// Name shown to people, 1 to 100 characters.
        #[arg(long, env = "CONTACTD_DISPLAY_NAME")]
        display_name: String,
        /// An option of a select field; repeat for each option.
        #[arg(long = "option", env = "CONTACTD_OPTION", value_delimiter = ',')]
        options: Vec<String>,
    },
    /// Print each definition of a company as one line of JSON, ordered by key.
    List {
        /// The company, by id or name.
        #[arg(long, env = "CONTACTD_COMPANY")]
        company: String,
    },
    /// Delete a definition and every value of it.
    Delete {
        /// The company, by id or name.
        #[arg(long, env = "CONTACTD_COMPANY")]
        company: String,
        /// The field's key.
        #[arg(long, env = "CONTACTD_FIELD_KEY")]
        key: String,
    },
}

/// `contactd user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user and print its id. The password is read from stdin: its
    /// first line, or typed at a hidden prompt on a terminal.
    Create {
        /// The company the user acts for, by id or name.
        #[arg(long, env = "CONTACTD_COMPANY")]
        company: String,
        /// The email the user logs in with; unique across companies.
        #[arg(long, env = "CONTACTD_EMAIL")]
        email: String,
    },
    /// Print one line per user of a company: id, email, created.
    List {
        /// The company, by id or name.
        #[arg(long, env = "CONTACTD_COMPANY")]
        company: String,
    },
    /// Give a user a new password, read from stdin as by `create`; it also ends every
    /// session of the user and clears their failed logins.
    SetPassword {
        /// The user's email.
        #[arg(long, env = "CONTACTD_EMAIL")]
        email: String,
    },
    /// Delete a user; their sessions end at once.
    Delete {
        /// The user's email.
        #[arg(long, env = "CONTACTD_EMAIL")]
        email: String,
    },
}

fn parse_field_type(name: &str) -> Result<FieldType, String> {
    FieldType::from_name(name)
        .ok_or_else(|| "expected one of text, number, boolean, date, select".to_owned())
}

/// Runs a parsed command line.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Database(command) => execute_on_database(&cli.database, command).await,
        // These copy the SQLite file and never migrate it.
        Command::Backup(args) => back_up(&cli.database, args).await,
        Command::Restore(args) => restore(&cli.database, args).await,
        // These talk to a server over HTTP, never to a database.
        Command::Import(args) => transfer::import(args).await,
        Command::Export(args) => transfer::export(args).await,
    }
}

async fn execute_on_database(
    database: &DatabaseConfig,
    command: DatabaseCommand,
) -> anyhow::Result<()> {
    if matches!(command, DatabaseCommand::Migrate) && database.database_pgbouncer {
        bail!(
            "migrations need a direct connection: run `contactd migrate` against PostgreSQL \
             itself, without --database-pgbouncer"
        );
    }
    if let DatabaseCommand::Serve(config) = &command {
        config.check()?;
    }
    let database_url = database.url()?;
    if let DatabaseCommand::Serve(config) = &command
        && backend_of(&database_url)? == BackendKind::Postgres
        && config.max_exports >= database.database_max_connections as usize
    {
        bail!(
            "--max-exports ({}) must be below --database-max-connections ({}): each export \
             holds a connection for as long as it runs, and other requests need one too",
            config.max_exports,
            database.database_max_connections
        );
    }
    let store = open_store(&database_url, &database.postgres())
        .await
        .context("could not open the database")?;
    match command {
        DatabaseCommand::Serve(config) => server::serve(store, config).await,
        DatabaseCommand::Migrate => Ok(()),
        DatabaseCommand::Company(command) => manage_companies(store.as_ref(), command).await,
        DatabaseCommand::Key(command) => manage_keys(store.as_ref(), command).await,
        // No phone number is read by a field command: the region is never used.
        DatabaseCommand::Field(command) => {
            manage_fields(&Directory::new(store, DefaultRegion::default()), command).await
        }
        DatabaseCommand::User(command) => manage_users(store.as_ref(), command).await,
    }
}

/// The backends a database URL's scheme picks from.
#[derive(Debug, PartialEq, Eq)]
enum BackendKind {
    Sqlite,
    Postgres,
}

/// The backend a database URL's scheme picks.
fn backend_of(database_url: &str) -> anyhow::Result<BackendKind> {
    if database_url.starts_with("sqlite:") {
        Ok(BackendKind::Sqlite)
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Ok(BackendKind::Postgres)
    } else {
        bail!("the database URL must start with sqlite:// or postgres://")
    }
}

/// Opens the database a URL names (`sqlite://PATH`, created if missing, or
/// `postgres://…`) on the backend its scheme picks, applies its migrations, then the
/// start-up data checks.
pub async fn open_store(
    database_url: &str,
    postgres: &PostgresSettings,
) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match backend_of(database_url)? {
        BackendKind::Sqlite => Arc::new(Database::new(SqliteBackend::open(database_url).await?)),
        BackendKind::Postgres => Arc::new(Database::new(
            PostgresBackend::connect(database_url, postgres).await?,
        )),
    };
    store::check_stored_data(store.as_ref()).await?;
    Ok(store)
}

/// `contactd backup` (docs/reference.md#backup-and-restore). The database is not
/// migrated: a backup taken before an upgrade, with the new binary already installed, must
/// copy the schema the running server uses, not move it forward under that server.
async fn back_up(database: &DatabaseConfig, args: BackupArgs) -> anyhow::Result<()> {
    let database_url = database.url()?;
    if backend_of(&database_url)? == BackendKind::Postgres {
        bail!(
            "this is a PostgreSQL database: back it up with pg_dump, which takes a consistent \
             snapshot while servers write:\n\n    {}",
            postgres_command(
                &[
                    "pg_dump",
                    "--format",
                    "custom",
                    "--file",
                    &args.to.to_string_lossy()
                ],
                &database_url,
                &[]
            )?
        );
    }
    let path = backup::database_path(&database_url)?;
    let copied =
        tokio::task::spawn_blocking(move || backup::backup(&path, &args.to, args.force)).await??;
    eprintln!(
        "backed up {database_url} to {}: {}, schema version {}",
        copied.path.display(),
        indicatif::HumanBytes(copied.bytes),
        copied.schema_version
    );
    Ok(())
}

/// `contactd restore` (docs/reference.md#backup-and-restore).
async fn restore(database: &DatabaseConfig, args: RestoreArgs) -> anyhow::Result<()> {
    let database_url = database.url()?;
    if backend_of(&database_url)? == BackendKind::Postgres {
        bail!(
            "this is a PostgreSQL database: stop every server on it, then restore the pg_dump \
             file with pg_restore:\n\n    {}",
            postgres_command(
                &[
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    "--dbname"
                ],
                &database_url,
                &[&args.from.to_string_lossy()]
            )?
        );
    }
    let path = backup::database_path(&database_url)?;
    let from = args.from.clone();
    let copied = tokio::task::spawn_blocking(move || backup::restore(&path, &from)).await??;
    let known = store::schema_version();
    let migration = if copied.schema_version < known {
        format!("; contactd migrates it to version {known} when it next opens it")
    } else {
        String::new()
    };
    eprintln!(
        "restored {} into {database_url}: {}, schema version {}{migration}",
        args.from.display(),
        indicatif::HumanBytes(copied.bytes),
        copied.schema_version
    );
    Ok(())
}

/// A command line of a PostgreSQL tool, quoted for a shell: `before`, the database URL,
/// `after`. The URL's password is left out, since the line is printed and may end up in a
/// log, with a word on where the tools read it from instead.
fn postgres_command(before: &[&str], database_url: &str, after: &[&str]) -> anyhow::Result<String> {
    let mut url = url::Url::parse(database_url).context("the database URL is not a valid URL")?;
    let query: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "password")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let had_password = url.password().is_some() || query.len() < url.query_pairs().count();
    // This fails only for a URL without a host, which has no password to leave out.
    let _ = url.set_password(None);
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let line = shlex::try_join(before.iter().chain(&[url.as_str()]).chain(after).copied())?;
    Ok(if had_password {
        format!(
            "{line}\n\nThe password is left out here: pg_dump and pg_restore read it from \
             PGPASSWORD or ~/.pgpass."
        )
    } else {
        line
    })
}

async fn manage_companies(store: &dyn Store, command: CompanyCommand) -> anyhow::Result<()> {
    match command {
        CompanyCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("a company name cannot be empty");
            }
            println!("{}", store.create_company(name).await?.id);
        }
        CompanyCommand::List => {
            for company in store.list_companies().await? {
                println!("{}\t{}", company.id, company.name);
            }
        }
    }
    Ok(())
}

/// Reads a `--scope` value.
fn parse_scope(name: &str) -> Result<Scope, String> {
    Scope::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
        format!(
            "no scope is named {name:?}; the scopes are {}",
            known.join(", ")
        )
    })
}

async fn manage_keys(store: &dyn Store, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create {
            company,
            name,
            mut scopes,
            rate_limit,
            rate_burst,
        } => {
            let company = find_company(store, &company).await?;
            if scopes.is_empty() {
                scopes = Scope::ALL.to_vec();
            }
            scopes.sort_unstable();
            scopes.dedup();
            let mut key = api_key::generate(name, &scopes);
            key.record.rate_limit = rate_limit.map(|per_second| RateLimit {
                per_second,
                burst: rate_burst.unwrap_or(per_second.saturating_mul(2)),
            });
            store.create_api_key(company.id, &key.record).await?;
            println!("{}", key.secret);
        }
        KeyCommand::List { company } => {
            let company = find_company(store, &company).await?;
            for key in store.list_api_keys(company.id).await? {
                let last_used = key.last_used_at.map_or_else(
                    || "never".to_owned(),
                    |at| contactd_api::format_timestamp(&at),
                );
                let state = key.revoked_at.map_or_else(
                    || "active".to_owned(),
                    |at| format!("revoked {}", contactd_api::format_timestamp(&at)),
                );
                let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
                let rate = key.rate_limit.map_or_else(
                    || "-".to_owned(),
                    |limit| format!("{}/s burst {}", limit.per_second, limit.burst),
                );
                println!(
                    "{}\t{}…\t{}\tcreated {}\tlast used {}\t{}\t{}\t{}",
                    key.id,
                    key.prefix,
                    key.name.as_deref().unwrap_or("-"),
                    contactd_api::format_timestamp(&key.created_at),
                    last_used,
                    state,
                    scopes.join(","),
                    rate
                );
            }
        }
        KeyCommand::Revoke { key_id } => {
            match store.revoke_api_key(key_id).await {
                Err(StoreError::NotFound) => bail!("no API key with id {key_id}"),
                other => other?,
            };
        }
    }
    Ok(())
}

async fn manage_fields(directory: &Directory, command: FieldCommand) -> anyhow::Result<()> {
    let store = directory.store.as_ref();
    match command {
        FieldCommand::Create {
            company,
            key,
            field_type,
            display_name,
            options,
        } => {
            let company = find_company(store, &company).await?;
            let input = NewFieldInput {
                key,
                display_name,
                field_type,
                options: (!options.is_empty()).then_some(options),
            };
            let created = custom_fields::create(
                directory,
                company.id,
                &Actor::Cli("field create".to_owned()),
                input,
            )
            .await
            .map_err(cli_error)?;
            println!("{}", serde_json::to_string(&CustomField::from(created))?);
        }
        FieldCommand::List { company } => {
            let company = find_company(store, &company).await?;
            for field in custom_fields::list(directory, company.id).await? {
                println!("{}", serde_json::to_string(&CustomField::from(field))?);
            }
        }
        FieldCommand::Delete { company, key } => {
            let company = find_company(store, &company).await?;
            let key = FieldKey::parse(&key)?;
            match custom_fields::delete(
                directory,
                company.id,
                &Actor::Cli("field delete".to_owned()),
                &key,
            )
            .await
            {
                Err(Failure::NotFound { .. }) => {
                    bail!("company {} has no custom field `{key}`", company.name)
                }
                other => other?,
            }
        }
    }
    Ok(())
}

async fn manage_users(store: &dyn Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { company, email } => {
            let company = find_company(store, &company).await?;
            let email = Email::parse(&email).context("--email")?;
            let hash = new_password_hash(&email).await?;
            let user = store.create_user(company.id, &email, &hash).await?;
            println!("{}", user.id);
        }
        UserCommand::List { company } => {
            let company = find_company(store, &company).await?;
            for user in store.list_users(company.id).await? {
                println!(
                    "{}\t{}\tcreated {}",
                    user.id,
                    user.email,
                    contactd_api::format_timestamp(&user.created_at)
                );
            }
        }
        UserCommand::SetPassword { email } => {
            let email = Email::parse(&email).context("--email")?;
            if store.user_credentials(&email).await?.is_none() {
                bail!("no user with email {}", email.as_str());
            }
            let hash = new_password_hash(&email).await?;
            match store.set_password(&email, &hash).await {
                Err(StoreError::NotFound) => bail!("no user with email {}", email.as_str()),
                other => other?,
            }
        }
        UserCommand::Delete { email } => {
            let email = Email::parse(&email).context("--email")?;
            match store.delete_user(&email).await {
                Err(StoreError::NotFound) => bail!("no user with email {}", email.as_str()),
                other => other?,
            }
        }
    }
    Ok(())
}

/// Reads a new password for `email` (see [`read_password`]) and hashes it.
async fn new_password_hash(email: &Email) -> anyhow::Result<String> {
    let password = Password::parse(&read_password(email)?)?;
    Ok(tokio::task::spawn_blocking(move || password.hash()).await?)
}

/// Reads a new user's password: at a hidden prompt, twice, on a terminal; otherwise the
/// first line of stdin, without its line ending.
fn read_password(email: &Email) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let password = rpassword::prompt_password(format!("Password for {}: ", email.as_str()))?;
        if rpassword::prompt_password("The same again: ")? != password {
            bail!("the two passwords differ");
        }
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("could not read the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
}

async fn find_company(store: &dyn Store, id_or_name: &str) -> anyhow::Result<Company> {
    store
        .find_company(id_or_name)
        .await?
        .ok_or_else(|| anyhow!("no company with id or name {id_or_name:?}"))
}

/// A refusal as a command-line error: the flag at fault, then the sentence.
fn cli_error(failure: Failure) -> anyhow::Error {
    match &failure {
        Failure::Invalid {
            field: Some(field),
            message,
            ..
        } => match flag_of(field) {
            Some(flag) => anyhow!("{flag}: {message}"),
            None => anyhow!("{message}"),
        },
        _ => failure.into(),
    }
}

/// The flag of `field create` that gave a part of its input.
fn flag_of(field: &Field) -> Option<&'static str> {
    match field {
        Field::Key => Some("--key"),
        Field::DisplayName => Some("--display-name"),
        Field::FieldType => Some("--type"),
        Field::Options => Some("--option"),
        _ => None,
    }
}
