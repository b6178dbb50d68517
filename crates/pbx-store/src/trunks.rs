//! SIP trunks (with their carrier password encrypted at rest) and tenants' calling settings.
//!
//! The carrier password is our own client credential: it has to be usable, so it is stored
//! encrypted (ChaCha20-Poly1305) with a [`SecretKey`] kept in the data directory, never in
//! the database. A database dump alone does not reveal it.

use std::path::Path;

use pbx_domain::{
    Actor, CallerIdentity, E164, TenantCallSettings, TenantId, Transport, Trunk, TrunkAuth,
    TrunkId, TrunkMode, parse_network,
};
use ring::aead::{self, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{
    affected, corrupt, flag, int, narrow, new_id, now_ms, parse, parse_opt, text, text_opt,
};
use crate::store::{Store, TenantScope};

/// The key that encrypts trunk passwords at rest. `Debug` does not show it.
#[derive(Clone)]
pub struct SecretKey {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

const SEALED_PREFIX: &str = "v1:";

impl SecretKey {
    /// A key from 32 bytes.
    pub const fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Reads the key at `path`, creating it (32 random bytes, mode 0600, parent directories)
    /// when it does not exist.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] =
                    bytes
                        .get(..32)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| {
                            std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                "secret key shorter than 32 bytes",
                            )
                        })?;
                Ok(Self { key })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let key: [u8; 32] = rand::random();
                std::fs::write(path, key)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(Self { key })
            }
            Err(error) => Err(error),
        }
    }

    fn aead(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&CHACHA20_POLY1305, &self.key)
            .ok()
            .map(LessSafeKey::new)
    }

    /// Encrypts `plaintext` with a fresh random nonce: `v1:` + hex(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &str) -> StoreResult<String> {
        let failed = || StoreError::Forbidden {
            reason: "the trunk secret key is unusable",
        };
        let key = self.aead().ok_or_else(failed)?;
        let nonce_bytes: [u8; aead::NONCE_LEN] = rand::random();
        let mut sealed = plaintext.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(SEALED_PREFIX.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| failed())?;
        let mut out = Vec::with_capacity(nonce_bytes.len() + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", hex_encode(&out)))
    }

    /// Decrypts what [`SecretKey::seal`] made; `None` with a wrong key or tampered text.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = hex_decode(sealed.strip_prefix(SEALED_PREFIX)?)?;
        if bytes.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(aead::NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(SEALED_PREFIX.as_bytes()), &mut buffer)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Who owns a trunk or route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// The operator (platform-wide; only operator actors may touch these).
    Operator,
    /// One tenant.
    Tenant(&'a TenantScope),
}

impl Owner<'_> {
    /// The owning tenant (`None` for the operator).
    pub fn tenant_id(&self) -> Option<TenantId> {
        match self {
            Self::Operator => None,
            Self::Tenant(scope) => Some(scope.tenant_id()),
        }
    }

    pub(crate) fn check(&self, actor: &Actor) -> StoreResult<()> {
        match (self, actor) {
            (Self::Tenant(_), _) | (Self::Operator, Actor::Operator | Actor::System) => Ok(()),
            (Self::Operator, _) => Err(StoreError::Forbidden {
                reason: "operator trunks and routes are the operator's",
            }),
        }
    }

    /// `tenant_id = $n` or `tenant_id IS NULL`, with the value to bind (the operator binds
    /// the empty string, which no tenant id equals, to keep the placeholder count fixed).
    pub(crate) fn filter(&self, placeholder: u8) -> (String, String) {
        match self.tenant_id() {
            Some(tenant) => (format!("tenant_id = ${placeholder}"), tenant.to_string()),
            None => (
                format!("(tenant_id IS NULL AND ${placeholder} = '')"),
                String::new(),
            ),
        }
    }
}

