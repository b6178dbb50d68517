//! The live in-memory directory: the hot path's view of the configuration, kept in sync
//! with the store without restarts.
//!
//! [`Directory::load`] reads every tenant, user, device, credential, whitelist entry and
//! assigned number into an immutable [`DirectorySnapshot`]. Readers call
//! [`Directory::snapshot`] and get an `Arc` they may hold as long as they like; a reload
//! builds a new snapshot and swaps the pointer, so lookups never wait for the database.
//!
//! Every configuration write through the [`Store`] bumps its change counter.
//! [`Directory::follow`] runs a task that reloads after each change (several changes in a
//! burst cause one reload). A PostgreSQL `LISTEN/NOTIFY` listener for changes made on other
//! nodes only has to call [`Store::notify_changed`]. Callers that need read-your-writes (the
//! API after a change) await [`Directory::caught_up`].

use std::sync::{Arc, PoisonError, RwLock};

use pbx_domain::{DirectoryParts, DirectorySnapshot};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::StoreResult;
use crate::store::Store;

/// The live directory.
#[derive(Debug)]
pub struct Directory {
    current: RwLock<Arc<DirectorySnapshot>>,
    loaded: watch::Sender<u64>,
}

impl Directory {
    /// Loads the first snapshot.
    pub async fn load(store: &Store) -> StoreResult<Arc<Self>> {
        let snapshot = read_snapshot(store).await?;
        let (loaded, _) = watch::channel(snapshot.generation());
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(snapshot)),
            loaded,
        }))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<DirectorySnapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reloads now, and returns the store generation the new snapshot reflects.
    pub async fn refresh(&self, store: &Store) -> StoreResult<u64> {
        let snapshot = read_snapshot(store).await?;
        let generation = snapshot.generation();
        {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            // A slower, older reload never replaces a newer snapshot.
            if current.generation() <= generation {
                *current = Arc::new(snapshot);
            }
        }
        self.loaded.send_if_modified(|loaded| {
            let newer = generation > *loaded;
            if newer {
                *loaded = generation;
            }
            newer
        });
        Ok(generation)
    }

    /// Waits until the directory reflects store generation `generation` (from
    /// [`Store::generation`] after a write). Needs a running [`Directory::follow`] task or
    /// someone calling [`Directory::refresh`].
    pub async fn caught_up(&self, generation: u64) {
        let mut loaded = self.loaded.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = loaded.wait_for(|loaded| *loaded >= generation).await;
    }

    /// Spawns a task that reloads after every store change until the store's change
    /// channel closes or the task is aborted. A failed reload is logged and retried on the
    /// next change (or after one second).
    pub fn follow(self: &Arc<Self>, store: Store) -> JoinHandle<()> {
        let directory = Arc::clone(self);
        let mut changes = store.subscribe();
        tokio::spawn(async move {
            loop {
                let wanted = *changes.borrow_and_update();
                if directory.snapshot().generation() < wanted
                    && let Err(error) = directory.refresh(&store).await
                {
                    tracing::warn!(%error, "directory reload failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

/// Reads every row the snapshot needs. The generation is read first, so a change that
/// lands during the read leaves the snapshot marked older and triggers another reload.
async fn read_snapshot(store: &Store) -> StoreResult<DirectorySnapshot> {
    let generation = store.generation();
    let parts = DirectoryParts {
        tenants: store.tenants().load_all().await?,
        users: store.users().load_all().await?,
        devices: store.devices().load_all().await?,
        credentials: store.credentials().load_all().await?,
        whitelist: store.whitelist().load_all().await?,
        numbers: store.numbers().load_assigned().await?,
    };
    let snapshot = DirectorySnapshot::build(generation, parts);
    let (tenants, users, credentials) = snapshot.counts();
    tracing::debug!(generation, tenants, users, credentials, "directory loaded");
    Ok(snapshot)
}
