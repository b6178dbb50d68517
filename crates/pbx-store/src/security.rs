//! Fraud-guard persistence (issue 5): the guard's state snapshot per node, the typed
//! security event log, and the tenants' outbound destination exceptions.
//!
//! The snapshot is opaque JSON written by the server (`pbx-policy` state); the store only
//! keeps the newest one per node. Security events are [`Event`] rows in their own table, so
//! they can be listed per tenant and by kind without scanning the audit log.

use pbx_domain::{Actor, Event, EventId, TenantId};
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};
use crate::rows::{corrupt, int, new_id, now_ms, parse, parse_opt, text};
use crate::store::{Store, TenantScope};

/// The security repository.
#[derive(Debug, Clone, Copy)]
pub struct Security<'a> {
    store: &'a Store,
}

impl Store {
    /// The fraud-guard repository (state snapshots and security events).
    pub const fn security(&self) -> Security<'_> {
        Security { store: self }
    }
}

fn event_from_row(row: &AnyRow) -> StoreResult<Event> {
    let payload = serde_json::from_str(&text(row, "payload")?).map_err(|_| {
        corrupt(
            "security_events",
            "payload",
            pbx_domain::ValidationError::Inconsistent {
                kind: "security event payload",
                reason: "not JSON",
            },
        )
    })?;
    Ok(Event {
        id: parse(row, "security_events", "id")?,
        at_ms: int(row, "at")?,
        tenant_id: parse_opt(row, "security_events", "tenant_id")?,
        kind: text(row, "kind")?,
        payload,
    })
}

