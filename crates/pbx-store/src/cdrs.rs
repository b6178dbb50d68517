//! Call detail records: written open at call start, replaced by the final record at the end,
//! closed as `interrupted` at the next start when the node died during the call.

use pbx_domain::{
    CallDirection, CallRecord, CdrId, CdrState, Disposition, MediaStreamStats, UserId,
};
use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;

use crate::bindings::push_placeholders;
use crate::error::{StoreError, StoreResult};
use crate::rows::{corrupt, int, int_opt, narrow, parse, parse_opt, text, text_opt};
use crate::store::{Engine, Store, TenantScope};
use crate::trunks::json_error;

macro_rules! cdr_columns {
    () => {
        "id, tenant_id, user_id, device_id, direction, caller, callee_dialled, callee, trunk_id, \
         sip_call_id, node_id, start_at, ring_at, answer_at, end_at, last_seen_at, duration_secs, \
         billable_secs, disposition, sip_status, hangup_cause, hangup_side, media, state"
    };
}

/// Filters for listing a tenant's CDRs (all optional), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrFilter {
    /// Calls that started at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Calls that started before this time.
    pub to_ms: Option<i64>,
    /// Calls of this user.
    pub user: Option<UserId>,
    /// Calls in this direction.
    pub direction: Option<CallDirection>,
    /// Calls that ended this way.
    pub disposition: Option<Disposition>,
    /// Open or closed records only.
    pub state: Option<CdrState>,
    /// Calls where the caller, the callee or the dialled string contains this text.
    pub number: Option<String>,
    /// Keyset cursor: only records that sort after this (start, id) — the last record of
    /// the previous page.
    pub after: Option<(i64, CdrId)>,
    /// Page size (1..=1000).
    pub limit: u32,
}

/// CDRs.
#[derive(Debug, Clone, Copy)]
pub struct Cdrs<'a> {
    store: &'a Store,
}

impl Store {
    /// The CDR repository.
    pub const fn cdrs(&self) -> Cdrs<'_> {
        Cdrs { store: self }
    }
}

