//! Phone numbers (DIDs): the operator's inventory, assigned to tenants and within a tenant
//! to users.

use pbx_domain::{Actor, E164, NumberId, PhoneNumber, UserId};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{affected, int, new_id, now_ms, parse, parse_opt};
use crate::store::{Store, TenantScope};

macro_rules! number_columns {
    () => {
        "id, e164, tenant_id, user_id, created_at, updated_at"
    };
}

/// Phone numbers.
#[derive(Debug, Clone, Copy)]
pub struct Numbers<'a> {
    store: &'a Store,
}

impl Store {
    /// The phone numbers repository.
    pub const fn numbers(&self) -> Numbers<'_> {
        Numbers { store: self }
    }
}

fn number_from_row(row: &AnyRow) -> StoreResult<PhoneNumber> {
    Ok(PhoneNumber {
        id: parse(row, "phone_numbers", "id")?,
        e164: parse(row, "phone_numbers", "e164")?,
        tenant_id: parse_opt(row, "phone_numbers", "tenant_id")?,
        user_id: parse_opt(row, "phone_numbers", "user_id")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

fn require_operator(actor: &Actor) -> StoreResult<()> {
    match actor {
        Actor::System | Actor::Operator => Ok(()),
        _ => Err(StoreError::Forbidden {
            reason: "the number inventory is the operator's",
        }),
    }
}

impl Numbers<'_> {
    /// Adds a number to the free inventory (operator only). Numbers are unique on the
    /// platform (`Conflict { what: "phone number" }`).
    pub async fn add_to_inventory(&self, actor: &Actor, e164: &E164) -> StoreResult<PhoneNumber> {
        require_operator(actor)?;
        let now = now_ms();
        let number = PhoneNumber {
            id: new_id(NumberId::from_parts),
            e164: e164.clone(),
            tenant_id: None,
            user_id: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        sqlx::query(concat!(
            "INSERT INTO phone_numbers (",
            number_columns!(),
            ") VALUES ($1, $2, NULL, NULL, $3, $4)"
        ))
        .bind(number.id.to_string())
        .bind(number.e164.to_string())
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(number)
    }

    /// The free numbers (operator only).
    pub async fn list_free(&self, actor: &Actor) -> StoreResult<Vec<PhoneNumber>> {
        require_operator(actor)?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            number_columns!(),
            " FROM phone_numbers WHERE tenant_id IS NULL ORDER BY e164"
        ))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(number_from_row).collect()
    }

    /// Assigns a free number to the scoped tenant (operator only). A number that is already
    /// assigned gives `Conflict { what: "number assignment" }`.
    pub async fn assign_to_tenant(
        &self,
        actor: &Actor,
        number: NumberId,
        scope: &TenantScope,
    ) -> StoreResult<PhoneNumber> {
        require_operator(actor)?;
        let result = sqlx::query("UPDATE phone_numbers SET tenant_id = $1, updated_at = $2 WHERE id = $3 AND tenant_id IS NULL")
            .bind(scope.tenant_id().to_string())
            .bind(now_ms())
            .bind(number.to_string())
            .execute(self.store.pool())
            .await?;
        if result.rows_affected() == 0 {
            self.by_id(number).await?;
            return Err(StoreError::Conflict {
                what: "number assignment",
            });
        }
        self.store.changed(&[ConfigChange::Number(number)]).await;
        self.get(scope, number).await
    }

    /// Takes a number back from the scoped tenant into the free inventory (operator only).
    pub async fn release(
        &self,
        actor: &Actor,
        scope: &TenantScope,
        number: NumberId,
    ) -> StoreResult<()> {
        require_operator(actor)?;
        let result = sqlx::query(
            "UPDATE phone_numbers SET tenant_id = NULL, user_id = NULL, updated_at = $1 WHERE id = $2 AND tenant_id = $3",
        )
        .bind(now_ms())
        .bind(number.to_string())
        .bind(scope.tenant_id().to_string())
        .execute(self.store.pool())
        .await?;
        affected(result.rows_affected(), "phone number")?;
        self.store.changed(&[ConfigChange::Number(number)]).await;
        Ok(())
    }

    /// Routes a number of the scoped tenant to one of its users (or to none).
    pub async fn assign_user(
        &self,
        scope: &TenantScope,
        number: NumberId,
        user: Option<UserId>,
    ) -> StoreResult<PhoneNumber> {
        let result = sqlx::query("UPDATE phone_numbers SET user_id = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4")
            .bind(user.map(|id| id.to_string()))
            .bind(now_ms())
            .bind(number.to_string())
            .bind(scope.tenant_id().to_string())
            .execute(self.store.pool())
            .await
            .map_err(|error| match StoreError::from(error) {
                StoreError::InvalidReference { .. } => StoreError::InvalidReference { what: "user" },
                other => other,
            })?;
        affected(result.rows_affected(), "phone number")?;
        self.store.changed(&[ConfigChange::Number(number)]).await;
        self.get(scope, number).await
    }

    /// A number of the scoped tenant.
    pub async fn get(&self, scope: &TenantScope, number: NumberId) -> StoreResult<PhoneNumber> {
        let row = sqlx::query(concat!(
            "SELECT ",
            number_columns!(),
            " FROM phone_numbers WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(number.to_string())
        .bind(scope.tenant_id().to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound {
            what: "phone number",
        })?;
        number_from_row(&row)
    }

    /// The numbers of the scoped tenant.
    pub async fn list(&self, scope: &TenantScope) -> StoreResult<Vec<PhoneNumber>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            number_columns!(),
            " FROM phone_numbers WHERE tenant_id = $1 ORDER BY e164"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(number_from_row).collect()
    }

    pub(crate) async fn by_id(&self, number: NumberId) -> StoreResult<PhoneNumber> {
        let row = sqlx::query(concat!(
            "SELECT ",
            number_columns!(),
            " FROM phone_numbers WHERE id = $1"
        ))
        .bind(number.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound {
            what: "phone number",
        })?;
        number_from_row(&row)
    }

    /// Every assigned number (for the directory).
    pub(crate) async fn load_assigned(&self) -> StoreResult<Vec<PhoneNumber>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            number_columns!(),
            " FROM phone_numbers WHERE tenant_id IS NOT NULL"
        ))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(number_from_row).collect()
    }
}
