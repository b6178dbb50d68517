//! Phone provisioning: per-tenant settings, the sealed per-device secret and the fetch log.
//!
//! The store keeps the sealed password as opaque text; sealing and opening happen in
//! `pbx-provision` with the server's key, which never reaches the database.

use pbx_domain::{DeviceId, TenantId};
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};
use crate::rows::{int, now_ms, parse, parse_opt, text};
use crate::store::{Store, TenantScope};

/// Per-tenant provisioning values (time zone, language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantProvisioning {
    /// IANA time zone.
    pub time_zone: String,
    /// Language code.
    pub language: String,
    /// Last change.
    pub updated_at_ms: i64,
}

/// A device's provisioning row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProvisioning {
    /// The device.
    pub device_id: DeviceId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The SIP password, sealed with the server key.
    pub sealed_password: String,
    /// The MD5 HA1 the password was sealed for (stale detection).
    pub sealed_ha1_md5: String,
    /// Mixed into the HTTPS URL token.
    pub url_epoch: i64,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// What the renderer needs for a device: the sealed secret plus the credential it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSecret {
    /// The provisioning row.
    pub provisioning: DeviceProvisioning,
    /// The credential's digest user name.
    pub auth_username: String,
    /// The credential's realm.
    pub realm: String,
    /// The credential's current MD5 HA1.
    pub current_ha1_md5: String,
    /// Whether the credential is enabled.
    pub enabled: bool,
}

/// One fetch, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningFetch {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Tenant, when attributed.
    pub tenant_id: Option<TenantId>,
    /// Device, when attributed.
    pub device_id: Option<DeviceId>,
    /// `tftp` or `https`.
    pub protocol: String,
    /// Source address.
    pub source_ip: String,
    /// Source port.
    pub source_port: u16,
    /// The requested path.
    pub path: String,
    /// `served`, or the refusal/failure kind.
    pub result: String,
    /// Bytes delivered.
    pub bytes: u64,
}

/// The provisioning repository.
#[derive(Debug, Clone, Copy)]
pub struct Provisioning<'a> {
    store: &'a Store,
}

impl Store {
    /// The provisioning repository.
    pub const fn provisioning(&self) -> Provisioning<'_> {
        Provisioning { store: self }
    }
}

