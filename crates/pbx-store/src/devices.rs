//! Devices of users (desk phones, softphones, mobile apps).

use pbx_domain::{Device, DeviceId, DeviceKind, NewDevice, UserId};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{corrupt, flag, int, new_id, now_ms, parse, text, text_opt};
use crate::store::{Store, TenantScope};

macro_rules! device_columns {
    () => {
        "id, tenant_id, user_id, kind, vendor, model, mac, label, whitelist_exempt, created_at, \
         updated_at"
    };
}

/// Devices, always within one tenant scope.
#[derive(Debug, Clone, Copy)]
pub struct Devices<'a> {
    store: &'a Store,
}

impl Store {
    /// The devices repository.
    pub const fn devices(&self) -> Devices<'_> {
        Devices { store: self }
    }
}

pub(crate) fn device_from_row(row: &AnyRow) -> StoreResult<Device> {
    let kind = DeviceKind::from_columns(
        &text(row, "kind")?,
        text_opt(row, "vendor")?.as_deref(),
        text_opt(row, "model")?.as_deref(),
        text_opt(row, "mac")?.as_deref(),
    )
    .map_err(|source| corrupt("devices", "kind", source))?;
    Ok(Device {
        id: parse(row, "devices", "id")?,
        tenant_id: parse(row, "devices", "tenant_id")?,
        user_id: parse(row, "devices", "user_id")?,
        kind,
        label: text(row, "label")?,
        whitelist_exempt: flag(row, "whitelist_exempt")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

/// The vendor, model and bare MAC columns of a kind.
fn kind_columns(kind: &DeviceKind) -> (Option<String>, Option<String>, Option<String>) {
    match kind {
        DeviceKind::DeskPhone { vendor, model, mac } => (
            Some(vendor.as_str().to_owned()),
            Some(model.clone()),
            Some(mac.bare()),
        ),
        _ => (None, None, None),
    }
}

impl Devices<'_> {
    /// Creates a device for a user of the scoped tenant. A desk phone's MAC must be unused on
    /// the whole platform (`Conflict { what: "device MAC address" }`); a user of another
    /// tenant gives `InvalidReference { what: "user" }`.
    pub async fn create(&self, scope: &TenantScope, new: &NewDevice) -> StoreResult<Device> {
        let now = now_ms();
        let device = Device {
            id: new_id(DeviceId::from_parts),
            tenant_id: scope.tenant_id(),
            user_id: new.user_id,
            kind: new.kind.clone(),
            label: new.label.clone(),
            whitelist_exempt: false,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let (vendor, model, mac) = kind_columns(&device.kind);
        sqlx::query(concat!(
            "INSERT INTO devices (",
            device_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(device.id.to_string())
        .bind(device.tenant_id.to_string())
        .bind(device.user_id.to_string())
        .bind(device.kind.as_str())
        .bind(vendor)
        .bind(model)
        .bind(mac)
        .bind(device.label.clone())
        .bind(0_i64)
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::InvalidReference { .. } => StoreError::InvalidReference { what: "user" },
            other => other,
        })?;
        self.store
            .changed(&[ConfigChange::User(device.tenant_id, device.user_id)])
            .await;
        Ok(device)
    }

    /// A device of the scoped tenant.
    pub async fn get(&self, scope: &TenantScope, id: DeviceId) -> StoreResult<Device> {
        let row = sqlx::query(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(id.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "device" })?;
        device_from_row(&row)
    }

    /// All devices of the scoped tenant.
    pub async fn list(&self, scope: &TenantScope) -> StoreResult<Vec<Device>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE tenant_id = $1 ORDER BY id"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// The devices of one user of the scoped tenant (the ones that ring together).
    pub async fn list_for_user(
        &self,
        scope: &TenantScope,
        user: UserId,
    ) -> StoreResult<Vec<Device>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE tenant_id = $1 AND user_id = $2 ORDER BY id"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(user.to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// Changes a device's label.
    pub async fn set_label(
        &self,
        scope: &TenantScope,
        id: DeviceId,
        label: &str,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE devices SET label = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4 \
             RETURNING user_id",
        )
        .bind(label.to_owned())
        .bind(now_ms())
        .bind(scope.tenant_id().to_string())
        .bind(id.to_string())
        .fetch_optional(self.store.pool())
        .await?;
        self.changed(scope, result).await
    }

    /// Exempts a device from the IP whitelist (or ends the exemption). An exempt device is
    /// admitted from outside the whitelist over TLS only (a mobile device that roams).
    pub async fn set_whitelist_exempt(
        &self,
        scope: &TenantScope,
        id: DeviceId,
        exempt: bool,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE devices SET whitelist_exempt = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND id = $4 RETURNING user_id",
        )
        .bind(i64::from(exempt))
        .bind(now_ms())
        .bind(scope.tenant_id().to_string())
        .bind(id.to_string())
        .fetch_optional(self.store.pool())
        .await?;
        self.changed(scope, result).await
    }

    /// Deletes a device with its credential and bindings.
    pub async fn delete(&self, scope: &TenantScope, id: DeviceId) -> StoreResult<()> {
        let result =
            sqlx::query("DELETE FROM devices WHERE tenant_id = $1 AND id = $2 RETURNING user_id")
                .bind(scope.tenant_id().to_string())
                .bind(id.to_string())
                .fetch_optional(self.store.pool())
                .await?;
        self.changed(scope, result).await
    }

    /// After a write to one device that returned its `user_id` (`None`: no such device):
    /// records the change of that user.
    async fn changed(&self, scope: &TenantScope, written: Option<AnyRow>) -> StoreResult<()> {
        let row = written.ok_or(StoreError::NotFound { what: "device" })?;
        let user: UserId = parse(&row, "devices", "user_id")?;
        self.store
            .changed(&[ConfigChange::User(scope.tenant_id(), user)])
            .await;
        Ok(())
    }

    /// Every device (for the directory).
    pub(crate) async fn load_all(&self) -> StoreResult<Vec<Device>> {
        let rows = sqlx::query(concat!("SELECT ", device_columns!(), " FROM devices"))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(device_from_row).collect()
    }
}
