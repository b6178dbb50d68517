//! Configuration changes across a cluster: PostgreSQL `LISTEN/NOTIFY`.
//!
//! Every configuration write on a PostgreSQL store sends `NOTIFY cloudpbx_config` with the
//! writing store's instance id. [`Store::listen_for_remote_changes`] runs a task on its own
//! connection that turns notifications from other instances (other nodes) into
//! [`Store::notify_changed`], so their [`crate::Directory`] reloads. When the listening
//! connection drops, notifications may have been missed, so a reconnect also counts as a
//! change. SQLite is single-node and has nothing to listen to.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::error::StoreResult;
use crate::store::{Engine, Store};

/// The notification channel.
pub const CONFIG_CHANNEL: &str = "cloudpbx_config";

/// Sends the change notification for `store`.
pub(crate) async fn announce(store: &Store) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CONFIG_CHANNEL)
        .bind(store.instance().to_owned())
        .execute(store.pool())
        .await?;
    Ok(())
}

impl Store {
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
                        if notification.payload() != store.instance() {
                            store.notify_changed();
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