fn cdr_from_row(row: &AnyRow) -> StoreResult<CallRecord> {
    let media: Vec<MediaStreamStats> = serde_json::from_str(&text(row, "media")?)
        .map_err(|_| corrupt("cdrs", "media", json_error()))?;
    Ok(CallRecord {
        id: parse(row, "cdrs", "id")?,
        tenant_id: parse(row, "cdrs", "tenant_id")?,
        user_id: parse_opt(row, "cdrs", "user_id")?,
        device_id: parse_opt(row, "cdrs", "device_id")?,
        direction: parse(row, "cdrs", "direction")?,
        caller: text(row, "caller")?,
        callee_dialled: text(row, "callee_dialled")?,
        callee: text(row, "callee")?,
        trunk_id: parse_opt(row, "cdrs", "trunk_id")?,
        sip_call_id: text(row, "sip_call_id")?,
        node_id: text(row, "node_id")?,
        start_ms: int(row, "start_at")?,
        ring_ms: int_opt(row, "ring_at")?,
        answer_ms: int_opt(row, "answer_at")?,
        end_ms: int_opt(row, "end_at")?,
        last_seen_ms: int(row, "last_seen_at")?,
        duration_secs: int(row, "duration_secs")?,
        billable_secs: int(row, "billable_secs")?,
        disposition: parse_opt(row, "cdrs", "disposition")?,
        sip_status: int_opt(row, "sip_status")?
            .map(|status| narrow(status, "cdrs", "sip_status"))
            .transpose()?,
        hangup_cause: text_opt(row, "hangup_cause")?,
        hangup_side: parse_opt(row, "cdrs", "hangup_side")?,
        media,
        state: parse(row, "cdrs", "state")?,
    })
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Cdrs<'_> {
    /// Writes `record`: inserts it, or replaces the stored one while that is still open. A
    /// closed record is final: replaying an older open copy (from the journal) cannot reopen
    /// it, and a second close does not change it. Ring and answer times, once stored, are not
    /// erased by an older open copy, and the last-seen time only moves forward.
    pub async fn upsert(&self, record: &CallRecord) -> StoreResult<()> {
        upsert_rows(
            self.store.pool(),
            self.store.engine(),
            std::slice::from_ref(record),
        )
        .await
    }

    /// Writes `records` in ONE transaction, leaving the table as writing them one by one in
    /// order with [`Cdrs::upsert`] would (the same statement, with one row per record): all
    /// of them or, on an error, none. Several records of one call are folded first
    /// ([`Cdrs::coalesce`]), as PostgreSQL refuses to update a row twice in one statement.
    /// A CDR writer's batch: one commit for hundreds of call states instead of one each.
    pub async fn upsert_many(&self, records: &[CallRecord]) -> StoreResult<()> {
        let coalesced;
        let rows = if has_repeated_ids(records) {
            coalesced = Self::coalesce(records);
            coalesced.as_slice()
        } else {
            records
        };
        let engine = self.store.engine();
        let mut chunks = statement_chunks(rows);
        match (chunks.next(), chunks.next()) {
            (None, _) => Ok(()),
            // One statement is atomic on its own: no BEGIN/COMMIT round trips.
            (Some(all), None) => upsert_rows(self.store.pool(), engine, all).await,
            (Some(first), Some(second)) => {
                let mut transaction = self.store.pool().begin().await?;
                for chunk in [first, second].into_iter().chain(chunks) {
                    upsert_rows(&mut *transaction, engine, chunk).await?;
                }
                transaction.commit().await?;
                Ok(())
            }
        }
    }

    /// One record per call: each call's writes folded, in order, into the record that
    /// writing them one by one with [`Cdrs::upsert`] would store on a call not yet in the
    /// table (the SQL rule, in memory: a closed record is final, ring and answer times are
    /// kept, the last-seen time only moves forward, the call's identity — tenant, direction,
    /// dialled number, SIP Call-ID, node, start — is the first write's). Calls keep the order
    /// of their first write.
    pub fn coalesce(records: &[CallRecord]) -> Vec<CallRecord> {
        let mut folded: Vec<CallRecord> = Vec::with_capacity(records.len());
        let mut index: HashMap<CdrId, usize> = HashMap::with_capacity(records.len());
        for record in records {
            match index.get(&record.id) {
                Some(&at) => fold(&mut folded[at], record),
                None => {
                    index.insert(record.id, folded.len());
                    folded.push(record.clone());
                }
            }
        }
        folded
    }

    /// Marks every open record of `node` as alive at `at_ms` (the heartbeat that gives a
    /// crashed call its end time).
    pub async fn touch_open(&self, node: &str, at_ms: i64) -> StoreResult<u64> {
        let result = sqlx::query(
            "UPDATE cdrs SET last_seen_at = $1 WHERE state = 'open' AND node_id = $2 AND last_seen_at < $1",
        )
        .bind(at_ms)
        .bind(node.to_owned())
        .execute(self.store.pool())
        .await?;
        Ok(result.rows_affected())
    }

    /// Closes every record `node` left open for calls that started before `before_ms` (the
    /// node crashed or was killed during them) as `interrupted` at their last known time.
    /// Returns the closed records.
    pub async fn close_interrupted(
        &self,
        node: &str,
        before_ms: i64,
    ) -> StoreResult<Vec<CallRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cdr_columns!(),
            " FROM cdrs WHERE state = 'open' AND node_id = $1 AND start_at < $2"
        ))
        .bind(node.to_owned())
        .bind(before_ms)
        .fetch_all(self.store.pool())
        .await?;
        let mut closed = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut record = cdr_from_row(row)?;
            record.close_interrupted();
            closed.push(record);
        }
        self.upsert_many(&closed).await?;
        Ok(closed)
    }

    /// One record of the scoped tenant.
    pub async fn get(&self, scope: &TenantScope, id: CdrId) -> StoreResult<CallRecord> {
        let row = sqlx::query(concat!(
            "SELECT ",
            cdr_columns!(),
            " FROM cdrs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(id.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "CDR" })?;
        cdr_from_row(&row)
    }

    /// A page of the scoped tenant's records, newest first (by start, then id).
    pub async fn list(
        &self,
        scope: &TenantScope,
        filter: &CdrFilter,
    ) -> StoreResult<Vec<CallRecord>> {
        let mut conditions = vec!["tenant_id = $1".to_owned()];
        let mut binds = vec![Bind::Text(scope.tenant_id().to_string())];
        let mut add =
            |condition: &dyn Fn(usize) -> String, values: Vec<Bind>, binds: &mut Vec<Bind>| {
                conditions.push(condition(binds.len() + 1));
                binds.extend(values);
            };
        if let Some(from) = filter.from_ms {
            add(
                &|n| format!("start_at >= ${n}"),
                vec![Bind::Int(from)],
                &mut binds,
            );
        }
        if let Some(to) = filter.to_ms {
            add(
                &|n| format!("start_at < ${n}"),
                vec![Bind::Int(to)],
                &mut binds,
            );
        }
        if let Some(user) = filter.user {
            add(
                &|n| format!("user_id = ${n}"),
                vec![Bind::Text(user.to_string())],
                &mut binds,
            );
        }
        if let Some(direction) = filter.direction {
            add(
                &|n| format!("direction = ${n}"),
                vec![Bind::Text(direction.as_str().to_owned())],
                &mut binds,
            );
        }
        if let Some(disposition) = filter.disposition {
            add(
                &|n| format!("disposition = ${n}"),
                vec![Bind::Text(disposition.as_str().to_owned())],
                &mut binds,
            );
        }
        if let Some(state) = filter.state {
            add(
                &|n| format!("state = ${n}"),
                vec![Bind::Text(state.as_str().to_owned())],
                &mut binds,
            );
        }
        if let Some(number) = filter.number.as_deref() {
            // Digits and '+' only, so no LIKE wildcard can be smuggled in.
            let cleaned: String = number
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            let pattern = format!("%{cleaned}%");
            add(
                &|n| {
                    format!(
                        "(caller LIKE ${n} OR callee LIKE ${} OR callee_dialled LIKE ${})",
                        n + 1,
                        n + 2
                    )
                },
                vec![
                    Bind::Text(pattern.clone()),
                    Bind::Text(pattern.clone()),
                    Bind::Text(pattern),
                ],
                &mut binds,
            );
        }
        if let Some((start, id)) = filter.after {
            add(
                &|n| {
                    format!(
                        "(start_at < ${n} OR (start_at = ${} AND id < ${}))",
                        n + 1,
                        n + 2
                    )
                },
                vec![
                    Bind::Int(start),
                    Bind::Int(start),
                    Bind::Text(id.to_string()),
                ],
                &mut binds,
            );
        }
        let limit = i64::from(filter.limit.clamp(1, 1000));
        let sql = format!(
            "SELECT {} FROM cdrs WHERE {} ORDER BY start_at DESC, id DESC LIMIT {limit}",
            cdr_columns!(),
            conditions.join(" AND ")
        );
        // Audited: the conditions are fixed fragments with numbered placeholders; the limit
        // is a clamped integer.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Text(value) => query.bind(value),
                Bind::Int(value) => query.bind(value),
            };
        }
        let rows = query.fetch_all(self.store.pool()).await?;
        rows.iter().map(cdr_from_row).collect()
    }
}

