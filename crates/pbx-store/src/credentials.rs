//! SIP credentials of devices: generated, shown once, stored as HA1 digests only.

use pbx_domain::credentials::{AUTH_USER_NAME_RANDOM_BYTES, PASSWORD_RANDOM_BYTES};
use pbx_domain::{
    AuthUserName, CredentialId, DeviceId, DigestAlgorithm, Ha1, Realm, SipCredential, SipPassword,
    UserId,
};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{affected, corrupt, flag, int, new_id, now_ms, parse, text};
use crate::store::{Store, TenantScope};

macro_rules! credential_select {
    () => {
        "SELECT c.id, c.tenant_id, d.user_id, c.device_id, c.auth_username, c.realm, \
     c.ha1_md5, c.ha1_sha256, c.enabled, c.created_at, c.updated_at \
     FROM sip_credentials c JOIN devices d ON d.tenant_id = c.tenant_id AND d.id = c.device_id"
    };
}

/// How often a new auth user name is drawn if the random one is taken (80 random bits:
/// a second draw essentially never happens).
const USER_NAME_ATTEMPTS: usize = 3;

/// SIP credentials, always within one tenant scope.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    store: &'a Store,
}

/// A credential just created or re-keyed, with its password. The password is in this value
/// only: hand it to the user once; the store keeps HA1 digests.
#[derive(Debug, Clone)]
pub struct IssuedCredential {
    /// The stored credential.
    pub credential: SipCredential,
    /// The generated password.
    pub password: SipPassword,
}

impl Store {
    /// The SIP credentials repository.
    pub const fn credentials(&self) -> Credentials<'_> {
        Credentials { store: self }
    }
}

