//! Registration bindings (the location service), persisted so a restart loses none.
//!
//! The registrar keeps bindings in memory and writes them through to this table; on start
//! it reloads the unexpired ones ([`Bindings::load_active`]). Binding writes are not
//! configuration changes, so they do not bump the directory's change counter.

use std::net::{IpAddr, SocketAddr};

use pbx_domain::{
    Actor, Binding, BindingId, BindingRecord, Flow, PushParams, TenantId, ValidationError,
};
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};
use crate::rows::{
    affected, corrupt, flag, int, int_opt, narrow, new_id, now_ms, parse, parse_opt, text, text_opt,
};
use crate::store::{Engine, Store, TenantScope};

macro_rules! binding_columns {
    () => {
        "id, tenant_id, user_id, device_id, aor, binding_key, contact_uri, instance_id, \
     reg_id, path, pn_provider, pn_prid, pn_param, expires_at, q_milli, call_id, cseq, user_agent, \
     transport, source_ip, source_port, local_addr, connection_id, node_id, sip_alg_detected, \
     sip_alg_reason, created_at, updated_at"
    };
}

/// Registration bindings.
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'a> {
    store: &'a Store,
}

impl Store {
    /// The registration bindings repository.
    pub const fn bindings(&self) -> Bindings<'_> {
        Bindings { store: self }
    }
}

fn unparsable(column: &'static str) -> StoreError {
    corrupt(
        "registration_bindings",
        column,
        ValidationError::Inconsistent {
            kind: column,
            reason: "unparsable",
        },
    )
}

