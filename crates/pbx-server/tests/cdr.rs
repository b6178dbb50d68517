//! Durable CDRs: the sink journals records while the database is unavailable and replays
//! them when it is back (no record lost), records left open by a stop that could not end its
//! calls are closed as `interrupted` at the next start (a clean stop ends them with a BYE and
//! closes them), and a journal left by a crash is replayed at start.

use std::time::Duration;

use pbx_domain::{
    Actor, CallDirection, CallEnd, CallRecord, CallStart, CdrId, CdrState, DisplayName,
    Disposition, HangupSide, NewTenant, SipDomain, Slug, TenantId, TenantStatus,
};
use pbx_server::cdr::{CdrOptions, CdrSink, JOURNAL_FILE, REJECTED_FILE};
use pbx_store::{CdrFilter, Store, StoreOptions};
use pbx_test_support::postgres::FreshDatabase;

use crate::calls::{api_cdrs_as, call_setup, operator_token};
use crate::support::{Harness, Options, free_port, v4, wait_bounded};

fn record(tenant: TenantId, node: &str, start_ms: i64) -> CallRecord {
    CallRecord::open(CallStart {
        id: CdrId::from_parts(u64::try_from(start_ms).unwrap(), &rand::random()),
        tenant_id: tenant,
        user_id: None,
        device_id: None,
        direction: CallDirection::Outbound,
        caller: "+31201110001".into(),
        callee_dialled: "0612345678".into(),
        callee: "+31612345678".into(),
        trunk_id: None,
        sip_call_id: format!("{start_ms}@test"),
        node_id: node.into(),
        start_ms,
    })
}

fn closed(mut record: CallRecord, answered_ms: i64, end_ms: i64) -> CallRecord {
    record.answered(answered_ms);
    record.close(CallEnd {
        end_ms,
        disposition: Disposition::Answered,
        sip_status: Some(200),
        hangup_cause: Some("BYE".into()),
        hangup_side: HangupSide::Caller,
    });
    record
}

async fn make_tenant(store: &Store, slug: &str) -> TenantId {
    store
        .tenants()
        .create(
            &Actor::Operator,
            &NewTenant {
                reseller_id: None,
                name: DisplayName::parse("Acme").unwrap(),
                slug: Slug::parse(slug).unwrap(),
                sip_domain: SipDomain::parse(&format!("{slug}.example.com")).unwrap(),
                status: TenantStatus::Active,
            },
        )
        .await
        .unwrap()
        .id
}

fn fast(node: &str) -> CdrOptions {
    CdrOptions {
        retry: Duration::from_millis(100),
        heartbeat: Duration::from_millis(200),
        ..CdrOptions::new(node)
    }
}

/// A sink with [`fast`] options for node `node-1`, journaling under `dir`.
async fn start_fast(
    store: &Store,
    dir: &std::path::Path,
) -> (CdrSink, tokio::task::JoinHandle<()>) {
    CdrSink::start(store.clone(), dir, fast("node-1"))
        .await
        .unwrap()
}

/// Drops the sink and waits (10 s at most) for its writer to finish.
async fn stop(sink: CdrSink, writer: tokio::task::JoinHandle<()>) {
    drop(sink);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
}

async fn all(store: &Store, tenant: TenantId) -> Vec<CallRecord> {
    let scope = Store::system_scope(tenant);
    store
        .cdrs()
        .list(
            &scope,
            &CdrFilter {
                limit: 1000,
                ..CdrFilter::default()
            },
        )
        .await
        .unwrap()
}

