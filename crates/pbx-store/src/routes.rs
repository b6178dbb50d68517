//! Outbound routes: destination prefix → ordered trunks, per tenant or operator-wide.

use pbx_domain::{Actor, Route, RouteId, RouteTrunk, TrunkId};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{affected, corrupt, int, new_id, now_ms, parse, parse_opt, text};
use crate::store::Store;
use crate::trunks::{OwnedTable, Owner, json_error};

macro_rules! route_columns {
    () => {
        "id, tenant_id, prefix, trunks, description, created_at, updated_at"
    };
}

/// The routes table.
const ROUTES: OwnedTable = OwnedTable {
    table: "routes",
    columns: route_columns!(),
    what: "route",
};

/// Routes.
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    store: &'a Store,
}

impl Store {
    /// The outbound routes repository.
    pub const fn routes(&self) -> Routes<'_> {
        Routes { store: self }
    }
}

fn route_from_row(row: &AnyRow) -> StoreResult<Route> {
    let trunks: Vec<RouteTrunk> = serde_json::from_str(&text(row, "trunks")?)
        .map_err(|_| corrupt("routes", "trunks", json_error()))?;
    Ok(Route {
        id: parse(row, "routes", "id")?,
        tenant_id: parse_opt(row, "routes", "tenant_id")?,
        prefix: text(row, "prefix")?,
        trunks,
        description: text(row, "description")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

fn prefix_conflict(error: sqlx::Error) -> StoreError {
    match StoreError::from(error) {
        StoreError::Conflict { .. } => StoreError::Conflict {
            what: "route prefix",
        },
        other => other,
    }
}

fn trunks_json(trunks: &[RouteTrunk]) -> StoreResult<String> {
    serde_json::to_string(trunks).map_err(|_| corrupt("routes", "trunks", json_error()))
}

impl Routes<'_> {
    /// Every trunk of the list must exist and be usable by the owner: the owner's own or an
    /// operator trunk (`InvalidReference { what: "trunk" }` otherwise).
    async fn check_trunks(&self, owner: Owner<'_>, trunks: &[RouteTrunk]) -> StoreResult<()> {
        for entry in trunks {
            let row = sqlx::query("SELECT tenant_id FROM trunks WHERE id = $1")
                .bind(entry.trunk_id.to_string())
                .fetch_optional(self.store.pool())
                .await?
                .ok_or(StoreError::InvalidReference { what: "trunk" })?;
            let trunk_owner: Option<pbx_domain::TenantId> = parse_opt(&row, "trunks", "tenant_id")?;
            if trunk_owner.is_some() && trunk_owner != owner.tenant_id() {
                return Err(StoreError::InvalidReference { what: "trunk" });
            }
        }
        Ok(())
    }

    /// Creates a route for `owner`. `prefix` must already be checked
    /// ([`pbx_domain::parse_route_prefix`]); one route per owner and prefix.
    pub async fn create(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        prefix: &str,
        trunks: &[RouteTrunk],
        description: &str,
    ) -> StoreResult<Route> {
        owner.check(actor)?;
        self.check_trunks(owner, trunks).await?;
        let id = new_id(RouteId::from_parts);
        let now = now_ms();
        sqlx::query(concat!(
            "INSERT INTO routes (",
            route_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(id.to_string())
        .bind(owner.tenant_id().map(|t| t.to_string()))
        .bind(prefix.to_owned())
        .bind(trunks_json(trunks)?)
        .bind(description.to_owned())
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(prefix_conflict)?;
        self.store.changed(&[ConfigChange::Routing]).await;
        self.get(actor, owner, id).await
    }

    /// Replaces a route's prefix, trunks and description.
    pub async fn update(
        &self,
        actor: &Actor,
        owner: Owner<'_>,
        id: RouteId,
        prefix: &str,
        trunks: &[RouteTrunk],
        description: &str,
    ) -> StoreResult<Route> {
        owner.check(actor)?;
        self.check_trunks(owner, trunks).await?;
        let (filter, owner_value) = owner.filter(5);
        let sql = format!(
            "UPDATE routes SET prefix = $1, trunks = $2, description = $3, updated_at = $4 \
             WHERE {filter} AND id = $6"
        );
        // Audited: fixed fragments only.
        let result = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(prefix.to_owned())
            .bind(trunks_json(trunks)?)
            .bind(description.to_owned())
            .bind(now_ms())
            .bind(owner_value)
            .bind(id.to_string())
            .execute(self.store.pool())
            .await
            .map_err(prefix_conflict)?;
        affected(result.rows_affected(), "route")?;
        self.store.changed(&[ConfigChange::Routing]).await;
        self.get(actor, owner, id).await
    }

    /// One route of `owner`.
    pub async fn get(&self, actor: &Actor, owner: Owner<'_>, id: RouteId) -> StoreResult<Route> {
        owner.check(actor)?;
        let row = ROUTES.get(self.store, owner, id.to_string()).await?;
        route_from_row(&row)
    }

    /// The routes of `owner`, by prefix.
    pub async fn list(&self, actor: &Actor, owner: Owner<'_>) -> StoreResult<Vec<Route>> {
        owner.check(actor)?;
        let rows = ROUTES.list(self.store, owner, "prefix").await?;
        rows.iter().map(route_from_row).collect()
    }

    /// Deletes a route of `owner`.
    pub async fn delete(&self, actor: &Actor, owner: Owner<'_>, id: RouteId) -> StoreResult<()> {
        owner.check(actor)?;
        ROUTES.delete(self.store, owner, id.to_string()).await?;
        self.store.changed(&[ConfigChange::Routing]).await;
        Ok(())
    }

    /// Every route (for the routing snapshot).
    pub async fn load_all(&self) -> StoreResult<Vec<Route>> {
        let rows = sqlx::query(concat!("SELECT ", route_columns!(), " FROM routes"))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(route_from_row).collect()
    }

    /// Removes a deleted trunk from every route's list.
    pub(crate) async fn forget_trunk(&self, trunk: TrunkId) -> StoreResult<()> {
        for route in self.load_all().await? {
            if route.trunks.iter().any(|entry| entry.trunk_id == trunk) {
                let kept: Vec<RouteTrunk> = route
                    .trunks
                    .iter()
                    .copied()
                    .filter(|entry| entry.trunk_id != trunk)
                    .collect();
                sqlx::query("UPDATE routes SET trunks = $1, updated_at = $2 WHERE id = $3")
                    .bind(trunks_json(&kept)?)
                    .bind(now_ms())
                    .bind(route.id.to_string())
                    .execute(self.store.pool())
                    .await?;
            }
        }
        Ok(())
    }
}
