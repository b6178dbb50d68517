//! Configuration changes made by other processes: PostgreSQL `LISTEN/NOTIFY`, and a change
//! sequence that works on both engines.
//!
//! Every configuration write bumps the one-row `config_changes.seq` after it commits, and
//! on PostgreSQL also sends `NOTIFY cloudpbx_config` with the writing store's instance id
//! and what it changed (`crate::changes::encode_payload`), so other nodes patch their
//! directories as the writer's does instead of reloading them.
//! [`Store::watch_config_changes`] is what a running server starts: on SQLite it polls the
//! sequence (so `cloudpbx tenant|user|device ...` run against the same data directory
//! reaches the live directory within one interval); on PostgreSQL it runs
//! [`Store::listen_for_remote_changes`], a task on its own connection that turns
//! notifications from other instances into [`Store::notify_changed`]. When the listening
//! connection drops, notifications may have been missed, so a reconnect also counts as a
//! change.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{AnyPool, Row};
use tokio::task::JoinHandle;

use crate::changes::{ConfigChange, decode_payload, encode_payload};
use crate::error::StoreResult;
use crate::store::{Engine, Store};

/// The notification channel.
pub const CONFIG_CHANNEL: &str = "cloudpbx_config";

/// Sends the change notification for `changes` written through `store`.
pub(crate) async fn announce(store: &Store, changes: &[ConfigChange]) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CONFIG_CHANNEL)
        .bind(encode_payload(store.instance(), changes))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The configuration change sequence now.
pub(crate) async fn read_seq(pool: &AnyPool) -> StoreResult<i64> {
    let row = sqlx::query("SELECT seq FROM config_changes WHERE id = 1")
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64, _>("seq")?,
        None => 0,
    })
}

/// Bumps the sequence after a committed configuration write and remembers the new value as
/// seen (this store's own followers are told directly).
pub(crate) async fn bump_seq(store: &Store) -> StoreResult<()> {
    let row = sqlx::query("UPDATE config_changes SET seq = seq + 1 WHERE id = 1 RETURNING seq")
        .fetch_optional(store.pool())
        .await?;
    if let Some(row) = row {
        let seq = row.try_get::<i64, _>("seq")?;
        store.seen_seq.fetch_max(seq, Ordering::Relaxed);
    }
    Ok(())
}

impl Store {
    /// Starts watching for configuration changes made by other processes and returns the
    /// task (abort it to stop). SQLite: polls the change sequence every `interval` and calls
    /// [`Store::notify_changed`] when another process moved it. PostgreSQL:
    /// [`Store::listen_for_remote_changes`].
    pub async fn watch_config_changes(&self, interval: Duration) -> StoreResult<JoinHandle<()>> {
        if let Some(listener) = self.listen_for_remote_changes().await? {
            return Ok(listener);
        }
        let store = self.clone();
        Ok(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match read_seq(store.pool()).await {
                    Ok(seq) => {
                        let seen = store.seen_seq.fetch_max(seq, Ordering::Relaxed);
                        if seq > seen {
                            tracing::debug!(seq, "configuration changed by another process");
                            store.notify_changed();
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not read the configuration change sequence");
                    }
                }
            }
        }))
    }

    /// On PostgreSQL, starts listening for configuration changes made by other nodes and
    /// returns the listening task; on SQLite returns `None`. Abort the task to stop it.
    pub async fn listen_for_remote_changes(&self) -> StoreResult<Option<JoinHandle<()>>> {
        if self.engine() != Engine::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(self.url()).await?;
        listener.listen(CONFIG_CHANNEL).await?;
        let store = self.clone();
        Ok(Some(tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        let (instance, changes) = decode_payload(notification.payload());
                        if instance != store.instance() {
                            store.record(changes);
                        }
                    }
                    // The connection was lost and is re-established on the next call:
                    // anything sent meanwhile was missed, so reload.
                    Ok(None) => store.notify_changed(),
                    Err(error) => {
                        tracing::warn!(%error, "configuration listener failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })))
    }
}