async fn wait_drained(sink: &CdrSink) {
    for _ in 0..200 {
        sink.flush().await;
        if sink
            .stats()
            .pending
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the CDR journal was not replayed within 20 s");
}

/// The database fails (the `cdrs` table is renamed away under the running store, so every
/// write errors); the sink journals, the table comes back, the journal is replayed: every
/// record is in the store, final, and the journal file is gone.
#[tokio::test]
async fn sqlite_failure_journals_and_replays_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let tenant = make_tenant(&store, "acme").await;
    let (sink, writer) = start_fast(&store, dir.path()).await;

    let first = record(tenant, "node-1", 1_000);
    sink.call_started(&first);
    sink.flush().await;
    assert_eq!(
        all(&store, tenant).await.len(),
        1,
        "open record written at call start"
    );

    sqlx::query("ALTER TABLE cdrs RENAME TO cdrs_away")
        .execute(store.pool())
        .await
        .unwrap();
    sink.call_ended(&closed(first.clone(), 2_000, 62_000));
    let mut others = Vec::new();
    for i in 0..20 {
        let other = record(tenant, "node-1", 10_000 + i);
        sink.call_started(&other);
        let done = closed(other, 11_000 + i, 20_000 + i);
        sink.call_ended(&done);
        others.push(done);
    }
    sink.flush().await;
    let stats = sink.stats();
    assert_eq!(
        stats.journaled.load(std::sync::atomic::Ordering::Relaxed),
        41
    );
    assert!(dir.path().join(JOURNAL_FILE).exists());

    sqlx::query("ALTER TABLE cdrs_away RENAME TO cdrs")
        .execute(store.pool())
        .await
        .unwrap();
    wait_drained(&sink).await;
    assert!(!dir.path().join(JOURNAL_FILE).exists());
    let stored = all(&store, tenant).await;
    assert_eq!(stored.len(), 21, "no record lost");
    assert!(stored.iter().all(|r| r.state == CdrState::Closed));
    let first_stored = stored.iter().find(|r| r.id == first.id).unwrap();
    assert_eq!(first_stored.billable_secs, 60);
    for other in &others {
        assert_eq!(stored.iter().find(|r| r.id == other.id), Some(other));
    }
    stop(sink, writer).await;
}

