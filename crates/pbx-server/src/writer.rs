//! The store writer: applies registrar effects (bindings, events) to the database off the SIP
//! driver task, in order, retrying transient failures so that no registration or audit event
//! is lost to a brief database outage.
//!
//! Write-behind in batches: every wake-up drains what has queued up (up to [`BATCH`]
//! effects), coalesces the binding writes per binding (the last upsert or delete of a key
//! wins; writes to different keys are independent), and commits the batch — binding writes
//! and audit events — in one transaction. Under load one commit then carries hundreds of
//! REGISTERs instead of three statements and a commit each. A batch that fails is retried;
//! if it keeps failing (or fails for a reason a retry cannot fix, such as a binding whose
//! user was deleted meanwhile) its writes are applied one by one, each with its own retries,
//! so one bad record cannot take the rest of the batch with it.
//!
//! Refreshes are written back lazily. A REGISTER that only renews a binding
//! ([`Effect::RefreshBinding`]: same contact, flow, path, instance and User-Agent, new
//! expiry) does not need a write of its own: the refreshed record is kept here and written
//! at most the write-back delay (`registrar.refresh_write_back_ms`, 15 s by default) later, together with every other refresh of that window,
//! however often the phone refreshed meanwhile (Kamailio's usrloc `db_mode=2` works the
//! same way). New bindings, changed bindings and removals are written in the next batch as
//! before, and supersede a pending refresh of the same binding. On shutdown (the queue
//! closes) pending refreshes are written first, so a clean restart loses nothing; a crash
//! loses at most the last write-back delay of refreshes, i.e. a restored binding may
//! expire up to that much earlier than the phone expects — well inside the margin phones
//! keep by re-registering at about half the granted expiry.

use std::collections::HashMap;
use std::time::Duration;

use pbx_domain::{Actor, BindingRecord, TenantId};
use pbx_registrar::{BindingKey, Effect};
use pbx_store::{BindingWrite, EventWrite, Store, StoreError, StoreResult};
use tokio::sync::mpsc;

/// Most effects taken from the queue per transaction.
pub const BATCH: usize = 1024;

/// Attempts per batch, and per single write in the fallback, before it is given up (and
/// logged with its content).
const ATTEMPTS: u32 = 5;