fn device_from_row(row: &AnyRow) -> StoreResult<DeviceProvisioning> {
    Ok(DeviceProvisioning {
        device_id: parse(row, "device_provisioning", "device_id")?,
        tenant_id: parse(row, "device_provisioning", "tenant_id")?,
        sealed_password: text(row, "sealed_password")?,
        sealed_ha1_md5: text(row, "sealed_ha1_md5")?,
        url_epoch: int(row, "url_epoch")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

fn fetch_from_row(row: &AnyRow) -> StoreResult<ProvisioningFetch> {
    Ok(ProvisioningFetch {
        at_ms: int(row, "at")?,
        tenant_id: parse_opt(row, "provisioning_fetches", "tenant_id")?,
        device_id: parse_opt(row, "provisioning_fetches", "device_id")?,
        protocol: text(row, "protocol")?,
        source_ip: text(row, "source_ip")?,
        source_port: u16::try_from(int(row, "source_port")?).unwrap_or(0),
        path: text(row, "path")?,
        result: text(row, "result")?,
        bytes: u64::try_from(int(row, "bytes")?).unwrap_or(0),
    })
}

const DEVICE_COLUMNS: &str = "p.device_id, p.tenant_id, p.sealed_password, p.sealed_ha1_md5, \
     p.url_epoch, p.created_at, p.updated_at";

impl Provisioning<'_> {
    /// The tenant's settings, `None` when it uses the platform defaults.
    pub async fn tenant_settings(
        &self,
        scope: &TenantScope,
    ) -> StoreResult<Option<TenantProvisioning>> {
        let row = sqlx::query(
            "SELECT time_zone, language, updated_at FROM tenant_provisioning WHERE tenant_id = $1",
        )
        .bind(scope.tenant_id().to_string())
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|row| {
            Ok(TenantProvisioning {
                time_zone: text(&row, "time_zone")?,
                language: text(&row, "language")?,
                updated_at_ms: int(&row, "updated_at")?,
            })
        })
        .transpose()
    }

    /// Sets the tenant's settings (values validated by the caller).
    pub async fn set_tenant_settings(
        &self,
        scope: &TenantScope,
        time_zone: &str,
        language: &str,
    ) -> StoreResult<TenantProvisioning> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO tenant_provisioning (tenant_id, time_zone, language, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET \
             time_zone = excluded.time_zone, language = excluded.language, \
             updated_at = excluded.updated_at",
        )
        .bind(scope.tenant_id().to_string())
        .bind(time_zone.to_owned())
        .bind(language.to_owned())
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(TenantProvisioning {
            time_zone: time_zone.to_owned(),
            language: language.to_owned(),
            updated_at_ms: now,
        })
    }

    /// Stores (or replaces) a device's sealed secret and bumps its URL epoch, which revokes
    /// the previous HTTPS URL. The device must be one of the scoped tenant's.
    pub async fn enable_device(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        sealed_password: &str,
        sealed_ha1_md5: &str,
    ) -> StoreResult<DeviceProvisioning> {
        let now = now_ms();
        let previous = self.device(scope, device).await?;
        let epoch = previous.as_ref().map_or(1, |row| row.url_epoch + 1);
        let created = previous.as_ref().map_or(now, |row| row.created_at_ms);
        let written = sqlx::query(
            "INSERT INTO device_provisioning (device_id, tenant_id, sealed_password, sealed_ha1_md5, \
             url_epoch, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (device_id) DO UPDATE SET sealed_password = excluded.sealed_password, \
             sealed_ha1_md5 = excluded.sealed_ha1_md5, url_epoch = excluded.url_epoch, \
             updated_at = excluded.updated_at \
             WHERE device_provisioning.tenant_id = excluded.tenant_id",
        )
        .bind(device.to_string())
        .bind(scope.tenant_id().to_string())
        .bind(sealed_password.to_owned())
        .bind(sealed_ha1_md5.to_owned())
        .bind(epoch)
        .bind(created)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::InvalidReference { .. } => StoreError::NotFound { what: "device" },
            other => other,
        })?;
        if written.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "device" });
        }
        Ok(DeviceProvisioning {
            device_id: device,
            tenant_id: scope.tenant_id(),
            sealed_password: sealed_password.to_owned(),
            sealed_ha1_md5: sealed_ha1_md5.to_owned(),
            url_epoch: epoch,
            created_at_ms: created,
            updated_at_ms: now,
        })
    }

    /// Forgets a device's secret: it can no longer be provisioned (its URL stops working).
    /// Returns whether a row existed.
    pub async fn disable_device(&self, scope: &TenantScope, device: DeviceId) -> StoreResult<bool> {
        let result =
            sqlx::query("DELETE FROM device_provisioning WHERE tenant_id = $1 AND device_id = $2")
                .bind(scope.tenant_id().to_string())
                .bind(device.to_string())
                .execute(self.store.pool())
                .await?;
        Ok(result.rows_affected() > 0)
    }

    /// A device's provisioning row, `None` when provisioning is not enabled for it.
    pub async fn device(
        &self,
        scope: &TenantScope,
        device: DeviceId,
    ) -> StoreResult<Option<DeviceProvisioning>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM device_provisioning p \
             WHERE p.tenant_id = $1 AND p.device_id = $2"
        )))
        .bind(scope.tenant_id().to_string())
        .bind(device.to_string())
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    /// The sealed secret of a device together with its credential, for rendering.
    /// `None` when provisioning is not enabled or the device has no credential.
    pub async fn device_secret(
        &self,
        scope: &TenantScope,
        device: DeviceId,
    ) -> StoreResult<Option<DeviceSecret>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS}, c.auth_username, c.realm, c.ha1_md5, c.enabled \
             FROM device_provisioning p JOIN sip_credentials c \
             ON c.tenant_id = p.tenant_id AND c.device_id = p.device_id \
             WHERE p.tenant_id = $1 AND p.device_id = $2"
        )))
        .bind(scope.tenant_id().to_string())
        .bind(device.to_string())
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|row| {
            Ok(DeviceSecret {
                provisioning: device_from_row(&row)?,
                auth_username: text(&row, "auth_username")?,
                realm: text(&row, "realm")?,
                current_ha1_md5: text(&row, "ha1_md5")?,
                enabled: int(&row, "enabled")? != 0,
            })
        })
        .transpose()
    }

    /// Appends fetches to the log in one transaction.
    pub async fn record_fetches(&self, fetches: &[ProvisioningFetch]) -> StoreResult<()> {
        if fetches.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.pool().begin().await?;
        for fetch in fetches {
            sqlx::query(
                "INSERT INTO provisioning_fetches (id, at, tenant_id, device_id, protocol, \
                 source_ip, source_port, path, result, bytes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(crate::rows::new_id(pbx_domain::EventId::from_parts).to_string())
            .bind(fetch.at_ms)
            .bind(fetch.tenant_id.map(|id| id.to_string()))
            .bind(fetch.device_id.map(|id| id.to_string()))
            .bind(fetch.protocol.clone())
            .bind(fetch.source_ip.clone())
            .bind(i64::from(fetch.source_port))
            .bind(fetch.path.clone())
            .bind(fetch.result.clone())
            .bind(i64::try_from(fetch.bytes).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` fetches of the scoped tenant (of one device if given), newest first.
    pub async fn list_fetches(
        &self,
        scope: &TenantScope,
        device: Option<DeviceId>,
        limit: u32,
    ) -> StoreResult<Vec<ProvisioningFetch>> {
        let columns =
            "at, tenant_id, device_id, protocol, source_ip, source_port, path, result, bytes";
        let rows = match device {
            Some(device) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {columns} FROM provisioning_fetches WHERE tenant_id = $1 \
                     AND device_id = $2 ORDER BY at DESC, id DESC LIMIT $3"
                )))
                .bind(scope.tenant_id().to_string())
                .bind(device.to_string())
                .bind(i64::from(limit))
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {columns} FROM provisioning_fetches WHERE tenant_id = $1 \
                     ORDER BY at DESC, id DESC LIMIT $2"
                )))
                .bind(scope.tenant_id().to_string())
                .bind(i64::from(limit))
                .fetch_all(self.store.pool())
                .await?
            }
        };
        rows.iter().map(fetch_from_row).collect()
    }

    /// Deletes log entries older than `before_ms`; returns how many.
    pub async fn prune_fetches(&self, before_ms: i64) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM provisioning_fetches WHERE at < $1")
            .bind(before_ms)
            .execute(self.store.pool())
            .await?;
        Ok(result.rows_affected())
    }
}
