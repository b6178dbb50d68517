//! The audit/event log.

use pbx_domain::{Actor, Event, EventId, TenantId};
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};
use crate::rows::{corrupt, int, new_id, parse, parse_opt, text};
use crate::store::{Store, TenantScope};

macro_rules! event_columns {
    () => {
        "id, at, tenant_id, kind, payload"
    };
}

/// The event log.
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    store: &'a Store,
}

impl Store {
    /// The event log repository.
    pub const fn events(&self) -> Events<'_> {
        Events { store: self }
    }
}

fn event_from_row(row: &AnyRow) -> StoreResult<Event> {
    let payload = serde_json::from_str(&text(row, "payload")?).map_err(|_| {
        corrupt(
            "events",
            "payload",
            pbx_domain::ValidationError::Inconsistent {
                kind: "event payload",
                reason: "not JSON",
            },
        )
    })?;
    Ok(Event {
        id: parse(row, "events", "id")?,
        at_ms: int(row, "at")?,
        tenant_id: parse_opt(row, "events", "tenant_id")?,
        kind: text(row, "kind")?,
        payload,
    })
}

impl Events<'_> {
    /// Appends an event at `at_ms`.
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
        insert_on(
            self.store.pool(),
            event.id,
            event.at_ms,
            event.tenant_id,
            &event.kind,
            &event.payload.to_string(),
        )
        .await?;
        Ok(event)
    }

    /// The newest `limit` events of the scoped tenant, newest first.
    pub async fn list(&self, scope: &TenantScope, limit: u32) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The newest `limit` events of the whole platform (operator only), newest first.
    pub async fn list_all(&self, actor: &Actor, limit: u32) -> StoreResult<Vec<Event>> {
        if !matches!(actor, Actor::System | Actor::Operator) {
            return Err(StoreError::Forbidden {
                reason: "the platform log is the operator's",
            });
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events ORDER BY at DESC, id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

/// Appends one event row on any executor (pool or a transaction of a batch).
pub(crate) async fn insert_on<'e, E>(
    executor: E,
    id: EventId,
    at_ms: i64,
    tenant: Option<TenantId>,
    kind: &str,
    payload: &str,
) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(concat!(
        "INSERT INTO events (",
        event_columns!(),
        ") VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(id.to_string())
    .bind(at_ms)
    .bind(tenant.map(|id| id.to_string()))
    .bind(kind.to_owned())
    .bind(payload.to_owned())
    .execute(executor)
    .await?;
    Ok(())
}

/// Appends `events` in one multi-row statement (the registrar's batches).
pub(crate) async fn insert_rows<'e, E>(
    executor: E,
    engine: crate::store::Engine,
    events: &[crate::bindings::EventWrite<'_>],
) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if events.is_empty() {
        return Ok(());
    }
    let mut sql = String::with_capacity(64 + events.len() * 24);
    sql.push_str(concat!(
        "INSERT INTO events (",
        event_columns!(),
        ") VALUES "
    ));
    crate::bindings::push_placeholders(&mut sql, events.len(), 5, engine);
    // Audited: the statement text is built from constants and placeholder numbers only.
    let mut query = sqlx::query_with(
        sqlx::AssertSqlSafe(sql),
        crate::bindings::reserved_arguments(events.len() * 5),
    );
    for event in events {
        query = query
            .bind(new_id(EventId::from_parts).to_string())
            .bind(event.at_ms)
            .bind(event.tenant_id.map(|id| id.to_string()))
            .bind(event.kind.to_owned())
            .bind(event.payload.to_owned());
    }
    query.execute(executor).await?;
    Ok(())
}