/// Runs until the sending side is dropped and the queue is drained. Plain refreshes wait up
/// to `write_back` (`registrar.refresh_write_back_ms`, 15 s by default; zero writes them at
/// once).
pub async fn run_with(store: Store, mut queue: mpsc::Receiver<Effect>, write_back: Duration) {
    let mut effects = Vec::with_capacity(BATCH);
    let mut pending = Pending::default();
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let received = tokio::select! {
            received = queue.recv_many(&mut effects, BATCH) => received,
            () = sleep_until(due) => {
                due = None;
                pending.flush(&store).await;
                continue;
            }
        };
        if received == 0 {
            break;
        }
        if !write_back.is_zero() {
            effects = pending.absorb(std::mem::take(&mut effects));
        }
        if !effects.is_empty() {
            write(&store, &effects).await;
        }
        effects.clear();
        if due.is_none() && !pending.is_empty() {
            due = Some(tokio::time::Instant::now() + write_back);
        }
    }
    pending.flush(&store).await;
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Refreshes waiting to be written back, latest per binding.
#[derive(Default)]
struct Pending {
    records: HashMap<(TenantId, String, String), BindingRecord>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Takes the refreshes out of `effects` (in order: a later persist or delete of the
    /// same binding drops its pending refresh; a later refresh replaces it) and returns the
    /// rest, in the same allocation.
    fn absorb(&mut self, effects: Vec<Effect>) -> Vec<Effect> {
        effects
            .into_iter()
            .filter_map(|effect| {
                match &effect {
                    Effect::RefreshBinding(record) => {
                        let key = (record.tenant_id, record.aor.clone(), record.key());
                        if let Effect::RefreshBinding(record) = effect {
                            self.records.insert(key, record);
                        }
                        return None;
                    }
                    Effect::PersistBinding(record) if !self.records.is_empty() => {
                        self.records
                            .remove(&(record.tenant_id, record.aor.clone(), record.key()));
                    }
                    Effect::DeleteBinding(key) if !self.records.is_empty() => {
                        self.records
                            .remove(&(key.tenant_id, key.aor.clone(), key.key.clone()));
                    }
                    _ => {}
                }
                Some(effect)
            })
            .collect()
    }

    /// Writes every pending refresh (in batches of [`BATCH`], same fallback as any batch)
    /// and gives their memory back.
    async fn flush(&mut self, store: &Store) {
        let records: Vec<BindingRecord> = std::mem::take(&mut self.records).into_values().collect();
        for chunk in records.chunks(BATCH) {
            // The cheap path: update expiry, Call-ID and CSeq of rows that exist. When some
            // are missing (a binding whose first write failed and was given up), or the
            // update fails, the chunk is written in full as upserts, with their fallback.
            let refs: Vec<&BindingRecord> = chunk.iter().collect();
            match store.bindings().refresh_batch(&Actor::System, &refs).await {
                Ok(updated) if updated == refs.len() as u64 => continue,
                Ok(updated) => {
                    tracing::debug!(
                        updated,
                        records = refs.len(),
                        "refresh write-back found missing rows; upserting"
                    );
                }
                Err(err) => {
                    tracing::warn!(error = %err, records = refs.len(), "refresh write-back failed; upserting");
                }
            }
            let effects: Vec<Effect> = chunk.iter().cloned().map(Effect::PersistBinding).collect();
            write(store, &effects).await;
        }
    }
}

/// One binding's final state in a batch.
enum Op<'a> {
    Upsert(&'a BindingRecord),
    Delete(&'a BindingKey),
}

/// A batch after coalescing.
#[derive(Default)]
struct Batch<'a> {
    bindings: Vec<(Op<'a>, String)>,
    /// (tenant, aor, key) → index in `bindings`.
    index: HashMap<(TenantId, &'a str, String), usize>,
    events: Vec<(Option<TenantId>, &'static str, String)>,
}

impl<'a> Batch<'a> {
    fn of(effects: &'a [Effect]) -> Self {
        let mut batch = Batch::default();
        for effect in effects {
            match effect {
                Effect::PersistBinding(record) | Effect::RefreshBinding(record) => {
                    let key = record.key();
                    batch.binding(record.tenant_id, &record.aor, key, Op::Upsert(record));
                }
                Effect::DeleteBinding(key) => {
                    batch.binding(key.tenant_id, &key.aor, key.key.clone(), Op::Delete(key));
                }
                Effect::Event(event) => {
                    let payload = serde_json::to_string(event).unwrap_or_else(|_| "null".into());
                    batch
                        .events
                        .push((event.tenant_id(), event.kind(), payload));
                }
                _ => {}
            }
        }
        batch
    }

    fn binding(&mut self, tenant: TenantId, aor: &'a str, key: String, op: Op<'a>) {
        match self.index.get(&(tenant, aor, key.clone())) {
            Some(&at) => self.bindings[at] = (op, key),
            None => {
                self.index
                    .insert((tenant, aor, key.clone()), self.bindings.len());
                self.bindings.push((op, key));
            }
        }
    }

    fn writes(&self) -> Vec<BindingWrite<'_>> {
        self.bindings
            .iter()
            .map(|(op, key)| match op {
                Op::Upsert(record) => BindingWrite::Upsert(record),
                Op::Delete(binding) => BindingWrite::Delete {
                    tenant_id: binding.tenant_id,
                    aor: &binding.aor,
                    key,
                },
            })
            .collect()
    }

    fn event_writes(&self, at_ms: i64) -> Vec<EventWrite<'_>> {
        self.events
            .iter()
            .map(|(tenant_id, kind, payload)| EventWrite {
                at_ms,
                tenant_id: *tenant_id,
                kind,
                payload,
            })
            .collect()
    }
}

/// Writes one drained batch: whole, else piece by piece.
async fn write(store: &Store, effects: &[Effect]) {
    let batch = Batch::of(effects);
    let writes = batch.writes();
    let events = batch.event_writes(now_ms());
    if commit(store, &writes, &events, ATTEMPTS).await.is_ok() {
        return;
    }
    tracing::warn!(
        bindings = writes.len(),
        events = events.len(),
        "store batch failed; writing its parts one by one"
    );
    for write in &writes {
        if let Err(err) = commit(store, std::slice::from_ref(write), &[], ATTEMPTS).await {
            tracing::error!(error = %err, write = ?write, "binding write given up");
        }
    }
    for event in &events {
        if let Err(err) = commit(store, &[], std::slice::from_ref(event), ATTEMPTS).await {
            tracing::error!(error = %err, event = ?event, "event write given up");
        }
    }
}

/// One transaction, retried with exponential back-off while the failure may be transient.
async fn commit(
    store: &Store,
    writes: &[BindingWrite<'_>],
    events: &[EventWrite<'_>],
    attempts: u32,
) -> StoreResult<()> {
    let mut delay = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match store
            .bindings()
            .write_batch(&Actor::System, writes, events)
            .await
        {
            Ok(()) => return Ok(()),
            Err(err) if attempt < attempts && transient(&err) => {
                tracing::warn!(error = %err, attempt, "store write failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Whether retrying the same write may succeed (a locked or unreachable database), as
/// opposed to a write the database refuses on its merits (a deleted user's binding).
fn transient(err: &StoreError) -> bool {
    matches!(err, StoreError::Database(_))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use pbx_domain::{
        ClassOfService, DeviceKind, DisplayName, Extension, Flow, NewDevice, NewTenant, NewUser,
        SipDomain, Slug, TenantStatus, Transport, UserId,
    };
    use pbx_registrar::{FlowInfo, RegistrationEvent};

    fn record(tenant: TenantId, user: UserId, contact: &str, cseq: u32) -> BindingRecord {
        BindingRecord {
            tenant_id: tenant,
            user_id: user,
            device_id: None,
            aor: "sip:100@ww.pbx.test".into(),
            contact_uri: contact.into(),
            instance_id: None,
            reg_id: None,
            path: Vec::new(),
            push: None,
            expires_at_ms: i64::MAX / 2,
            q_milli: None,
            call_id: "c@test".into(),
            cseq,
            user_agent: None,
            flow: Flow {
                transport: Transport::Udp,
                source: "127.0.0.1:5062".parse().unwrap(),
                local: "127.0.0.1:5060".parse().unwrap(),
                connection_id: None,
                node_id: "node-1".into(),
            },
            sip_alg_detected: false,
            sip_alg_reason: None,
        }
    }

    #[tokio::test]
    async fn batches_coalesce_per_binding_and_a_bad_record_does_not_sink_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(dir.path()).await.unwrap();
        batches_coalesce(store).await;
        if let Some(fresh) =
            pbx_test_support::postgres::FreshDatabase::create("cloudpbx_writer").await
        {
            let store = Store::open(&fresh.url).await.unwrap();
            batches_coalesce(store.clone()).await;
            store.close().await;
            fresh.drop_database().await;
        }
    }

    async fn batches_coalesce(store: Store) {
        let tenant = store
            .tenants()
            .create(
                &Actor::Operator,
                &NewTenant {
                    reseller_id: None,
                    name: DisplayName::parse("W").unwrap(),
                    slug: Slug::parse("ww").unwrap(),
                    sip_domain: SipDomain::parse("ww.pbx.test").unwrap(),
                    status: TenantStatus::Active,
                },
            )
            .await
            .unwrap();
        let scope = store.scope(&Actor::Operator, tenant.id).await.unwrap();
        let user = store
            .users()
            .create(
                &scope,
                &NewUser {
                    extension: Extension::parse("100").unwrap(),
                    display_name: DisplayName::parse("U").unwrap(),
                    class_of_service: ClassOfService::National,
                },
            )
            .await
            .unwrap();
        store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: user.id,
                    kind: DeviceKind::Softphone,
                    label: "p".into(),
                },
            )
            .await
            .unwrap();
        let a = record(tenant.id, user.id, "sip:100@10.0.0.1", 1);
        let b = record(tenant.id, user.id, "sip:100@10.0.0.2", 1);
        // A binding of a user that no longer exists: the database refuses it (foreign key).
        let orphan = record(
            tenant.id,
            UserId::from_parts(1, &[7; 10]),
            "sip:x@10.0.0.3",
            1,
        );
        let registered = RegistrationEvent::Registered {
            key: BindingKey::of(&a),
            contact: a.contact_uri.clone(),
            flow: FlowInfo::from_restored(&a.flow),
            behind_nat: false,
            expires_secs: 600,
        };
        let effects = vec![
            Effect::PersistBinding(a.clone()),
            Effect::PersistBinding(b.clone()),
            Effect::DeleteBinding(BindingKey::of(&b)),
            Effect::Event(registered),
            Effect::PersistBinding(orphan),
        ];
        write(&store, &effects).await;
        let stored = store.bindings().list(&scope).await.unwrap();
        assert_eq!(
            stored.len(),
            1,
            "b was deleted in the same batch, the orphan refused"
        );
        assert_eq!(stored[0].record.contact_uri, a.contact_uri);
        let events = store.events().list(&scope, 10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "registration.registered");

        // Delete then re-persist of the same key in one batch: the last write wins.
        let refreshed = record(tenant.id, user.id, "sip:100@10.0.0.1", 5);
        let effects = vec![
            Effect::DeleteBinding(BindingKey::of(&a)),
            Effect::PersistBinding(refreshed),
        ];
        write(&store, &effects).await;
        let stored = store.bindings().list(&scope).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].record.cseq, 5);

        // The queue-driven task drains everything before it ends.
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run_with(store.clone(), rx, Duration::from_secs(15)));
        tx.send(Effect::DeleteBinding(BindingKey::of(&a)))
            .await
            .unwrap();
        drop(tx);
        task.await.unwrap();
        assert!(store.bindings().list(&scope).await.unwrap().is_empty());

        write_back_of_refreshes(&store, &scope, tenant.id, user.id).await;
    }

    /// Plain refreshes wait for the write-back delay (only the latest is written), a persist
    /// or delete of the key supersedes a pending refresh, and shutdown writes what is pending.
    async fn write_back_of_refreshes(
        store: &Store,
        scope: &pbx_store::TenantScope,
        tenant: TenantId,
        user: UserId,
    ) {
        let cseq_of = |stored: &[pbx_domain::Binding], contact: &str| {
            stored
                .iter()
                .find(|b| b.record.contact_uri == contact)
                .map(|b| b.record.cseq)
        };
        let (c, d) = ("sip:100@10.0.0.7", "sip:100@10.0.0.8");
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run_with(store.clone(), rx, Duration::from_millis(600)));
        for contact in [c, d] {
            tx.send(Effect::PersistBinding(record(tenant, user, contact, 1)))
                .await
                .unwrap();
        }
        for cseq in 2..=4 {
            tx.send(Effect::RefreshBinding(record(tenant, user, c, cseq)))
                .await
                .unwrap();
        }
        tx.send(Effect::RefreshBinding(record(tenant, user, d, 2)))
            .await
            .unwrap();
        // d changes for real (persist): its pending refresh must not overwrite it later.
        tx.send(Effect::PersistBinding(record(tenant, user, d, 3)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stored = store.bindings().list(scope).await.unwrap();
        assert_eq!(
            cseq_of(&stored, c),
            Some(1),
            "refreshes of c not written yet"
        );
        assert_eq!(cseq_of(&stored, d), Some(3));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stored = store.bindings().list(scope).await.unwrap();
            if cseq_of(&stored, c) == Some(4) {
                assert_eq!(
                    cseq_of(&stored, d),
                    Some(3),
                    "superseded refresh not written"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "refresh never written back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A refresh pending when the binding is removed is dropped with it.
        tx.send(Effect::RefreshBinding(record(tenant, user, d, 9)))
            .await
            .unwrap();
        tx.send(Effect::DeleteBinding(BindingKey::of(&record(
            tenant, user, d, 9,
        ))))
        .await
        .unwrap();
        // Shutdown writes what is pending without waiting for the delay.
        tx.send(Effect::RefreshBinding(record(tenant, user, c, 5)))
            .await
            .unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_millis(500), task)
            .await
            .expect("writer flushes at once on shutdown")
            .unwrap();
        let stored = store.bindings().list(scope).await.unwrap();
        assert_eq!(cseq_of(&stored, c), Some(5));
        assert_eq!(cseq_of(&stored, d), None, "deleted, not resurrected");

        // Write-back updates only expiry, Call-ID and CSeq of the row; a refresh whose row
        // is missing (its first write was given up) is written in full instead.
        let e = "sip:100@10.0.0.9";
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run_with(store.clone(), rx, Duration::from_secs(15)));
        let mut refreshed = record(tenant, user, c, 6);
        refreshed.call_id = "new-call-id".into();
        refreshed.expires_at_ms += 60_000;
        tx.send(Effect::RefreshBinding(refreshed.clone()))
            .await
            .unwrap();
        tx.send(Effect::RefreshBinding(record(tenant, user, e, 3)))
            .await
            .unwrap();
        drop(tx);
        task.await.unwrap();
        let stored = store.bindings().list(scope).await.unwrap();
        let row = stored
            .iter()
            .find(|b| b.record.contact_uri == c)
            .expect("c stored");
        assert_eq!(row.record.cseq, 6);
        assert_eq!(row.record.call_id, "new-call-id");
        assert_eq!(row.record.expires_at_ms, refreshed.expires_at_ms);
        assert_eq!(cseq_of(&stored, e), Some(3), "missing row upserted");
    }
}