fn binding_from_row(row: &AnyRow) -> StoreResult<Binding> {
    const TABLE: &str = "registration_bindings";
    let path: Vec<String> =
        serde_json::from_str(&text(row, "path")?).map_err(|_| unparsable("path"))?;
    let push = match (text_opt(row, "pn_provider")?, text_opt(row, "pn_prid")?) {
        (Some(provider), Some(prid)) => Some(PushParams {
            provider,
            prid,
            param: text_opt(row, "pn_param")?,
        }),
        _ => None,
    };
    let source_ip: IpAddr = text(row, "source_ip")?
        .parse()
        .map_err(|_| unparsable("source_ip"))?;
    let source_port: u16 = narrow(int(row, "source_port")?, TABLE, "source_port")?;
    let local: SocketAddr = text(row, "local_addr")?
        .parse()
        .map_err(|_| unparsable("local_addr"))?;
    let record = BindingRecord {
        tenant_id: parse(row, TABLE, "tenant_id")?,
        user_id: parse(row, TABLE, "user_id")?,
        device_id: parse_opt(row, TABLE, "device_id")?,
        aor: text(row, "aor")?,
        contact_uri: text(row, "contact_uri")?,
        instance_id: text_opt(row, "instance_id")?,
        reg_id: int_opt(row, "reg_id")?
            .map(|value| narrow(value, TABLE, "reg_id"))
            .transpose()?,
        path,
        push,
        expires_at_ms: int(row, "expires_at")?,
        q_milli: int_opt(row, "q_milli")?
            .map(|value| narrow(value, TABLE, "q_milli"))
            .transpose()?,
        call_id: text(row, "call_id")?,
        cseq: narrow(int(row, "cseq")?, TABLE, "cseq")?,
        user_agent: text_opt(row, "user_agent")?,
        flow: Flow {
            transport: parse(row, TABLE, "transport")?,
            source: SocketAddr::new(source_ip, source_port),
            local,
            connection_id: text_opt(row, "connection_id")?,
            node_id: text(row, "node_id")?,
        },
        sip_alg_detected: flag(row, "sip_alg_detected")?,
        sip_alg_reason: text_opt(row, "sip_alg_reason")?,
    };
    Ok(Binding {
        id: parse(row, TABLE, "id")?,
        record,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

fn require_platform(actor: &Actor) -> StoreResult<()> {
    match actor {
        Actor::System | Actor::Operator => Ok(()),
        _ => Err(StoreError::Forbidden {
            reason: "platform-wide bindings are for the operator",
        }),
    }
}

impl Bindings<'_> {
    /// Inserts a binding, or refreshes the one with the same key in the same AOR (see
    /// [`BindingRecord::key`]); the id and creation time of a refreshed binding are kept.
    /// The record's tenant must be the scope's.
    pub async fn upsert(
        &self,
        scope: &TenantScope,
        record: &BindingRecord,
    ) -> StoreResult<Binding> {
        if record.tenant_id != scope.tenant_id() {
            return Err(StoreError::Forbidden {
                reason: "binding belongs to another tenant",
            });
        }
        let key = record.key();
        upsert_rows(self.store.pool(), self.store.engine(), &[record], now_ms()).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            binding_columns!(),
            " FROM registration_bindings WHERE tenant_id = $1 AND aor = $2 AND binding_key = $3"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(record.aor.clone())
        .bind(key)
        .fetch_one(self.store.pool())
        .await?;
        binding_from_row(&row)
    }

    /// All bindings of the scoped tenant (expired ones included until purged).
    pub async fn list(&self, scope: &TenantScope) -> StoreResult<Vec<Binding>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            binding_columns!(),
            " FROM registration_bindings WHERE tenant_id = $1 ORDER BY aor, id"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(binding_from_row).collect()
    }

    /// The bindings of one AOR of the scoped tenant.
    pub async fn list_for_aor(&self, scope: &TenantScope, aor: &str) -> StoreResult<Vec<Binding>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            binding_columns!(),
            " FROM registration_bindings WHERE tenant_id = $1 AND aor = $2 ORDER BY id"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(aor.to_owned())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(binding_from_row).collect()
    }

    /// Removes one binding of the scoped tenant (unregister, or an admin clearing it).
    pub async fn remove(&self, scope: &TenantScope, id: BindingId) -> StoreResult<()> {
        let result =
            sqlx::query("DELETE FROM registration_bindings WHERE tenant_id = $1 AND id = $2")
                .bind(scope.tenant_id().to_string())
                .bind(id.to_string())
                .execute(self.store.pool())
                .await?;
        affected(result.rows_affected(), "binding")
    }

    /// Removes every binding of an AOR of the scoped tenant (`Contact: *`); returns how many.
    pub async fn remove_for_aor(&self, scope: &TenantScope, aor: &str) -> StoreResult<u64> {
        let result =
            sqlx::query("DELETE FROM registration_bindings WHERE tenant_id = $1 AND aor = $2")
                .bind(scope.tenant_id().to_string())
                .bind(aor.to_owned())
                .execute(self.store.pool())
                .await?;
        Ok(result.rows_affected())
    }

    /// Deletes bindings that expired at or before `now_ms` (a periodic job); returns how many.
    pub async fn purge_expired(&self, actor: &Actor, now_ms: i64) -> StoreResult<u64> {
        require_platform(actor)?;
        let result = sqlx::query("DELETE FROM registration_bindings WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(self.store.pool())
            .await?;
        Ok(result.rows_affected())
    }

    /// Every unexpired binding of every tenant, optionally only those owned by `node_id`:
    /// what a (re)starting registrar loads.
    pub async fn load_active(
        &self,
        actor: &Actor,
        now_ms: i64,
        node_id: Option<&str>,
    ) -> StoreResult<Vec<Binding>> {
        require_platform(actor)?;
        let rows = match node_id {
            Some(node) => {
                sqlx::query(concat!("SELECT ", binding_columns!(), " FROM registration_bindings WHERE expires_at > $1 AND node_id = $2 ORDER BY tenant_id, aor, id"))
                    .bind(now_ms)
                    .bind(node.to_owned())
                    .fetch_all(self.store.pool())
                    .await?
            }
            None => {
                sqlx::query(concat!("SELECT ", binding_columns!(), " FROM registration_bindings WHERE expires_at > $1 ORDER BY tenant_id, aor, id"))
                    .bind(now_ms)
                    .fetch_all(self.store.pool())
                    .await?
            }
        };
        rows.iter().map(binding_from_row).collect()
    }
}

/// One binding write of a registrar batch ([`Bindings::write_batch`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum BindingWrite<'a> {
    /// Insert or refresh (as [`Bindings::upsert`]).
    Upsert(&'a BindingRecord),
    /// Delete the binding `(tenant, aor, key)` if it exists.
    Delete {
        /// Owning tenant.
        tenant_id: TenantId,
        /// The AOR.
        aor: &'a str,
        /// [`BindingRecord::key`].
        key: &'a str,
    },
}

/// An event appended in a registrar batch.
#[derive(Debug, Clone, Copy)]
pub struct EventWrite<'a> {
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// The tenant, when known.
    pub tenant_id: Option<TenantId>,
    /// Dotted kind (`registration.registered`, ...).
    pub kind: &'a str,
    /// The JSON payload, already serialised.
    pub payload: &'a str,
}