fn credential_from_row(row: &AnyRow) -> StoreResult<SipCredential> {
    let ha1 = |algorithm, column| {
        text(row, column).and_then(|value| {
            Ha1::parse(algorithm, &value)
                .map_err(|source| corrupt("sip_credentials", column, source))
        })
    };
    Ok(SipCredential {
        id: parse(row, "sip_credentials", "id")?,
        tenant_id: parse(row, "sip_credentials", "tenant_id")?,
        user_id: parse(row, "devices", "user_id")?,
        device_id: parse(row, "sip_credentials", "device_id")?,
        auth_username: text(row, "auth_username").and_then(|value| {
            AuthUserName::parse(&value)
                .map_err(|source| corrupt("sip_credentials", "auth_username", source))
        })?,
        realm: parse(row, "sip_credentials", "realm")?,
        ha1_md5: ha1(DigestAlgorithm::Md5, "ha1_md5")?,
        ha1_sha256: ha1(DigestAlgorithm::Sha256, "ha1_sha256")?,
        enabled: flag(row, "enabled")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

fn digests(user: &AuthUserName, realm: &Realm, password: &SipPassword) -> (Ha1, Ha1) {
    (
        Ha1::compute(DigestAlgorithm::Md5, user, realm, password),
        Ha1::compute(DigestAlgorithm::Sha256, user, realm, password),
    )
}

impl Credentials<'_> {
    /// Creates the credential of a device of the scoped tenant: a fresh, globally unique auth
    /// user name and a 128-bit password, stored as MD5 and SHA-256 HA1 for `realm` (the
    /// platform realm). A device has at most one credential (`Conflict { what: "device
    /// credential" }`); use [`Credentials::rotate_password`] to re-key.
    pub async fn issue(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        realm: &Realm,
    ) -> StoreResult<IssuedCredential> {
        let owner = self.store.devices().get(scope, device).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let user = AuthUserName::generate(&rand::random::<[u8; AUTH_USER_NAME_RANDOM_BYTES]>());
            let password = SipPassword::generate(&rand::random::<[u8; PASSWORD_RANDOM_BYTES]>());
            let (ha1_md5, ha1_sha256) = digests(&user, realm, &password);
            let now = now_ms();
            let credential = SipCredential {
                id: new_id(CredentialId::from_parts),
                tenant_id: scope.tenant_id(),
                user_id: owner.user_id,
                device_id: device,
                auth_username: user,
                realm: realm.clone(),
                ha1_md5,
                ha1_sha256,
                enabled: true,
                created_at_ms: now,
                updated_at_ms: now,
            };
            let inserted = sqlx::query(
                "INSERT INTO sip_credentials (id, tenant_id, device_id, auth_username, realm, ha1_md5, \
                 ha1_sha256, enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(credential.id.to_string())
            .bind(credential.tenant_id.to_string())
            .bind(credential.device_id.to_string())
            .bind(credential.auth_username.to_string())
            .bind(credential.realm.to_string())
            .bind(credential.ha1_md5.as_hex().to_owned())
            .bind(credential.ha1_sha256.as_hex().to_owned())
            .bind(1_i64)
            .bind(now)
            .bind(now)
            .execute(self.store.pool())
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => {
                    self.store
                        .changed(&[ConfigChange::User(owner.tenant_id, owner.user_id)])
                        .await;
                    return Ok(IssuedCredential {
                        credential,
                        password,
                    });
                }
                Err(StoreError::Conflict {
                    what: "auth user name",
                }) if attempt < USER_NAME_ATTEMPTS => {
                    tracing::warn!("generated auth user name collided; drawing another");
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Gives a device's credential a new password (same user name), for `realm`. The old
    /// password stops working as soon as the directory reloads.
    pub async fn rotate_password(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        realm: &Realm,
    ) -> StoreResult<IssuedCredential> {
        let current = self.for_device(scope, device).await?;
        let password = SipPassword::generate(&rand::random::<[u8; PASSWORD_RANDOM_BYTES]>());
        let (ha1_md5, ha1_sha256) = digests(&current.auth_username, realm, &password);
        let now = now_ms();
        let result = sqlx::query(
            "UPDATE sip_credentials SET realm = $1, ha1_md5 = $2, ha1_sha256 = $3, updated_at = $4 \
             WHERE tenant_id = $5 AND device_id = $6",
        )
        .bind(realm.to_string())
        .bind(ha1_md5.as_hex().to_owned())
        .bind(ha1_sha256.as_hex().to_owned())
        .bind(now)
        .bind(scope.tenant_id().to_string())
        .bind(device.to_string())
        .execute(self.store.pool())
        .await?;
        affected(result.rows_affected(), "credential")?;
        self.store
            .changed(&[ConfigChange::User(current.tenant_id, current.user_id)])
            .await;
        let credential = SipCredential {
            realm: realm.clone(),
            ha1_md5,
            ha1_sha256,
            updated_at_ms: now,
            ..current
        };
        Ok(IssuedCredential {
            credential,
            password,
        })
    }

    /// Enables or disables a device's credential.
    pub async fn set_enabled(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        enabled: bool,
    ) -> StoreResult<()> {
        let owner = self.for_device(scope, device).await?;
        let result = sqlx::query(
            "UPDATE sip_credentials SET enabled = $1, updated_at = $2 WHERE tenant_id = $3 AND device_id = $4",
        )
        .bind(i64::from(enabled))
        .bind(now_ms())
        .bind(scope.tenant_id().to_string())
        .bind(device.to_string())
        .execute(self.store.pool())
        .await?;
        affected(result.rows_affected(), "credential")?;
        self.store
            .changed(&[ConfigChange::User(owner.tenant_id, owner.user_id)])
            .await;
        Ok(())
    }

    /// The credential of a device of the scoped tenant.
    pub async fn for_device(
        &self,
        scope: &TenantScope,
        device: DeviceId,
    ) -> StoreResult<SipCredential> {
        let row = sqlx::query(concat!(
            credential_select!(),
            " WHERE c.tenant_id = $1 AND c.device_id = $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(device.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "credential" })?;
        credential_from_row(&row)
    }

    /// All credentials of the scoped tenant.
    pub async fn list(&self, scope: &TenantScope) -> StoreResult<Vec<SipCredential>> {
        let rows = sqlx::query(concat!(
            credential_select!(),
            " WHERE c.tenant_id = $1 ORDER BY c.id"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(credential_from_row).collect()
    }

    /// The credentials of one user's devices (for the directory).
    pub(crate) async fn for_user(
        &self,
        scope: &TenantScope,
        user: UserId,
    ) -> StoreResult<Vec<SipCredential>> {
        let rows = sqlx::query(concat!(
            credential_select!(),
            " WHERE d.tenant_id = $1 AND d.user_id = $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(user.to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(credential_from_row).collect()
    }

    /// Every credential (for the directory).
    pub(crate) async fn load_all(&self) -> StoreResult<Vec<SipCredential>> {
        let rows = sqlx::query(credential_select!())
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(credential_from_row).collect()
    }
}