/// An owner-scoped table of the routing configuration (trunks, routes): the statements
/// that read and delete its rows the same way for both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnedTable {
    /// The table (a fixed name).
    pub(crate) table: &'static str,
    /// The selected columns (fixed).
    pub(crate) columns: &'static str,
    /// What a row is, for `NotFound`.
    pub(crate) what: &'static str,
}

impl OwnedTable {
    /// The row `id` of `owner`.
    pub(crate) async fn get(
        self,
        store: &Store,
        owner: Owner<'_>,
        id: String,
    ) -> StoreResult<AnyRow> {
        let (filter, owner_value) = owner.filter(1);
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter} AND id = $2",
            self.columns, self.table
        );
        // Audited: fixed fragments only.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner_value)
            .bind(id)
            .fetch_optional(store.pool())
            .await?
            .ok_or(StoreError::NotFound { what: self.what })
    }

    /// Every row of `owner`, by `order` (fixed columns).
    pub(crate) async fn list(
        self,
        store: &Store,
        owner: Owner<'_>,
        order: &'static str,
    ) -> StoreResult<Vec<AnyRow>> {
        let (filter, owner_value) = owner.filter(1);
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter} ORDER BY {order}",
            self.columns, self.table
        );
        // Audited: fixed fragments only.
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner_value)
            .fetch_all(store.pool())
            .await?)
    }

    /// Deletes the row `id` of `owner` (`NotFound` when there is none).
    pub(crate) async fn delete(
        self,
        store: &Store,
        owner: Owner<'_>,
        id: String,
    ) -> StoreResult<()> {
        let (filter, owner_value) = owner.filter(1);
        let sql = format!("DELETE FROM {} WHERE {filter} AND id = $2", self.table);
        // Audited: fixed fragments only.
        let result = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner_value)
            .bind(id)
            .execute(store.pool())
            .await?;
        affected(result.rows_affected(), self.what)
    }
}

/// What a trunk is made of (create and full update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkSpec {
    /// Name, unique per owner.
    pub name: String,
    /// Carrier host.
    pub host: String,
    /// Carrier port.
    pub port: u16,
    /// Transport (`udp`, `tcp`, `tls`).
    pub transport: Transport,
    /// Digest or IP peering.
    pub mode: TrunkMode,
    /// Digest user name.
    pub auth_username: Option<String>,
    /// New password; on update `None` keeps the stored one.
    pub auth_password: Option<String>,
    /// Pinned realm.
    pub auth_realm: Option<String>,
    /// REGISTER as this user (default: the auth user name).
    pub register_user: Option<String>,
    /// Register with the carrier.
    pub register: bool,
    /// Registration lifetime asked for.
    pub register_expires_secs: u32,
    /// Networks inbound calls come from.
    pub inbound_networks: Vec<ipnet::IpNet>,
    /// Default priority (lower first).
    pub priority: i32,
    /// How the caller's identity is sent to the carrier.
    pub caller_identity: CallerIdentity,
    /// Enabled.
    pub enabled: bool,
}

macro_rules! trunk_columns {
    () => {
        "id, tenant_id, name, host, port, transport, mode, auth_username, auth_password_enc, \
         auth_realm, register_user, register, register_expires_secs, inbound_networks, priority, \
         enabled, created_at, updated_at, caller_identity"
    };
}

/// The trunks table.
const TRUNKS: OwnedTable = OwnedTable {
    table: "trunks",
    columns: trunk_columns!(),
    what: "trunk",
};

/// Trunks.
#[derive(Debug, Clone, Copy)]
pub struct Trunks<'a> {
    store: &'a Store,
}

impl Store {
    /// The trunks repository (and tenants' calling settings).
    pub const fn trunks(&self) -> Trunks<'_> {
        Trunks { store: self }
    }
}

