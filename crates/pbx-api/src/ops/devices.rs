//! Devices and their SIP credentials.

use pbx_domain::{Device, DeviceId, DeviceKind, NewDevice, Realm, SipCredential};
use pbx_store::{IssuedCredential, StoreError, TenantScope};
use serde_json::json;

use super::{Ops, free_text};
use crate::error::{ApiError, ApiResult};
use crate::model::{CreateDevice, DeviceKindName, UpdateDevice};

/// A device just created, with its credential and the password (shown once).
#[derive(Debug, Clone)]
pub struct CreatedDevice {
    /// The device.
    pub device: Device,
    /// The credential with its password.
    pub issued: IssuedCredential,
}

impl Ops<'_> {
    /// Creates a device for a user of the scoped tenant and issues its SIP credential for
    /// `realm`. The password exists only in the result.
    pub async fn create_device(
        &self,
        scope: &TenantScope,
        request: &CreateDevice,
        realm: &Realm,
    ) -> ApiResult<CreatedDevice> {
        let user = self.user_field(scope, "user", &request.user).await?;
        let kind = device_kind(request)?;
        let label = free_text("label", request.label.as_deref().unwrap_or_default(), 100)?;
        let new = NewDevice {
            user_id: user.id,
            kind,
            label,
        };
        let device = self.store.devices().create(scope, &new).await?;
        let issued = match self
            .store
            .credentials()
            .issue(scope, device.id, realm)
            .await
        {
            Ok(issued) => issued,
            Err(error) => {
                // No half-made device: without a credential it could never register.
                if let Err(cleanup) = self.store.devices().delete(scope, device.id).await {
                    tracing::error!(error = %cleanup, device = %device.id, "could not remove a device whose credential failed");
                }
                return Err(error.into());
            }
        };
        self.audit(
            Some(scope.tenant_id()),
            "device.created",
            json!({
                "device_id": device.id,
                "user_id": device.user_id,
                "kind": device.kind.as_str(),
                "sip_username": issued.credential.auth_username,
            }),
        )
        .await?;
        Ok(CreatedDevice { device, issued })
    }

    /// The devices of the scoped tenant with their credentials (never a password).
    pub async fn devices(
        &self,
        scope: &TenantScope,
    ) -> ApiResult<Vec<(Device, Option<SipCredential>)>> {
        let devices = self.store.devices().list(scope).await?;
        let mut credentials = self.store.credentials().list(scope).await?;
        Ok(devices
            .into_iter()
            .map(|device| {
                let credential = credentials
                    .iter()
                    .position(|credential| credential.device_id == device.id)
                    .map(|index| credentials.swap_remove(index));
                (device, credential)
            })
            .collect())
    }

    /// A device of the scoped tenant with its credential.
    pub async fn device(
        &self,
        scope: &TenantScope,
        id: DeviceId,
    ) -> ApiResult<(Device, Option<SipCredential>)> {
        let device = self.store.devices().get(scope, id).await?;
        let credential = match self.store.credentials().for_device(scope, id).await {
            Ok(credential) => Some(credential),
            Err(StoreError::NotFound { .. }) => None,
            Err(other) => return Err(other.into()),
        };
        Ok((device, credential))
    }

    /// Changes a device's label and/or enables or disables its credential.
    pub async fn update_device(
        &self,
        scope: &TenantScope,
        id: DeviceId,
        request: &UpdateDevice,
    ) -> ApiResult<(Device, Option<SipCredential>)> {
        self.store.devices().get(scope, id).await?;
        if let Some(label) = &request.label {
            let label = free_text("label", label, 100)?;
            self.store.devices().set_label(scope, id, &label).await?;
        }
        if let Some(enabled) = request.enabled {
            self.store
                .credentials()
                .set_enabled(scope, id, enabled)
                .await?;
        }
        if let Some(exempt) = request.whitelist_exempt {
            self.store
                .devices()
                .set_whitelist_exempt(scope, id, exempt)
                .await?;
        }
        self.audit(
            Some(scope.tenant_id()),
            "device.updated",
            json!({
                "device_id": id,
                "label": request.label,
                "enabled": request.enabled,
                "whitelist_exempt": request.whitelist_exempt,
            }),
        )
        .await?;
        self.device(scope, id).await
    }

    /// Gives a device's credential a new password (same user name); the old one stops
    /// working as soon as the directory reloads.
    pub async fn rotate_device_password(
        &self,
        scope: &TenantScope,
        id: DeviceId,
        realm: &Realm,
    ) -> ApiResult<IssuedCredential> {
        self.store.devices().get(scope, id).await?;
        let issued = self
            .store
            .credentials()
            .rotate_password(scope, id, realm)
            .await?;
        self.audit(
            Some(scope.tenant_id()),
            "device.credential_rotated",
            json!({ "device_id": id, "sip_username": issued.credential.auth_username }),
        )
        .await?;
        Ok(issued)
    }

    /// Deletes a device with its credential and registrations.
    pub async fn delete_device(&self, scope: &TenantScope, id: DeviceId) -> ApiResult<()> {
        self.store.devices().delete(scope, id).await?;
        self.audit(
            Some(scope.tenant_id()),
            "device.deleted",
            json!({ "device_id": id }),
        )
        .await
    }
}

fn device_kind(request: &CreateDevice) -> ApiResult<DeviceKind> {
    let desk_only = |field: &str, present: bool| {
        if present {
            Err(ApiError::invalid(
                field,
                "only desk phones have a vendor, model and MAC address",
            ))
        } else {
            Ok(())
        }
    };
    match request.kind {
        DeviceKindName::DeskPhone => {
            let missing = |field: &str| ApiError::MissingField {
                field: field.to_owned(),
            };
            let vendor = request.vendor.ok_or_else(|| missing("vendor"))?;
            let model = request.model.as_deref().ok_or_else(|| missing("model"))?;
            let model = free_text("model", model, 64)?;
            if model.is_empty() {
                return Err(ApiError::invalid("model", "must not be empty"));
            }
            let mac = request.mac.ok_or_else(|| missing("mac"))?;
            Ok(DeviceKind::DeskPhone { vendor, model, mac })
        }
        other => {
            desk_only("vendor", request.vendor.is_some())?;
            desk_only("model", request.model.is_some())?;
            desk_only("mac", request.mac.is_some())?;
            Ok(if other == DeviceKindName::Softphone {
                DeviceKind::Softphone
            } else {
                DeviceKind::MobileApp
            })
        }
    }
}