impl Security<'_> {
    /// Stores `state` (JSON) as the newest snapshot of `node_id`, replacing the previous one.
    pub async fn save_state(&self, node_id: &str, at_ms: i64, state: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO security_state (node_id, saved_at, state) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id) DO UPDATE SET saved_at = excluded.saved_at, \
             state = excluded.state",
        )
        .bind(node_id.to_owned())
        .bind(at_ms)
        .bind(state.to_owned())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The newest snapshot of `node_id`: when it was saved and the JSON text.
    pub async fn load_state(&self, node_id: &str) -> StoreResult<Option<(i64, String)>> {
        let row = sqlx::query("SELECT saved_at, state FROM security_state WHERE node_id = $1")
            .bind(node_id.to_owned())
            .fetch_optional(self.store.pool())
            .await?;
        row.map(|row| Ok((int(&row, "saved_at")?, text(&row, "state")?)))
            .transpose()
    }

    /// Appends a security event of `kind` (e.g. `source_banned`) at `at_ms`.
    pub async fn append(
        &self,
        at_ms: i64,
        tenant: Option<TenantId>,
        kind: &str,
        payload: &serde_json::Value,
    ) -> StoreResult<Event> {
        let event = Event {
            id: new_id(EventId::from_parts),
            at_ms,
            tenant_id: tenant,
            kind: kind.to_owned(),
            payload: payload.clone(),
        };
        sqlx::query(
            "INSERT INTO security_events (id, at, tenant_id, kind, payload) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.id.to_string())
        .bind(event.at_ms)
        .bind(event.tenant_id.map(|id| id.to_string()))
        .bind(event.kind.clone())
        .bind(event.payload.to_string())
        .execute(self.store.pool())
        .await?;
        Ok(event)
    }

    /// The newest `limit` security events of the scoped tenant (of one `kind` when given),
    /// newest first.
    pub async fn list(
        &self,
        scope: &TenantScope,
        kind: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let query = match kind {
            Some(kind) => sqlx::query(
                "SELECT id, at, tenant_id, kind, payload FROM security_events \
                 WHERE tenant_id = $1 AND kind = $2 ORDER BY at DESC, id DESC LIMIT $3",
            )
            .bind(scope.tenant_id().to_string())
            .bind(kind.to_owned()),
            None => sqlx::query(
                "SELECT id, at, tenant_id, kind, payload FROM security_events \
                 WHERE tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(scope.tenant_id().to_string()),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The newest `limit` security events of the whole platform (operator only), of one
    /// `kind` when given, newest first.
    pub async fn list_all(
        &self,
        actor: &Actor,
        kind: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        if !matches!(actor, Actor::System | Actor::Operator) {
            return Err(StoreError::Forbidden {
                reason: "the platform security log is the operator's",
            });
        }
        let query = match kind {
            Some(kind) => sqlx::query(
                "SELECT id, at, tenant_id, kind, payload FROM security_events \
                 WHERE kind = $1 ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(kind.to_owned()),
            None => sqlx::query(
                "SELECT id, at, tenant_id, kind, payload FROM security_events \
                 ORDER BY at DESC, id DESC LIMIT $1",
            ),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The scoped tenant's outbound destination exceptions (`None` when never set).
    pub async fn destination_exceptions(
        &self,
        scope: &TenantScope,
    ) -> StoreResult<Option<DestinationExceptions>> {
        let row = sqlx::query(
            "SELECT tenant_id, allow_prefixes, block_prefixes, updated_at \
             FROM tenant_destination_exceptions WHERE tenant_id = $1",
        )
        .bind(scope.tenant_id().to_string())
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(exceptions_from_row).transpose()
    }

    /// Replaces the scoped tenant's outbound destination exceptions (prefixes as given; the
    /// API validates and normalises them).
    pub async fn set_destination_exceptions(
        &self,
        scope: &TenantScope,
        allow: &[String],
        block: &[String],
    ) -> StoreResult<DestinationExceptions> {
        let exceptions = DestinationExceptions {
            tenant_id: scope.tenant_id(),
            allow: allow.to_vec(),
            block: block.to_vec(),
            updated_at_ms: now_ms(),
        };
        let list = |prefixes: &[String]| serde_json::Value::from(prefixes.to_vec()).to_string();
        sqlx::query(
            "INSERT INTO tenant_destination_exceptions \
             (tenant_id, allow_prefixes, block_prefixes, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET allow_prefixes = excluded.allow_prefixes, \
             block_prefixes = excluded.block_prefixes, updated_at = excluded.updated_at",
        )
        .bind(scope.tenant_id().to_string())
        .bind(list(allow))
        .bind(list(block))
        .bind(exceptions.updated_at_ms)
        .execute(self.store.pool())
        .await?;
        Ok(exceptions)
    }

    /// Every tenant's destination exceptions (the guard loads them at start). System or
    /// operator only.
    pub async fn all_destination_exceptions(
        &self,
        actor: &Actor,
    ) -> StoreResult<Vec<DestinationExceptions>> {
        if !matches!(actor, Actor::System | Actor::Operator) {
            return Err(StoreError::Forbidden {
                reason: "every tenant's exceptions are the platform's",
            });
        }
        let rows = sqlx::query(
            "SELECT tenant_id, allow_prefixes, block_prefixes, updated_at \
             FROM tenant_destination_exceptions ORDER BY tenant_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(exceptions_from_row).collect()
    }
}

/// A tenant's explicit outbound destination exceptions: E.164 prefixes it may call although
/// blocked by default, and extra prefixes it blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationExceptions {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Prefixes allowed although blocked by default (`+31909`).
    pub allow: Vec<String>,
    /// Extra prefixes blocked.
    pub block: Vec<String>,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

fn prefix_list(row: &AnyRow, column: &'static str) -> StoreResult<Vec<String>> {
    serde_json::from_str(&text(row, column)?).map_err(|_| {
        corrupt(
            "tenant_destination_exceptions",
            column,
            pbx_domain::ValidationError::Inconsistent {
                kind: "destination exception prefixes",
                reason: "not a JSON array of text",
            },
        )
    })
}

fn exceptions_from_row(row: &AnyRow) -> StoreResult<DestinationExceptions> {
    Ok(DestinationExceptions {
        tenant_id: parse(row, "tenant_destination_exceptions", "tenant_id")?,
        allow: prefix_list(row, "allow_prefixes")?,
        block: prefix_list(row, "block_prefixes")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}