fn trunk_from_row(row: &AnyRow) -> StoreResult<Trunk> {
    let networks: Vec<String> = serde_json::from_str(&text(row, "inbound_networks")?)
        .map_err(|_| corrupt("trunks", "inbound_networks", json_error()))?;
    let inbound_networks = networks
        .iter()
        .map(|network| parse_network(network))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| corrupt("trunks", "inbound_networks", source))?;
    Ok(Trunk {
        id: parse(row, "trunks", "id")?,
        tenant_id: parse_opt(row, "trunks", "tenant_id")?,
        name: text(row, "name")?,
        host: text(row, "host")?,
        port: narrow(int(row, "port")?, "trunks", "port")?,
        transport: parse(row, "trunks", "transport")?,
        mode: parse(row, "trunks", "mode")?,
        auth_username: text_opt(row, "auth_username")?,
        has_password: text_opt(row, "auth_password_enc")?.is_some(),
        auth_realm: text_opt(row, "auth_realm")?,
        register_user: text_opt(row, "register_user")?,
        register: flag(row, "register")?,
        register_expires_secs: narrow(
            int(row, "register_expires_secs")?,
            "trunks",
            "register_expires_secs",
        )?,
        inbound_networks,
        priority: narrow(int(row, "priority")?, "trunks", "priority")?,
        caller_identity: parse(row, "trunks", "caller_identity")?,
        enabled: flag(row, "enabled")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

pub(crate) fn json_error() -> pbx_domain::ValidationError {
    pbx_domain::ValidationError::Inconsistent {
        kind: "JSON column",
        reason: "not the expected JSON",
    }
}

fn check_spec(spec: &TrunkSpec) -> StoreResult<()> {
    let invalid = |reason| Err(StoreError::Forbidden { reason });
    if spec.name.trim().is_empty() || spec.name.len() > 64 {
        return invalid("trunk name must be 1 to 64 characters");
    }
    if spec.host.trim().is_empty()
        || spec.host.len() > 253
        || spec.host.contains(char::is_whitespace)
    {
        return invalid("trunk host must be a host name or IP address");
    }
    if spec.port == 0 {
        return invalid("trunk port must be 1 to 65535");
    }
    if !matches!(
        spec.transport,
        Transport::Udp | Transport::Tcp | Transport::Tls
    ) {
        return invalid("trunk transport must be udp, tcp or tls");
    }
    Ok(())
}

fn name_conflict(error: sqlx::Error) -> StoreError {
    match StoreError::from(error) {
        StoreError::Conflict { .. } => StoreError::Conflict { what: "trunk name" },
        other => other,
    }
}

impl Trunks<'_> {
    /// Creates a trunk for `owner`; the password (if any) is sealed with `key`.
    pub async fn create(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        spec: &TrunkSpec,
        key: &SecretKey,
    ) -> StoreResult<Trunk> {
        owner.check(actor)?;
        check_spec(spec)?;
        let sealed = spec
            .auth_password
            .as_deref()
            .map(|p| key.seal(p))
            .transpose()?;
        if spec.register && (spec.auth_username.is_none() || sealed.is_none()) {
            return Err(StoreError::Forbidden {
                reason: "a registering trunk needs an auth user name and password",
            });
        }
        let id = new_id(TrunkId::from_parts);
        let now = now_ms();
        sqlx::query(concat!(
            "INSERT INTO trunks (",
            trunk_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(id.to_string())
        .bind(owner.tenant_id().map(|t| t.to_string()))
        .bind(spec.name.trim().to_owned())
        .bind(spec.host.trim().to_owned())
        .bind(i64::from(spec.port))
        .bind(spec.transport.as_str())
        .bind(spec.mode.as_str())
        .bind(spec.auth_username.clone())
        .bind(sealed)
        .bind(spec.auth_realm.clone())
        .bind(spec.register_user.clone())
        .bind(i64::from(spec.register))
        .bind(i64::from(spec.register_expires_secs))
        .bind(networks_json(spec))
        .bind(i64::from(spec.priority))
        .bind(i64::from(spec.enabled))
        .bind(now)
        .bind(now)
        .bind(spec.caller_identity.as_str())
        .execute(self.store.pool())
        .await
        .map_err(name_conflict)?;
        self.store.changed(&[ConfigChange::Routing]).await;
        self.get(actor, owner, id).await
    }

    /// Replaces a trunk's settings; `spec.auth_password: None` keeps the stored password.
    pub async fn update(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        id: TrunkId,
        spec: &TrunkSpec,
        key: &SecretKey,
    ) -> StoreResult<Trunk> {
        owner.check(actor)?;
        check_spec(spec)?;
        let existing = self.get(actor, owner, id).await?;
        let sealed = spec
            .auth_password
            .as_deref()
            .map(|p| key.seal(p))
            .transpose()?;
        if spec.register
            && (spec.auth_username.is_none() || (sealed.is_none() && !existing.has_password))
        {
            return Err(StoreError::Forbidden {
                reason: "a registering trunk needs an auth user name and password",
            });
        }
        let (filter, owner_value) = owner.filter(17);
        let sql = format!(
            "UPDATE trunks SET name = $1, host = $2, port = $3, transport = $4, mode = $5, \
             auth_username = $6, auth_password_enc = COALESCE($7, auth_password_enc), auth_realm = $8, \
             register_user = $9, register = $10, register_expires_secs = $11, inbound_networks = $12, \
             priority = $13, enabled = $14, updated_at = $15, caller_identity = $16 \
             WHERE {filter} AND id = $18"
        );
        // Audited: `filter` is one of two fixed fragments with a numbered placeholder.
        let result = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(spec.name.trim().to_owned())
            .bind(spec.host.trim().to_owned())
            .bind(i64::from(spec.port))
            .bind(spec.transport.as_str())
            .bind(spec.mode.as_str())
            .bind(spec.auth_username.clone())
            .bind(sealed)
            .bind(spec.auth_realm.clone())
            .bind(spec.register_user.clone())
            .bind(i64::from(spec.register))
            .bind(i64::from(spec.register_expires_secs))
            .bind(networks_json(spec))
            .bind(i64::from(spec.priority))
            .bind(i64::from(spec.enabled))
            .bind(now_ms())
            .bind(spec.caller_identity.as_str())
            .bind(owner_value)
            .bind(id.to_string())
            .execute(self.store.pool())
            .await
            .map_err(name_conflict)?;
        affected(result.rows_affected(), "trunk")?;
        self.store.changed(&[ConfigChange::Routing]).await;
        self.get(actor, owner, id).await
    }

    /// One trunk of `owner`.
    pub async fn get(&self, actor: &Actor, owner: Owner<'_>, id: TrunkId) -> StoreResult<Trunk> {
        owner.check(actor)?;
        let row = TRUNKS.get(self.store, owner, id.to_string()).await?;
        trunk_from_row(&row)
    }

    /// The trunks of `owner`, by priority then name.
    pub async fn list(&self, actor: &Actor, owner: Owner<'_>) -> StoreResult<Vec<Trunk>> {
        owner.check(actor)?;
        let rows = TRUNKS.list(self.store, owner, "priority, name").await?;
        rows.iter().map(trunk_from_row).collect()
    }

    /// Deletes a trunk of `owner` and takes it out of every route that lists it.
    pub async fn delete(&self, actor: &Actor, owner: Owner<'_>, id: TrunkId) -> StoreResult<()> {
        owner.check(actor)?;
        TRUNKS.delete(self.store, owner, id.to_string()).await?;
        self.store.routes().forget_trunk(id).await?;
        self.store.changed(&[ConfigChange::Routing]).await;
        Ok(())
    }

    /// Every trunk with its decrypted credentials (for the routing snapshot and the
    /// registration client). A password that does not decrypt (another key) is logged and
    /// left out.
    pub async fn load_all_with_auth(
        &self,
        key: &SecretKey,
    ) -> StoreResult<Vec<(Trunk, Option<TrunkAuth>)>> {
        let rows = sqlx::query(concat!("SELECT ", trunk_columns!(), " FROM trunks"))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let trunk = trunk_from_row(row)?;
                let auth = match (trunk.auth_username.clone(), text_opt(row, "auth_password_enc")?) {
                    (Some(username), Some(sealed)) => match key.open(&sealed) {
                        Some(password) => Some(TrunkAuth { username, password }),
                        None => {
                            tracing::error!(trunk = %trunk.id, "trunk password does not decrypt with this data directory's key");
                            None
                        }
                    },
                    _ => None,
                };
                Ok((trunk, auth))
            })
            .collect()
    }

    /// The calling settings of the scoped tenant (the defaults when never set).
    pub async fn settings(&self, scope: &TenantScope) -> StoreResult<TenantCallSettings> {
        let row = sqlx::query(
            "SELECT tenant_id, country, main_number FROM tenant_call_settings WHERE tenant_id = $1",
        )
        .bind(scope.tenant_id().to_string())
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some(row) => settings_from_row(&row),
            None => Ok(TenantCallSettings::default_for(scope.tenant_id())),
        }
    }

    /// Sets the scoped tenant's country and main number.
    pub async fn set_settings(
        &self,
        scope: &TenantScope,
        country: &str,
        main_number: Option<&E164>,
    ) -> StoreResult<TenantCallSettings> {
        let country = country.trim().to_ascii_uppercase();
        sqlx::query(
            "INSERT INTO tenant_call_settings (tenant_id, country, main_number, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET \
             country = excluded.country, main_number = excluded.main_number, updated_at = excluded.updated_at",
        )
        .bind(scope.tenant_id().to_string())
        .bind(country)
        .bind(main_number.map(ToString::to_string))
        .bind(now_ms())
        .execute(self.store.pool())
        .await?;
        self.store.changed(&[ConfigChange::Routing]).await;
        self.settings(scope).await
    }

    /// Every number assigned to a tenant (for the routing snapshot).
    pub async fn assigned_numbers(&self) -> StoreResult<Vec<pbx_domain::PhoneNumber>> {
        self.store.numbers().load_assigned().await
    }

    /// Every tenant's settings row.
    pub async fn load_all_settings(&self) -> StoreResult<Vec<TenantCallSettings>> {
        let rows = sqlx::query("SELECT tenant_id, country, main_number FROM tenant_call_settings")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(settings_from_row).collect()
    }
}