/// PostgreSQL: the test database stops accepting connections and its sessions are
/// terminated (the database is down for this node); records are journaled and replayed
/// when it accepts connections again.
#[tokio::test]
async fn postgres_outage_journals_and_replays_without_loss() {
    let Some(db) = FreshDatabase::create("cloudpbx_cdr").await else {
        return;
    };
    let (url, name) = (db.url.clone(), db.name.clone());
    let store = Store::open_with(
        &url,
        &StoreOptions {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(1),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let tenant = make_tenant(&store, "acme").await;
    let dir = tempfile::tempdir().unwrap();
    let (sink, writer) = start_fast(&store, dir.path()).await;
    let first = record(tenant, "node-1", 1_000);
    sink.call_started(&first);
    sink.flush().await;
    assert_eq!(all(&store, tenant).await.len(), 1);

    // Down: no new connections, existing ones killed.
    db.admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await;
    db.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    sink.call_ended(&closed(first.clone(), 2_000, 32_000));
    let second = closed(record(tenant, "node-1", 5_000), 6_000, 9_000);
    sink.call_started(&second);
    sink.call_ended(&second);
    sink.flush().await;
    assert!(
        sink.stats()
            .journaled
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    assert!(dir.path().join(JOURNAL_FILE).exists());

    // Back.
    db.admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await;
    wait_drained(&sink).await;
    let stored = all(&store, tenant).await;
    assert_eq!(stored.len(), 2, "no record lost");
    assert!(stored.iter().all(|r| r.state == CdrState::Closed));
    assert_eq!(stored.iter().find(|r| r.id == second.id), Some(&second));
    stop(sink, writer).await;
    store.close().await;
    db.drop_database().await;
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

fn lines_of(path: &std::path::Path) -> Vec<CallRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs `test` with a store on SQLite, then on PostgreSQL when reachable.
async fn on_both_engines<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    test(Store::open_data_dir(dir.path()).await.unwrap()).await;
    if let Some(db) = FreshDatabase::create("cloudpbx_cdr_batch").await {
        let store = Store::open(&db.url).await.unwrap();
        test(store.clone()).await;
        store.close().await;
        db.drop_database().await;
    }
}

/// Open, answered and closed writes of several calls queued together go out as one batch
/// (one transaction) that stores each call's closed record.
#[tokio::test]
async fn a_batch_holding_every_state_of_a_call_stores_the_closed_one() {
    on_both_engines(|store| async move {
        let tenant = make_tenant(&store, "acme").await;
        let dir = tempfile::tempdir().unwrap();
        let (sink, writer) = start_fast(&store, dir.path()).await;
        let mut finals = Vec::new();
        for i in 0..3 {
            let mut call = record(tenant, "node-1", 1_000 + i);
            sink.call_started(&call);
            call.rang(1_500 + i);
            call.answered(2_000 + i);
            sink.call_updated(&call);
            let done = closed(call, 2_000 + i, 9_000 + i);
            sink.call_ended(&done);
            finals.push(done);
        }
        sink.flush().await;
        let stats = sink.stats();
        assert_eq!(count(&stats.stored), 9);
        assert_eq!(
            count(&stats.batches),
            1,
            "one transaction for the nine writes"
        );
        let stored = all(&store, tenant).await;
        assert_eq!(stored.len(), 3);
        for done in &finals {
            assert_eq!(stored.iter().find(|r| r.id == done.id), Some(done));
        }
        assert!(!dir.path().join(JOURNAL_FILE).exists());
        stop(sink, writer).await;
    })
    .await;
}

/// One record of a batch that the database refuses for good (a closed record without an
/// end time breaks a CHECK constraint) goes to the rejected file; every other call of the
/// batch is stored, and nothing is journaled.
#[tokio::test]
async fn a_refused_record_is_rejected_and_the_rest_of_its_batch_stored() {
    on_both_engines(|store| async move {
        let tenant = make_tenant(&store, "acme").await;
        let dir = tempfile::tempdir().unwrap();
        let (sink, writer) = start_fast(&store, dir.path()).await;
        let mut calls = Vec::new();
        for i in 0..6 {
            let call = record(tenant, "node-1", 1_000 + i);
            sink.call_started(&call);
            if i == 3 {
                let mut bad = record(tenant, "node-1", 5_000);
                bad.state = CdrState::Closed;
                sink.call_ended(&bad);
                calls.push((bad, false));
            }
            let done = closed(call, 2_000 + i, 3_000 + i);
            sink.call_ended(&done);
            calls.push((done, true));
        }
        sink.flush().await;
        let stats = sink.stats();
        assert_eq!(count(&stats.rejected), 1);
        assert_eq!(count(&stats.stored), 12);
        assert_eq!(count(&stats.journaled), 0);
        let stored = all(&store, tenant).await;
        assert_eq!(stored.len(), 6);
        for (record, ok) in &calls {
            let found = stored.iter().find(|r| r.id == record.id);
            assert_eq!(found, ok.then_some(record));
        }
        let bad = &calls.iter().find(|(_, ok)| !ok).unwrap().0;
        assert_eq!(lines_of(&dir.path().join(REJECTED_FILE)), vec![bad.clone()]);
        assert!(!dir.path().join(JOURNAL_FILE).exists());
        stop(sink, writer).await;
    })
    .await;
}

/// The store is down when a batch is written: every record of the batch lands in the
/// journal in submission order; once the store is back the journal is replayed and each
/// call's final record is stored.
#[tokio::test]
async fn store_down_journals_the_whole_batch_in_order_and_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let tenant = make_tenant(&store, "acme").await;
    let (sink, writer) = start_fast(&store, dir.path()).await;
    sqlx::query("ALTER TABLE cdrs RENAME TO cdrs_away")
        .execute(store.pool())
        .await
        .unwrap();
    let mut submitted = Vec::new();
    let calls: Vec<CallRecord> = (0..4)
        .map(|i| record(tenant, "node-1", 1_000 + i))
        .collect();
    for call in &calls {
        sink.call_started(call);
        submitted.push(call.clone());
    }
    for (i, call) in (0_i64..).zip(&calls) {
        let done = closed(call.clone(), 2_000 + i, 4_000 + i);
        sink.call_ended(&done);
        submitted.push(done);
    }
    sink.flush().await;
    let journal = dir.path().join(JOURNAL_FILE);
    assert_eq!(lines_of(&journal), submitted, "the whole batch, in order");
    let stats = sink.stats();
    assert_eq!(count(&stats.journaled), 8);
    assert_eq!(count(&stats.pending), 8);
    assert_eq!(count(&stats.stored), 0);

    sqlx::query("ALTER TABLE cdrs_away RENAME TO cdrs")
        .execute(store.pool())
        .await
        .unwrap();
    wait_drained(&sink).await;
    assert!(!journal.exists());
    assert_eq!(count(&sink.stats().replayed), 8);
    let stored = all(&store, tenant).await;
    assert_eq!(stored.len(), 4);
    for done in &submitted[4..] {
        assert_eq!(stored.iter().find(|r| r.id == done.id), Some(done));
    }
    stop(sink, writer).await;
}

/// Without a flush, an open record is in the store within the batch's linger (plus the
/// write): a crash mid-call leaves a row to close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_record_is_durable_within_the_linger_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_data_dir(dir.path()).await.unwrap();
    let tenant = make_tenant(&store, "acme").await;
    let (sink, writer) = CdrSink::start(store.clone(), dir.path(), CdrOptions::new("node-1"))
        .await
        .unwrap();
    let call = record(tenant, "node-1", 1_000);
    sink.call_started(&call);
    let started = std::time::Instant::now();
    let mut found = false;
    for _ in 0..500 {
        // (By id: the heartbeat may have moved its last-seen time already.)
        if all(&store, tenant)
            .await
            .iter()
            .any(|r| r.id == call.id && r.state == CdrState::Open)
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(found, "open record not stored within the polling bound");
    eprintln!("open record stored after {:?}", started.elapsed());
    stop(sink, writer).await;
}

/// A call in progress when the server stops leaves an open record; the next start closes it
/// as interrupted at the last time it was seen alive. A journal left behind by a crash (the
/// store was down when it died) is replayed at start, before that.
#[tokio::test]
async fn restart_closes_interrupted_calls_and_replays_the_journal() {
    let mut harness = Harness::start(Options::default()).await;
    let store = harness.server().store().clone();
    let tenant = make_tenant(&store, "acme").await;
    let sink = harness.server().cdrs().clone();
    let node = sink.node_id().to_owned();
    let now = pbx_api::now_ms();
    let mut live = record(tenant, &node, now - 60_000);
    live.answered(now - 55_000);
    sink.call_started(&live);
    sink.call_updated(&live);
    sink.flush().await;
    // A crash-left journal: a call that ended while the store was down.
    let lost = closed(
        record(tenant, &node, now - 30_000),
        now - 29_000,
        now - 20_000,
    );
    let journal = harness.dir.path().join(JOURNAL_FILE);
    let mut line = serde_json::to_string(&lost).unwrap();
    line.push('\n');
    line.push_str("{\"torn\": "); // a torn last line from the crash
    drop(sink);

    harness.restart().await;
    // The restart above shut down cleanly; write the journal as a crash would have left it
    // and restart again so recovery sees it.
    std::fs::write(&journal, &line).unwrap();
    harness.restart().await;

    let store = harness.server().store().clone();
    let stored = all(&store, tenant).await;
    assert_eq!(stored.len(), 2);
    let interrupted = stored.iter().find(|r| r.id == live.id).unwrap();
    assert_eq!(interrupted.state, CdrState::Closed);
    assert_eq!(interrupted.disposition, Some(Disposition::Interrupted));
    assert!(interrupted.end_ms.unwrap() >= live.answer_ms.unwrap());
    assert!(interrupted.billable_secs >= 0);
    assert_eq!(stored.iter().find(|r| r.id == lost.id), Some(&lost));
    assert!(!journal.exists(), "journal replayed and removed");
    assert_eq!(
        harness
            .server()
            .cdrs()
            .stats()
            .replayed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    harness.shutdown().await;
}

/// A SIPp call is up (answered, its CDR open in the store) when the server stops cleanly:
/// both legs get a BYE (each SIPp scenario ends only on a BYE it answers), and the CDR is
/// closed normally (answered, hangup side system, cause "server shutting down") instead of
/// being left open to be closed as interrupted at the next start. (A stop that cannot end
/// its calls is covered by `restart_closes_interrupted_calls_and_replays_the_journal`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_during_a_sipp_call_sends_bye_to_both_legs_and_closes_its_cdr() {
    let Some((mut harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let (alice, bob) = (&tenant.accounts[0], &tenant.accounts[1]);
    let callee = sipp.callee("uas_answer.xml", port, free_port(v4()));
    // The caller waits for a BYE after the answer, as the callee does.
    let caller = sipp
        .caller_command("uac_wait_bye.xml", alice, &bob.extension)
        .spawn()
        .expect("sipp caller starts");

    // Mid-call: the open record is already durable, with its answer time.
    let open = open_record(&harness, &tenant, |r| r.answer_ms.is_some())
        .await
        .unwrap_or_else(|| panic!("call answered and recorded open:{}", sipp.logs()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let token = operator_token(&harness);
    harness.restart().await;
    let (code, output) = wait_bounded(caller, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "caller got a BYE: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(callee, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "callee got a BYE: {output}{}", sipp.logs());
    let cdrs = api_cdrs_as(&harness, &token, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["id"], open.id.to_string(), "{cdr}");
    assert_eq!(cdr["state"], "closed", "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["hangup_side"], "system", "{cdr}");
    assert_eq!(cdr["hangup_cause"], "server shutting down", "{cdr}");
    assert_eq!(cdr["answer_ms"], open.answer_ms.unwrap(), "{cdr}");
    assert!(cdr["billable_secs"].as_i64().unwrap() >= 1, "{cdr}");
    assert_eq!(
        harness
            .server()
            .cdrs()
            .stats()
            .interrupted
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing left open to close at start"
    );
    harness.shutdown().await;
}

/// A SIPp call still ringing when the server stops cleanly: the caller gets 503, the callee a
/// CANCEL (each scenario ends only so), and the CDR is closed (failed, 503, hangup side
/// system, cause "server shutting down").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_while_a_sipp_call_rings_answers_503_and_cancels_the_callee() {
    let Some((mut harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let (alice, bob) = (&tenant.accounts[0], &tenant.accounts[1]);
    let callee = sipp.callee("uas_ring.xml", port, free_port(v4()));
    let caller = sipp
        .caller_command("uac_shutdown_ringing.xml", alice, &bob.extension)
        .spawn()
        .expect("sipp caller starts");
    // The record is stored open once the call is forked (its ring time only comes with the
    // final record); give the callee's 180 time to pass.
    let open = open_record(&harness, &tenant, |r| r.answer_ms.is_none())
        .await
        .unwrap_or_else(|| panic!("call forked and recorded open:{}", sipp.logs()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let token = operator_token(&harness);
    harness.restart().await;
    let (code, output) = wait_bounded(caller, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "caller got 503: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(callee, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "callee got a CANCEL: {output}{}", sipp.logs());
    let cdrs = api_cdrs_as(&harness, &token, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["id"], open.id.to_string(), "{cdr}");
    assert_eq!(cdr["disposition"], "failed", "{cdr}");
    assert_eq!(cdr["sip_status"], 503, "{cdr}");
    assert_eq!(cdr["hangup_side"], "system", "{cdr}");
    assert_eq!(cdr["hangup_cause"], "server shutting down", "{cdr}");
    assert!(cdr["ring_ms"].as_i64().is_some(), "{cdr}");
    assert!(cdr["answer_ms"].is_null(), "{cdr}");
    harness.shutdown().await;
}

/// The tenant's open CDR matching `wanted`, once the store has it (polled for up to 10 s).
async fn open_record(
    harness: &Harness,
    tenant: &crate::support::Tenant,
    wanted: impl Fn(&CallRecord) -> bool,
) -> Option<CallRecord> {
    let store = harness.server().store().clone();
    for _ in 0..100 {
        let listed = store
            .cdrs()
            .list(
                &tenant.scope,
                &CdrFilter {
                    limit: 10,
                    ..CdrFilter::default()
                },
            )
            .await
            .unwrap();
        if let Some(record) = listed
            .into_iter()
            .find(|r| r.state == CdrState::Open && wanted(r))
        {
            return Some(record);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
