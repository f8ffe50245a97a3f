//! `contactd serve`: first-run bootstrap, the listener, and graceful shutdown (§8, §9).

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api_key;
use crate::config::ServeConfig;
use crate::http::{AppState, app};
use crate::store::{Store, StoreError};

/// The company the first run creates, so the README's first command gives a working API.
const DEFAULT_COMPANY: &str = "default";

/// Serves the API on `config.bind` until SIGTERM or SIGINT, then finishes in-flight
/// requests and returns.
pub async fn serve(store: Arc<dyn Store>, config: ServeConfig) -> anyhow::Result<()> {
    bootstrap(store.as_ref()).await?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("could not listen on {}", config.bind))?;
    tracing::info!(address = %listener.local_addr()?, "contactd is listening");
    let state = AppState {
        store,
        default_region: config.default_phone_region,
        body_limit: config.body_limit,
    };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("contactd stopped");
    Ok(())
}

/// On an empty database, creates the default company and one key for it, and prints the
/// key once to stderr: it is never shown again.
async fn bootstrap(store: &dyn Store) -> anyhow::Result<()> {
    if !store.list_companies().await?.is_empty() {
        return Ok(());
    }
    let company = match store.create_company(DEFAULT_COMPANY).await {
        Ok(company) => company,
        // Another process bootstrapped the same database first.
        Err(StoreError::DuplicateCompanyName) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let key = api_key::generate(Some("bootstrap".to_owned()));
    store.create_api_key(company.id, &key.record).await?;
    eprintln!(
        "contactd: first run: created company \"{DEFAULT_COMPANY}\" and an API key for it. \
         It is shown only this once, so keep it now:\n\n    {}\n",
        key.secret
    );
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "could not listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