impl Bindings<'_> {
    /// Applies binding writes and appends events in ONE transaction (the registrar's
    /// write-behind path: one commit per batch instead of one per REGISTER). Either all of
    /// it commits or none of it does; the caller retries or falls back to smaller writes.
    /// Platform actors only (the records' tenants come from authenticated credentials).
    /// `writes` must name distinct bindings (coalesce first: keep the last write of each
    /// binding); PostgreSQL refuses a statement that upserts one row twice.
    pub async fn write_batch(
        &self,
        actor: &Actor,
        writes: &[BindingWrite<'_>],
        events: &[EventWrite<'_>],
    ) -> StoreResult<()> {
        require_platform(actor)?;
        if writes.is_empty() && events.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for write in writes {
            match *write {
                BindingWrite::Upsert(record) => upserts.push(record),
                BindingWrite::Delete {
                    tenant_id,
                    aor,
                    key,
                } => deletes.push((tenant_id, aor, key)),
            }
        }
        let mut tx = self.store.pool().begin().await?;
        // Multi-row statements: one round trip to the database per chunk, not per row.
        for chunk in upserts.chunks(UPSERT_ROWS) {
            upsert_rows(&mut *tx, self.store.engine(), chunk, now).await?;
        }
        for (tenant_id, aor, key) in deletes {
            sqlx::query(
                "DELETE FROM registration_bindings \
                 WHERE tenant_id = $1 AND aor = $2 AND binding_key = $3",
            )
            .bind(tenant_id.to_string())
            .bind(aor.to_owned())
            .bind(key.to_owned())
            .execute(&mut *tx)
            .await?;
        }
        for chunk in events.chunks(EVENT_ROWS) {
            crate::events::insert_rows(&mut *tx, self.store.engine(), chunk).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Bindings<'_> {
    /// Writes back refreshes: for each record, only what a refresh changes (expiry,
    /// Call-ID, CSeq) on the existing row `(tenant, aor, key)`, in one transaction with
    /// multi-row `UPDATE ... FROM (VALUES ...)` statements (7 parameters a row instead of
    /// the upsert's 28, no ids generated, no text formatting of flows). Returns how many
    /// rows were updated: fewer than `records` when some bindings are not in the store (the
    /// caller upserts those, or knows they were deleted). `records` must name distinct
    /// bindings. Platform actors only.
    pub async fn refresh_batch(
        &self,
        actor: &Actor,
        records: &[&BindingRecord],
    ) -> StoreResult<u64> {
        require_platform(actor)?;
        if records.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let engine = self.store.engine();
        let mut tx = self.store.pool().begin().await?;
        let mut updated = 0;
        for chunk in records.chunks(REFRESH_ROWS) {
            let mut sql = String::with_capacity(400 + chunk.len() * 40);
            sql.push_str(
                "UPDATE registration_bindings SET expires_at = v.column4, call_id = v.column5, \
                 cseq = v.column6, updated_at = v.column7 FROM (VALUES ",
            );
            push_placeholders(&mut sql, chunk.len(), 7, engine);
            sql.push_str(
                ") AS v WHERE registration_bindings.tenant_id = v.column1 \
                 AND registration_bindings.aor = v.column2 \
                 AND registration_bindings.binding_key = v.column3",
            );
            // Audited: the statement text is built from constants and placeholder numbers only.
            let mut query = sqlx::query_with(
                sqlx::AssertSqlSafe(sql),
                reserved_arguments(chunk.len() * 7),
            );
            for record in chunk {
                query = query
                    .bind(record.tenant_id.to_string())
                    .bind(record.aor.clone())
                    .bind(record.key())
                    .bind(record.expires_at_ms)
                    .bind(record.call_id.clone())
                    .bind(i64::from(record.cseq))
                    .bind(now);
            }
            updated += query.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(updated)
    }
}

/// Rows per multi-row refresh statement (7 parameters each).
const REFRESH_ROWS: usize = 512;

/// Rows per multi-row upsert statement (28 parameters each; well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters).
const UPSERT_ROWS: usize = 128;
/// Rows per multi-row event insert (5 parameters each).
const EVENT_ROWS: usize = 512;
/// Columns of `binding_columns!()`.
const BINDING_COLUMNS: usize = 28;

/// Upserts `records` (distinct keys) in one statement.
async fn upsert_rows<'e, E>(
    executor: E,
    engine: Engine,
    records: &[&BindingRecord],
    now: i64,
) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if records.is_empty() {
        return Ok(());
    }
    let mut sql = String::with_capacity(1200 + records.len() * 200);
    sql.push_str(concat!(
        "INSERT INTO registration_bindings (",
        binding_columns!(),
        ") VALUES "
    ));
    push_placeholders(&mut sql, records.len(), BINDING_COLUMNS, engine);
    sql.push_str(
        " ON CONFLICT (tenant_id, aor, binding_key) DO UPDATE SET user_id = excluded.user_id, \
         device_id = excluded.device_id, contact_uri = excluded.contact_uri, \
         instance_id = excluded.instance_id, reg_id = excluded.reg_id, path = excluded.path, \
         pn_provider = excluded.pn_provider, pn_prid = excluded.pn_prid, pn_param = excluded.pn_param, \
         expires_at = excluded.expires_at, q_milli = excluded.q_milli, call_id = excluded.call_id, \
         cseq = excluded.cseq, user_agent = excluded.user_agent, transport = excluded.transport, \
         source_ip = excluded.source_ip, source_port = excluded.source_port, \
         local_addr = excluded.local_addr, connection_id = excluded.connection_id, \
         node_id = excluded.node_id, sip_alg_detected = excluded.sip_alg_detected, \
         sip_alg_reason = excluded.sip_alg_reason, updated_at = excluded.updated_at",
    );
    // Audited: the statement text is built from constants and placeholder numbers only.
    let mut query = sqlx::query_with(
        sqlx::AssertSqlSafe(sql),
        reserved_arguments(records.len() * BINDING_COLUMNS),
    );
    for record in records {
        let path = serde_json::to_string(&record.path).map_err(|_| unparsable("path"))?;
        let push = record.push.as_ref();
        query = query
            .bind(new_id(BindingId::from_parts).to_string())
            .bind(record.tenant_id.to_string())
            .bind(record.user_id.to_string())
            .bind(record.device_id.map(|id| id.to_string()))
            .bind(record.aor.clone())
            .bind(record.key())
            .bind(record.contact_uri.clone())
            .bind(record.instance_id.clone())
            .bind(record.reg_id.map(i64::from))
            .bind(path)
            .bind(push.map(|push| push.provider.clone()))
            .bind(push.map(|push| push.prid.clone()))
            .bind(push.and_then(|push| push.param.clone()))
            .bind(record.expires_at_ms)
            .bind(record.q_milli.map(i64::from))
            .bind(record.call_id.clone())
            .bind(i64::from(record.cseq))
            .bind(record.user_agent.clone())
            .bind(record.flow.transport.as_str())
            .bind(record.flow.source.ip().to_string())
            .bind(i64::from(record.flow.source.port()))
            .bind(record.flow.local.to_string())
            .bind(record.flow.connection_id.clone())
            .bind(record.flow.node_id.clone())
            .bind(i64::from(record.sip_alg_detected))
            .bind(record.sip_alg_reason.clone())
            .bind(now)
            .bind(now);
    }
    query
        .execute(executor)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::InvalidReference { .. } => StoreError::InvalidReference {
                what: "user or device",
            },
            other => other,
        })?;
    Ok(())
}

