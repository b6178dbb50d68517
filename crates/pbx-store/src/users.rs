//! Users (extensions) of a tenant.

use pbx_domain::{ClassOfService, DisplayName, Extension, NewUser, User, UserId};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{affected, int, new_id, now_ms, parse};
use crate::store::{Store, TenantScope};

macro_rules! user_columns {
    () => {
        "id, tenant_id, extension, display_name, class_of_service, created_at, updated_at"
    };
}

/// Users, always within one tenant scope.
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    store: &'a Store,
}

/// The changeable fields of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpdate {
    /// New extension (unique within the tenant).
    pub extension: Extension,
    /// New display name.
    pub display_name: DisplayName,
    /// New class of service.
    pub class_of_service: ClassOfService,
}

impl Store {
    /// The users repository.
    pub const fn users(&self) -> Users<'_> {
        Users { store: self }
    }
}

pub(crate) fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: parse(row, "users", "id")?,
        tenant_id: parse(row, "users", "tenant_id")?,
        extension: parse(row, "users", "extension")?,
        display_name: parse(row, "users", "display_name")?,
        class_of_service: parse(row, "users", "class_of_service")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

impl Users<'_> {
    /// Creates a user; the extension must be free in the tenant (`Conflict { what: "extension" }`).
    pub async fn create(&self, scope: &TenantScope, new: &NewUser) -> StoreResult<User> {
        let now = now_ms();
        let user = User {
            id: new_id(UserId::from_parts),
            tenant_id: scope.tenant_id(),
            extension: new.extension.clone(),
            display_name: new.display_name.clone(),
            class_of_service: new.class_of_service,
            created_at_ms: now,
            updated_at_ms: now,
        };
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(user.id.to_string())
        .bind(user.tenant_id.to_string())
        .bind(user.extension.to_string())
        .bind(user.display_name.to_string())
        .bind(user.class_of_service.as_str())
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        self.store
            .changed(&[ConfigChange::User(user.tenant_id, user.id)])
            .await;
        Ok(user)
    }

    /// A user of the scoped tenant.
    pub async fn get(&self, scope: &TenantScope, id: UserId) -> StoreResult<User> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(id.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "user" })?;
        user_from_row(&row)
    }

    /// The user with `extension` in the scoped tenant.
    pub async fn by_extension(
        &self,
        scope: &TenantScope,
        extension: &Extension,
    ) -> StoreResult<User> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = $1 AND extension = $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(extension.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "user" })?;
        user_from_row(&row)
    }

    /// All users of the scoped tenant, by extension.
    pub async fn list(&self, scope: &TenantScope) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = $1 ORDER BY extension"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Changes a user of the scoped tenant.
    pub async fn update(
        &self,
        scope: &TenantScope,
        id: UserId,
        update: &UserUpdate,
    ) -> StoreResult<User> {
        let result = sqlx::query(
            "UPDATE users SET extension = $1, display_name = $2, class_of_service = $3, updated_at = $4 \
             WHERE tenant_id = $5 AND id = $6",
        )
        .bind(update.extension.to_string())
        .bind(update.display_name.to_string())
        .bind(update.class_of_service.as_str())
        .bind(now_ms())
        .bind(scope.tenant_id().to_string())
        .bind(id.to_string())
        .execute(self.store.pool())
        .await?;
        affected(result.rows_affected(), "user")?;
        self.store
            .changed(&[ConfigChange::User(scope.tenant_id(), id)])
            .await;
        self.get(scope, id).await
    }

    /// Deletes a user with its devices, credentials, whitelist entries and bindings; numbers
    /// that rang the user stay with the tenant, unassigned.
    pub async fn delete(&self, scope: &TenantScope, id: UserId) -> StoreResult<()> {
        let tenant = scope.tenant_id().to_string();
        let mut transaction = self.store.pool().begin().await?;
        let unassigned = sqlx::query(
            "UPDATE phone_numbers SET user_id = NULL, updated_at = $1 \
             WHERE tenant_id = $2 AND user_id = $3 RETURNING id",
        )
        .bind(now_ms())
        .bind(&tenant)
        .bind(id.to_string())
        .fetch_all(&mut *transaction)
        .await?;
        let result = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(&tenant)
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        affected(result.rows_affected(), "user")?;
        transaction.commit().await?;
        let mut changes = vec![ConfigChange::User(scope.tenant_id(), id)];
        for row in &unassigned {
            changes.push(ConfigChange::Number(parse(row, "phone_numbers", "id")?));
        }
        self.store.changed(&changes).await;
        Ok(())
    }

    /// Every user (for the directory).
    pub(crate) async fn load_all(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users"))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(user_from_row).collect()
    }
}
