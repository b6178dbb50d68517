//! CloudPBX storage: sqlx repositories on SQLite (the default, single node) and PostgreSQL
//! (cluster), one code path for both through sqlx's `Any` driver, with embedded migrations.
//!
//! # How to drive it
//!
//! 1. Open: [`Store::open`] with a URL (`sqlite:///data/cloudpbx.sqlite3?mode=rwc` or
//!    `postgres://user@host/db`), or [`Store::open_data_dir`] for the default SQLite file.
//!    Opening applies the migrations (idempotent); SQLite runs in WAL mode with foreign
//!    keys on and a busy timeout.
//! 2. Get a scope: tenant data is only reachable through a [`TenantScope`], granted by
//!    [`Store::scope`] after checking the [`Actor`](pbx_domain::Actor) (operator, reseller,
//!    customer admin) against the tenant. Every tenant-scoped query filters on the scope's
//!    tenant, and child tables reference parents by `(tenant_id, id)`, so tenant A's scope
//!    can neither read nor attach to tenant B's rows.
//! 3. Use the repositories: [`Store::tenants`], [`Store::resellers`], [`Store::users`],
//!    [`Store::devices`], [`Store::credentials`], [`Store::numbers`], [`Store::whitelist`],
//!    [`Store::bindings`], [`Store::api_tokens`], [`Store::events`],
//!    [`Store::security`], [`Store::limit_overrides`]. Unique violations come
//!    back as [`StoreError::Conflict`] naming the value (`tenant slug`, `extension`, ...).
//! 4. Serve the hot path from memory: [`Directory::load`] builds an immutable snapshot
//!    (credentials by auth user name, tenants by slug/domain, extensions, whitelists, DIDs);
//!    [`Directory::follow`] reloads it after every configuration write, so changes take
//!    effect without a restart. In a cluster, [`Store::listen_for_remote_changes`] brings
//!    other nodes' writes in through PostgreSQL `LISTEN/NOTIFY`.
//!
//! ```no_run
//! use pbx_domain::{Actor, ClassOfService, DisplayName, Extension, NewTenant, NewUser};
//! use pbx_domain::{DeviceKind, NewDevice, Realm, SipDomain, Slug, TenantStatus};
//! use pbx_store::{Directory, Store};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("sqlite:///var/lib/cloudpbx/cloudpbx.sqlite3?mode=rwc").await?;
//! let directory = Directory::load(&store).await?;
//! let _follower = directory.follow(store.clone());
//!
//! let acme = store
//!     .tenants()
//!     .create(&Actor::Operator, &NewTenant {
//!         reseller_id: None,
//!         name: DisplayName::parse("Acme B.V.")?,
//!         slug: Slug::parse("acme")?,
//!         sip_domain: SipDomain::parse("acme.pbx.example.com")?,
//!         status: TenantStatus::Active,
//!     })
//!     .await?;
//! let scope = store.scope(&Actor::CustomerAdmin(acme.id), acme.id).await?;
//! let ann = store
//!     .users()
//!     .create(&scope, &NewUser {
//!         extension: Extension::parse("201")?,
//!         display_name: DisplayName::parse("Ann")?,
//!         class_of_service: ClassOfService::National,
//!     })
//!     .await?;
//! let phone = store
//!     .devices()
//!     .create(&scope, &NewDevice { user_id: ann.id, kind: DeviceKind::MobileApp, label: "iPhone".into() })
//!     .await?;
//! let issued = store.credentials().issue(&scope, phone.id, &Realm::parse("cloudpbx")?).await?;
//! println!("user {} password {} (shown once)", issued.credential.auth_username, issued.password.expose());
//!
//! // The registrar's hot path: no database access.
//! directory.caught_up(store.generation()).await;
//! let credential = directory.snapshot().usable_credential(issued.credential.auth_username.as_str()).cloned();
//! assert_eq!(credential.map(|c| c.user_id), Some(ann.id));
//! # Ok(())
//! # }
//! ```
//!
//! Ids are UUID v7 text, times are `BIGINT` Unix milliseconds, booleans `BIGINT` 0/1.
//! Passwords are never stored: credentials keep MD5 and SHA-256 HA1 digests, API tokens a
//! SHA-256 hash of the secret.

mod bindings;
mod cdrs;
mod changes;
mod cluster;
mod credentials;
mod devices;
mod directory;
mod error;
mod events;
mod limit_overrides;
mod numbers;
mod provisioning;
mod routes;
mod rows;
mod security;
mod store;
mod tenants;
mod tokens;
mod trunks;
mod users;
mod whitelist;

pub use bindings::{BindingWrite, Bindings, EventWrite};
pub use cdrs::{CdrFilter, Cdrs};
pub use changes::{CHANGE_LOG_CAPACITY, ConfigChange};
pub use cluster::CONFIG_CHANNEL;
pub use credentials::{Credentials, IssuedCredential};
pub use devices::Devices;
pub use directory::{Directory, INCREMENTAL_LIMIT};
pub use error::{StoreError, StoreResult};
pub use events::Events;
pub use limit_overrides::{LimitOverride, LimitOverrides, UsageLimits};
pub use numbers::Numbers;
pub use provisioning::{
    DeviceProvisioning, DeviceSecret, Provisioning, ProvisioningFetch, TenantProvisioning,
};
pub use routes::Routes;
pub use security::{DestinationExceptions, Security};
pub use store::{Engine, SQLITE_FILE_NAME, Store, StoreOptions, TenantScope, sqlite_url};
pub use tenants::{Resellers, Tenants};
pub use tokens::ApiTokens;
pub use trunks::{Owner, SecretKey, TrunkSpec, Trunks};
pub use users::{UserUpdate, Users};
pub use whitelist::Whitelist;