/// Arguments with room for `values` bound values. A multi-row statement binds thousands of
/// values one by one; into a growing vector that meant a reallocation (and fresh allocator
/// pages) at every doubling — 8 % of the server's CPU under call load (the CDR batches).
pub(crate) fn reserved_arguments(values: usize) -> sqlx::any::AnyArguments {
    use sqlx::Arguments as _;
    let mut arguments = sqlx::any::AnyArguments::default();
    arguments.reserve(values, 0);
    arguments
}

/// Appends `($1, …, $c), ($c+1, …)` for `rows` rows of `columns` placeholders each (a
/// multi-row `VALUES` list; numbered placeholders work on both engines).
///
/// SQLite gets anonymous `?` placeholders: sqlx binds each argument after asking SQLite for
/// its parameter's name, which SQLite finds by a linear scan of the named parameters, so
/// numbered ones cost O(n²) per statement (46 % of the server's CPU with 3,584 parameters).
pub(crate) fn push_placeholders(sql: &mut String, rows: usize, columns: usize, engine: Engine) {
    use std::fmt::Write as _;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match engine {
                Engine::Sqlite => sql.push('?'),
                _ => {
                    let _ = write!(sql, "${}", row * columns + column + 1);
                }
            }
        }
        sql.push(')');
    }
}