fn settings_from_row(row: &AnyRow) -> StoreResult<TenantCallSettings> {
    Ok(TenantCallSettings {
        tenant_id: parse(row, "tenant_call_settings", "tenant_id")?,
        country: text(row, "country")?,
        main_number: parse_opt(row, "tenant_call_settings", "main_number")?,
    })
}

fn networks_json(spec: &TrunkSpec) -> String {
    let networks: Vec<String> = spec
        .inbound_networks
        .iter()
        .map(|network| network.trunc().to_string())
        .collect();
    serde_json::Value::from(networks).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper() {
        let key = SecretKey::from_bytes([7; 32]);
        let sealed = key.seal("carrier-pass").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("carrier-pass"));
        assert_ne!(
            sealed,
            key.seal("carrier-pass").unwrap(),
            "fresh nonce each time"
        );
        assert_eq!(key.open(&sealed).as_deref(), Some("carrier-pass"));
        assert_eq!(SecretKey::from_bytes([8; 32]).open(&sealed), None);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('0');
        assert!(key.open(&tampered).is_none() || tampered == sealed);
        assert_eq!(key.open("v1:zz"), None);
        assert_eq!(key.open("plain"), None);
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets").join("trunk.key");
        let first = SecretKey::load_or_create(&path).unwrap();
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(first.key, again.key);
        let sealed = first.seal("x").unwrap();
        assert_eq!(again.open(&sealed).as_deref(), Some("x"));
    }
}
