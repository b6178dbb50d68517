//! Opening the database, migrations, change notification and tenant scopes.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pbx_domain::{Actor, ResellerId, TenantId};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio::sync::watch;

use crate::changes::{ChangeLog, ConfigChange};
use crate::error::{StoreError, StoreResult};
use crate::rows;

/// The embedded migrations (one set for both engines, see `migrations/`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "cloudpbx.sqlite3";

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Engine {
    /// An SQLite file (single node, the default).
    Sqlite,
    /// PostgreSQL (cluster).
    Postgres,
}

impl Engine {
    /// The engine a database URL names.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// Connection pool tuning.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a pool connection.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a writer waits for the file lock before `SQLITE_BUSY`.
    pub sqlite_busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A tenant the caller has been granted access to. Every tenant-scoped repository method
/// takes one and filters by its tenant, so a call made with tenant A's scope cannot read or
/// change tenant B's rows. It is only made by [`Store::scope`] (which checks the actor) and
/// [`Store::system_scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantScope {
    tenant_id: TenantId,
}

impl TenantScope {
    /// The tenant.
    pub const fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
}

/// The store: a connection pool on SQLite or PostgreSQL with the schema migrated, plus a
/// change counter that the in-memory [`crate::Directory`] follows. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    changes: Arc<watch::Sender<u64>>,
    /// What each recent generation changed (see [`crate::changes`]); `changes` is only
    /// sent while this is locked, so the two agree.
    log: Arc<Mutex<ChangeLog>>,
    /// The URL, for the PostgreSQL change listener's own connection.
    url: Arc<str>,
    /// Random id of this store instance: its own change notifications are not echoed back.
    instance: Arc<str>,
    /// The highest `config_changes.seq` this instance has seen or written (its own writes
    /// are not reloaded twice by [`Store::watch_config_changes`]).
    pub(crate) seen_seq: Arc<std::sync::atomic::AtomicI64>,
}

impl Store {
    /// Opens (and for SQLite with `mode=rwc` creates) the database at `url`, then applies the
    /// embedded migrations. Examples: `sqlite:///var/lib/cloudpbx/cloudpbx.sqlite3?mode=rwc`,
    /// `postgres://cloudpbx@db.internal/cloudpbx`.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// Opens the SQLite database in `data_dir` (creating the directory and the file).
    pub async fn open_data_dir(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(StoreError::DataDirectory)?;
        let url = sqlite_url(&data_dir.join(SQLITE_FILE_NAME));
        Self::open(&url).await
    }

    /// [`Store::open`] with explicit pool options.
    pub async fn open_with(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url)?;
        let connect: AnyConnectOptions = url.parse()?;
        let busy_ms = options.sqlite_busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |connection, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets readers run beside the single writer; foreign keys are off
                        // by default in SQLite; NORMAL sync is durable in WAL mode except
                        // against power loss of the last transaction.
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = {busy_ms}; PRAGMA synchronous = NORMAL;"
                        );
                        // Audited: the only interpolated value is an integer from our own options.
                        connection.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await?;
        let (changes, _) = watch::channel(0);
        tracing::info!(?engine, "store opened and migrated");
        let instance: String = rand::random::<[u8; 8]>()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let seen_seq = crate::cluster::read_seq(&pool).await?;
        Ok(Self {
            pool,
            engine,
            changes: Arc::new(changes),
            log: Arc::new(Mutex::new(ChangeLog::new())),
            url: url.into(),
            instance: instance.into(),
            seen_seq: Arc::new(std::sync::atomic::AtomicI64::new(seen_seq)),
        })
    }

    /// The engine.
    pub const fn engine(&self) -> Engine {
        self.engine
    }

    /// The pool, for crates that add their own tables later (sessions, CDRs).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (waits for them to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The configuration change counter: incremented after every committed change to
    /// tenants, users, devices, credentials, numbers or whitelists.
    pub fn generation(&self) -> u64 {
        *self.changes.borrow()
    }

    /// A receiver that wakes on every configuration change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Records a configuration change made elsewhere whose content is unknown (the admin
    /// CLI on the same SQLite file; a reconnected PostgreSQL listener): followers of this
    /// store reload in full.
    pub fn notify_changed(&self) {
        self.record([ConfigChange::Unknown]);
    }

    /// What changed after generation `from` up to and including `to` (distinct, in no
    /// particular order), or `None` when that is not known and a follower must reload in
    /// full: a change of unknown content, or `from` older than the kept log
    /// ([`crate::changes::CHANGE_LOG_CAPACITY`] changes).
    pub fn changes_since(&self, from: u64, to: u64) -> Option<Vec<ConfigChange>> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .since(from, to)
    }

    /// Records `changes` under the next generation and wakes the followers.
    pub(crate) fn record(&self, changes: impl IntoIterator<Item = ConfigChange>) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = log.record(changes);
        self.changes.send_replace(generation);
    }

    /// The database URL this store was opened with.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// This store instance's random id.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// Called after every committed configuration write with what it changed: bumps the
    /// shared change sequence (for other processes), records the changes for this store's
    /// followers and, on PostgreSQL, tells the other nodes what changed (see
    /// [`Store::listen_for_remote_changes`]). A failed notification is logged, not
    /// returned: the write itself has committed.
    pub(crate) async fn changed(&self, changes: &[ConfigChange]) {
        // Other processes on the same database (the admin CLI, other nodes) poll this.
        if let Err(error) = crate::cluster::bump_seq(self).await {
            tracing::warn!(%error, "could not bump the configuration change sequence");
        }
        self.record(changes.iter().copied());
        if self.engine == Engine::Postgres
            && let Err(error) = crate::cluster::announce(self, changes).await
        {
            tracing::warn!(%error, "could not notify other nodes of a configuration change");
        }
    }

    /// Grants `actor` a scope on `tenant`, after checking that the actor may act on it. A
    /// tenant that does not exist and one the actor may not see give the same `NotFound`.
    pub async fn scope(&self, actor: &Actor, tenant: TenantId) -> StoreResult<TenantScope> {
        let row = sqlx::query("SELECT reseller_id FROM tenants WHERE id = $1")
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound { what: "tenant" })?;
        let reseller: Option<ResellerId> = rows::parse_opt(&row, "tenants", "reseller_id")?;
        if actor.may_access(tenant, reseller) {
            Ok(TenantScope { tenant_id: tenant })
        } else {
            Err(StoreError::NotFound { what: "tenant" })
        }
    }

    /// A scope for platform components acting on a tenant they already resolved from
    /// trusted state (the registrar, from an authenticated credential in the directory).
    /// Never build one from a request parameter: use [`Store::scope`] for that.
    pub const fn system_scope(tenant: TenantId) -> TenantScope {
        TenantScope { tenant_id: tenant }
    }
}

/// The `sqlite://` URL (with `mode=rwc`) for a database file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
