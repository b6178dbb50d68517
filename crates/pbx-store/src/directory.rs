//! The live in-memory directory: the hot path's view of the configuration, kept in sync
//! with the store without restarts.
//!
//! [`Directory::load`] reads every tenant, user, device, credential, whitelist entry and
//! assigned number into an immutable [`DirectorySnapshot`]. Readers call
//! [`Directory::snapshot`] and get an `Arc` they may hold as long as they like; a refresh
//! makes a new snapshot and swaps the pointer, so lookups never wait for the database.
//!
//! Every configuration write through the [`Store`] bumps its generation and records what
//! it changed ([`ConfigChange`]). [`Directory::refresh`] brings the snapshot up to the
//! store's generation by re-reading only the rows of what changed (one user with its
//! devices, credentials and whitelist; one tenant; one number) and patching a clone of the
//! current snapshot, whose maps are copy-on-write: a write costs the same whether the
//! platform has ten users or a million (a full reload per write made provisioning N
//! devices one by one cost O(N²)). A change whose content is unknown (made by another
//! process on the same SQLite file), a follower that fell further behind than the store's
//! change log, or a burst larger than [`INCREMENTAL_LIMIT`] changes falls back to a full
//! reload.
//!
//! Refreshes run one at a time, so a burst of writes costs one refresh that applies all
//! of them; the writers' own refresh calls find the work done and return at once.
//! [`Directory::follow`] runs a task that refreshes after each change. A PostgreSQL
//! `LISTEN/NOTIFY` listener for changes made on other nodes feeds their changes into the
//! store ([`Store::listen_for_remote_changes`]). Callers that need read-your-writes (the
//! API after a change) call [`Directory::refresh`] or await [`Directory::caught_up`].

use std::sync::{Arc, PoisonError, RwLock};

use pbx_domain::{DirectoryParts, DirectorySnapshot, TenantId, UserId, UserRows};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::store::{Store, TenantScope};

/// Above this many distinct changes in one refresh, a full reload is cheaper than reading
/// the changed rows one scope at a time.
pub const INCREMENTAL_LIMIT: usize = 512;

/// The live directory.
#[derive(Debug)]
pub struct Directory {
    current: RwLock<Arc<DirectorySnapshot>>,
    loaded: watch::Sender<u64>,
    /// Held while a refresh runs: refreshes are serialized, so concurrent callers coalesce.
    refreshing: Mutex<()>,
}

impl Directory {
    /// Loads the first snapshot.
    pub async fn load(store: &Store) -> StoreResult<Arc<Self>> {
        let snapshot = read_snapshot(store).await?;
        let (loaded, _) = watch::channel(snapshot.generation());
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(snapshot)),
            loaded,
            refreshing: Mutex::new(()),
        }))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<DirectorySnapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Brings the snapshot up to the store's current generation (incrementally when the
    /// store can tell what changed, else by a full reload) and returns the generation the
    /// snapshot now reflects. Returns at once when there is nothing to do.
    pub async fn refresh(&self, store: &Store) -> StoreResult<u64> {
        let _serial = self.refreshing.lock().await;
        let current = self.snapshot();
        let target = store.generation();
        if current.generation() >= target {
            return Ok(current.generation());
        }
        let next = match store.changes_since(current.generation(), target) {
            Some(changes) if changes.len() <= INCREMENTAL_LIMIT => {
                let mut next = DirectorySnapshot::clone(&current);
                for change in &changes {
                    apply(store, &mut next, *change).await?;
                }
                next.set_generation(target);
                tracing::debug!(
                    generation = target,
                    changes = changes.len(),
                    "directory patched"
                );
                next
            }
            _ => read_snapshot(store).await?,
        };
        let generation = next.generation();
        {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            // Refreshes are serialized; this only guards against going backwards.
            if current.generation() <= generation {
                *current = Arc::new(next);
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

    /// Spawns a task that refreshes after every store change until the store's change
    /// channel closes or the task is aborted. Changes that arrive while a refresh runs are
    /// applied together by the next one. A failed refresh is logged and retried after one
    /// second.
    pub fn follow(self: &Arc<Self>, store: Store) -> JoinHandle<()> {
        let directory = Arc::clone(self);
        let mut changes = store.subscribe();
        tokio::spawn(async move {
            loop {
                let wanted = *changes.borrow_and_update();
                if directory.snapshot().generation() < wanted
                    && let Err(error) = directory.refresh(&store).await
                {
                    tracing::warn!(%error, "directory refresh failed; retrying");
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

/// Re-reads the rows of one change and patches `snapshot` with them.
async fn apply(
    store: &Store,
    snapshot: &mut DirectorySnapshot,
    change: ConfigChange,
) -> StoreResult<()> {
    match change {
        ConfigChange::Tenant(tenant) => {
            let rows = read_tenant(store, tenant).await?;
            snapshot.replace_tenant(tenant, rows);
        }
        ConfigChange::User(tenant, user) => {
            let rows = read_user(store, tenant, user).await?;
            snapshot.replace_user(user, rows);
        }
        ConfigChange::Number(number) => {
            let row = found(store.numbers().by_id(number).await)?;
            snapshot.replace_number(number, row.as_ref());
        }
        // Trunks and routes are not in the directory; `Unknown` never reaches here
        // (`changes_since` answers `None` instead).
        ConfigChange::Routing | ConfigChange::Unknown => {}
    }
    Ok(())
}

/// A tenant row with its tenant-wide whitelist entries, `None` if the tenant is gone.
async fn read_tenant(
    store: &Store,
    tenant: TenantId,
) -> StoreResult<Option<(pbx_domain::Tenant, Vec<pbx_domain::WhitelistEntry>)>> {
    let scope = Store::system_scope(tenant);
    let Some(row) = found(store.tenants().get(&scope).await)? else {
        return Ok(None);
    };
    let whitelist = store.whitelist().entries_of(&scope, None).await?;
    Ok(Some((row, whitelist)))
}

/// A user with its devices, their credentials and its whitelist, `None` if it is gone.
async fn read_user(store: &Store, tenant: TenantId, user: UserId) -> StoreResult<Option<UserRows>> {
    let scope: TenantScope = Store::system_scope(tenant);
    let Some(row) = found(store.users().get(&scope, user).await)? else {
        return Ok(None);
    };
    Ok(Some(UserRows {
        user: row,
        devices: store.devices().list_for_user(&scope, user).await?,
        credentials: store.credentials().for_user(&scope, user).await?,
        whitelist: store.whitelist().entries_of(&scope, Some(user)).await?,
    }))
}

/// `NotFound` as `None`.
fn found<T>(result: StoreResult<T>) -> StoreResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads every row the snapshot needs. The generation is read first, so a change that
/// lands during the read leaves the snapshot marked older and triggers another refresh.
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