/// Rows per multi-row upsert statement (24 parameters each: 768 per statement). Kept small
/// so that a statement's argument buffers (allocated per statement: the driver takes them)
/// stay in the allocator's ordinary size classes (~30 KB instead of ~250 KB at 256 rows).
/// Measured under call load (session 7): no change in CPU per call either way, within the
/// run-to-run noise; the page faults the profile shows under the CDR writer are the heap's
/// growth into transparent huge pages, not these buffers.
const UPSERT_ROWS: usize = 32;

/// `rows` cut into statements of a power-of-two number of rows (at most [`UPSERT_ROWS`]),
/// largest first: 50 rows are 32 + 16 + 2. Every statement text is then one of six, each
/// prepared once per connection and cached, where a statement per batch size cost SQLite a
/// fresh parse and code generation of hundreds of placeholders for almost every batch.
fn statement_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = UPSERT_ROWS.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}
/// Columns of `cdr_columns!()`.
const CDR_COLUMNS: usize = 24;

/// Upserts `records` (distinct ids) in one statement: the rule of [`Cdrs::upsert`].
async fn upsert_rows<'e, E>(executor: E, engine: Engine, records: &[CallRecord]) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if records.is_empty() {
        return Ok(());
    }
    let mut sql = String::with_capacity(1000 + records.len() * 120);
    sql.push_str(concat!("INSERT INTO cdrs (", cdr_columns!(), ") VALUES "));
    push_placeholders(&mut sql, records.len(), CDR_COLUMNS, engine);
    sql.push_str(
        " ON CONFLICT (id) DO UPDATE SET \
         user_id = excluded.user_id, device_id = excluded.device_id, caller = excluded.caller, \
         callee = excluded.callee, trunk_id = excluded.trunk_id, \
         ring_at = COALESCE(excluded.ring_at, cdrs.ring_at), \
         answer_at = COALESCE(excluded.answer_at, cdrs.answer_at), end_at = excluded.end_at, \
         last_seen_at = CASE WHEN excluded.last_seen_at > cdrs.last_seen_at \
         THEN excluded.last_seen_at ELSE cdrs.last_seen_at END, duration_secs = excluded.duration_secs, \
         billable_secs = excluded.billable_secs, disposition = excluded.disposition, \
         sip_status = excluded.sip_status, hangup_cause = excluded.hangup_cause, \
         hangup_side = excluded.hangup_side, media = excluded.media, state = excluded.state \
         WHERE cdrs.state = 'open'",
    );
    // Audited: the statement text is built from constants and placeholder numbers only.
    let mut query = sqlx::query_with(
        sqlx::AssertSqlSafe(sql),
        crate::bindings::reserved_arguments(records.len() * CDR_COLUMNS),
    );
    for record in records {
        let media = serde_json::to_string(&record.media)
            .map_err(|_| corrupt("cdrs", "media", json_error()))?;
        query = query
            .bind(record.id.to_string())
            .bind(record.tenant_id.to_string())
            .bind(record.user_id.map(|id| id.to_string()))
            .bind(record.device_id.map(|id| id.to_string()))
            .bind(record.direction.as_str())
            .bind(record.caller.clone())
            .bind(record.callee_dialled.clone())
            .bind(record.callee.clone())
            .bind(record.trunk_id.map(|id| id.to_string()))
            .bind(record.sip_call_id.clone())
            .bind(record.node_id.clone())
            .bind(record.start_ms)
            .bind(record.ring_ms)
            .bind(record.answer_ms)
            .bind(record.end_ms)
            .bind(record.last_seen_ms)
            .bind(record.duration_secs)
            .bind(record.billable_secs)
            .bind(record.disposition.map(|d| d.as_str()))
            .bind(record.sip_status.map(i64::from))
            .bind(record.hangup_cause.clone())
            .bind(record.hangup_side.map(|s| s.as_str()))
            .bind(media)
            .bind(record.state.as_str());
    }
    query.execute(executor).await?;
    Ok(())
}

