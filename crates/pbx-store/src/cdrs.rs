//! Call detail records: written open at call start, replaced by the final record at the end,
//! closed as `interrupted` at the next start when the node died during the call.

use pbx_domain::{
    CallDirection, CallRecord, CdrId, CdrState, Disposition, MediaStreamStats, UserId,
};
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};
use crate::rows::{corrupt, int, int_opt, narrow, parse, parse_opt, text, text_opt};
use crate::store::{Store, TenantScope};
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
        let media = serde_json::to_string(&record.media)
            .map_err(|_| corrupt("cdrs", "media", json_error()))?;
        sqlx::query(concat!(
            "INSERT INTO cdrs (",
            cdr_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24) ON CONFLICT (id) DO UPDATE SET \
             user_id = excluded.user_id, device_id = excluded.device_id, caller = excluded.caller, \
             callee = excluded.callee, trunk_id = excluded.trunk_id, \
             ring_at = COALESCE(excluded.ring_at, cdrs.ring_at), \
             answer_at = COALESCE(excluded.answer_at, cdrs.answer_at), end_at = excluded.end_at, \
             last_seen_at = CASE WHEN excluded.last_seen_at > cdrs.last_seen_at \
             THEN excluded.last_seen_at ELSE cdrs.last_seen_at END, duration_secs = excluded.duration_secs, \
             billable_secs = excluded.billable_secs, disposition = excluded.disposition, \
             sip_status = excluded.sip_status, hangup_cause = excluded.hangup_cause, \
             hangup_side = excluded.hangup_side, media = excluded.media, state = excluded.state \
             WHERE cdrs.state = 'open'"
        ))
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
        .bind(record.state.as_str())
        .execute(self.store.pool())
        .await?;
        Ok(())
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
            self.upsert(&record).await?;
            closed.push(record);
        }
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