/// Whether two of `records` are writes of the same call.
fn has_repeated_ids(records: &[CallRecord]) -> bool {
    let mut seen = HashSet::with_capacity(records.len());
    !records.iter().all(|record| seen.insert(record.id))
}

/// Folds the later write `later` of a call into `record`, as the upsert's SQL would.
fn fold(record: &mut CallRecord, later: &CallRecord) {
    if record.state == CdrState::Closed {
        return;
    }
    let ring_ms = later.ring_ms.or(record.ring_ms);
    let answer_ms = later.answer_ms.or(record.answer_ms);
    let last_seen_ms = later.last_seen_ms.max(record.last_seen_ms);
    let first = std::mem::replace(record, later.clone());
    record.ring_ms = ring_ms;
    record.answer_ms = answer_ms;
    record.last_seen_ms = last_seen_ms;
    // Set by the INSERT only: the identity of the call.
    record.id = first.id;
    record.tenant_id = first.tenant_id;
    record.direction = first.direction;
    record.callee_dialled = first.callee_dialled;
    record.sip_call_id = first.sip_call_id;
    record.node_id = first.node_id;
    record.start_ms = first.start_ms;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(count: usize) -> Vec<usize> {
        statement_chunks(&vec![0u8; count])
            .map(<[u8]>::len)
            .collect()
    }

    #[test]
    fn batches_are_cut_into_power_of_two_statements_largest_first() {
        assert!(sizes(0).is_empty());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(50), vec![32, 16, 2]);
        assert_eq!(sizes(32), vec![32]);
        assert_eq!(sizes(100), vec![32, 32, 32, 4]);
        assert_eq!(sizes(61), vec![32, 16, 8, 4, 1]);
        for count in 1..600 {
            let chunks = sizes(count);
            assert_eq!(chunks.iter().sum::<usize>(), count);
            assert!(
                chunks
                    .iter()
                    .all(|&n| n.is_power_of_two() && n <= UPSERT_ROWS)
            );
        }
    }
}
