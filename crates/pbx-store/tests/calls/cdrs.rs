//! CDRs: open → updated → closed, final records stay final, interrupted calls closed at the
//! last known time, filters and keyset pagination.

use pbx_domain::{
    CallDirection, CallEnd, CallRecord, CallStart, CdrId, CdrState, Disposition, HangupSide,
    MediaStreamStats, UserId,
};
use pbx_store::{CdrFilter, Store};

use crate::support::{on_both, tenant, user};

fn start(tenant: pbx_domain::TenantId, user: Option<UserId>, at: i64, callee: &str) -> CallRecord {
    CallRecord::open(CallStart {
        id: CdrId::from_parts(u64::try_from(at).unwrap(), &rand::random()),
        tenant_id: tenant,
        user_id: user,
        device_id: None,
        direction: CallDirection::Outbound,
        caller: "+31201110001".into(),
        callee_dialled: callee.into(),
        callee: format!("+31{}", callee.trim_start_matches('0')),
        trunk_id: None,
        sip_call_id: format!("call-{at}@test"),
        node_id: "node-1".into(),
        start_ms: at,
    })
}

fn end(at: i64, disposition: Disposition) -> CallEnd {
    CallEnd {
        end_ms: at,
        disposition,
        sip_status: Some(200),
        hangup_cause: Some("BYE".into()),
        hangup_side: HangupSide::Caller,
    }
}

fn page(limit: u32) -> CdrFilter {
    CdrFilter {
        limit,
        ..CdrFilter::default()
    }
}

async fn all(store: &Store, scope: &pbx_store::TenantScope) -> Vec<CallRecord> {
    store.cdrs().list(scope, &page(1000)).await.unwrap()
}

#[tokio::test]
async fn lifecycle_and_finality() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, scope) = tenant(&store, "acme").await;
        let ann = user(&store, &scope, "201").await;
        let mut record = start(acme.id, Some(ann.id), 1_000_000, "0612345678");
        store.cdrs().upsert(&record).await.unwrap();
        let open = store.cdrs().get(&scope, record.id).await.unwrap();
        assert_eq!(open.state, CdrState::Open);
        assert_eq!(open, record);

        let stale_open = record.clone();
        record.rang(1_001_000);
        record.answered(1_003_000);
        store.cdrs().upsert(&record).await.unwrap();
        // An older open copy (journal replay order) does not erase ring/answer times.
        store.cdrs().upsert(&stale_open).await.unwrap();
        let updated = store.cdrs().get(&scope, record.id).await.unwrap();
        assert_eq!(updated.answer_ms, Some(1_003_000));
        assert_eq!(updated.ring_ms, Some(1_001_000));

        record.media.push(MediaStreamStats {
            leg: "caller".into(),
            media: "audio".into(),
            codec: Some("PCMA/8000".into()),
            packets_in: 500,
            packets_out: 498,
            bytes_in: 80_000,
            bytes_out: 79_680,
            packets_lost: 2,
            jitter_us: 1_500,
        });
        record.close(end(1_063_500, Disposition::Answered));
        store.cdrs().upsert(&record).await.unwrap();
        // Neither a stale open copy nor a second close changes a closed record.
        store.cdrs().upsert(&stale_open).await.unwrap();
        let mut other_close = record.clone();
        other_close.close(end(2_000_000, Disposition::Failed));
        store.cdrs().upsert(&other_close).await.unwrap();
        let closed = store.cdrs().get(&scope, record.id).await.unwrap();
        assert_eq!(closed, record);
        assert_eq!(closed.billable_secs, 61);
        assert_eq!(closed.duration_secs, 64);
        assert_eq!(closed.media.len(), 1);

        // Other tenants cannot see it.
        let (_, beta) = tenant(&store, "beta").await;
        assert!(store.cdrs().get(&beta, record.id).await.is_err());
        assert!(all(&store, &beta).await.is_empty());
        db
    })
    .await;
}

#[tokio::test]
async fn interrupted_calls_close_at_last_seen() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, scope) = tenant(&store, "acme").await;
        let mut answered = start(acme.id, None, 5_000, "0201234567");
        answered.answered(6_000);
        store.cdrs().upsert(&answered).await.unwrap();
        let ringing = start(acme.id, None, 7_000, "0201234568");
        store.cdrs().upsert(&ringing).await.unwrap();
        let mut other_node = start(acme.id, None, 7_500, "0201234569");
        other_node.node_id = "node-2".into();
        store.cdrs().upsert(&other_node).await.unwrap();
        let after_boot = start(acme.id, None, 50_000, "0201234570");
        store.cdrs().upsert(&after_boot).await.unwrap();

        // Heartbeat at 40 s: the two older open records of node-1 move forward (the one
        // last seen at 50 s does not go back).
        assert_eq!(store.cdrs().touch_open("node-1", 40_000).await.unwrap(), 2);
        // Node-1 restarts at 45 s: its two calls from before are closed; the call that
        // started after the boot and node-2's call stay open.
        let closed = store
            .cdrs()
            .close_interrupted("node-1", 45_000)
            .await
            .unwrap();
        assert_eq!(closed.len(), 2);
        let first = store.cdrs().get(&scope, answered.id).await.unwrap();
        assert_eq!(first.state, CdrState::Closed);
        assert_eq!(first.disposition, Some(Disposition::Interrupted));
        assert_eq!(first.end_ms, Some(40_000));
        assert_eq!(first.billable_secs, 34);
        assert_eq!(first.hangup_side, Some(HangupSide::System));
        let second = store.cdrs().get(&scope, ringing.id).await.unwrap();
        assert_eq!(second.billable_secs, 0);
        assert_eq!(second.duration_secs, 33);
        let open = CdrFilter {
            state: Some(CdrState::Open),
            ..page(10)
        };
        let still_open: Vec<CdrId> = store
            .cdrs()
            .list(&scope, &open)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(still_open, vec![after_boot.id, other_node.id]);
        assert!(
            store
                .cdrs()
                .close_interrupted("node-1", 45_000)
                .await
                .unwrap()
                .is_empty()
        );
        db
    })
    .await;
}

#[tokio::test]
async fn filters_and_pagination() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, scope) = tenant(&store, "acme").await;
        let ann = user(&store, &scope, "201").await;
        let bob = user(&store, &scope, "202").await;
        let mut ids = Vec::new();
        for i in 0..25_i64 {
            let who = if i % 2 == 0 { ann.id } else { bob.id };
            let mut record = start(
                acme.id,
                Some(who),
                100_000 + i * 1000,
                &format!("06{:08}", i),
            );
            if i % 5 == 0 {
                record.direction = CallDirection::Inbound;
            }
            if i % 3 == 0 {
                record.answered(100_500 + i * 1000);
                record.close(end(110_000 + i * 1000, Disposition::Answered));
            } else {
                record.close(end(101_000 + i * 1000, Disposition::Busy));
            }
            store.cdrs().upsert(&record).await.unwrap();
            ids.push(record.id);
        }
        // Newest first, 10 per page, keyset cursor, no overlap and nothing skipped.
        let mut seen = Vec::new();
        let mut filter = page(10);
        loop {
            let batch = store.cdrs().list(&scope, &filter).await.unwrap();
            if batch.is_empty() {
                break;
            }
            let last = batch.last().unwrap();
            filter.after = Some((last.start_ms, last.id));
            seen.extend(batch.iter().map(|r| r.id));
        }
        let mut expected = ids.clone();
        expected.reverse();
        assert_eq!(seen, expected);

        let count = |filter: CdrFilter| {
            let store = store.clone();
            async move { store.cdrs().list(&scope, &filter).await.unwrap().len() }
        };
        assert_eq!(
            count(CdrFilter {
                user: Some(ann.id),
                ..page(100)
            })
            .await,
            13
        );
        assert_eq!(
            count(CdrFilter {
                direction: Some(CallDirection::Inbound),
                ..page(100)
            })
            .await,
            5
        );
        assert_eq!(
            count(CdrFilter {
                disposition: Some(Disposition::Answered),
                ..page(100)
            })
            .await,
            9
        );
        assert_eq!(
            count(CdrFilter {
                from_ms: Some(110_000),
                to_ms: Some(115_000),
                ..page(100)
            })
            .await,
            5
        );
        assert_eq!(
            count(CdrFilter {
                number: Some("0600000007".into()),
                ..page(100)
            })
            .await,
            1
        );
        assert_eq!(
            count(CdrFilter {
                number: Some("+3160000001".into()),
                ..page(100)
            })
            .await,
            10
        );
        // LIKE wildcards in the filter are not wildcards.
        assert_eq!(
            count(CdrFilter {
                number: Some("%".into()),
                ..page(100)
            })
            .await,
            25
        );
        assert_eq!(
            count(CdrFilter {
                state: Some(CdrState::Open),
                ..page(100)
            })
            .await,
            0
        );
        db
    })
    .await;
}

/// The same record under another id (to compare a batch with one-by-one writes).
fn renamed(record: &CallRecord, id: CdrId) -> CallRecord {
    CallRecord {
        id,
        ..record.clone()
    }
}

#[tokio::test]
async fn upsert_many_stores_each_calls_latest_state_as_one_by_one_writes_would() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, scope) = tenant(&store, "acme").await;
        let open = start(acme.id, None, 1_000_000, "0612345678");
        let mut answered = open.clone();
        answered.rang(1_001_000);
        answered.answered(1_002_000);
        let mut closed = answered.clone();
        closed.close(end(1_030_000, Disposition::Answered));
        let mut other_close = answered.clone();
        other_close.close(end(1_090_000, Disposition::Failed));

        // Orders a journal replay or a batch can hold, each as one call's writes.
        let scenarios: Vec<Vec<CallRecord>> = vec![
            vec![open.clone(), answered.clone(), closed.clone()],
            vec![answered.clone(), open.clone()],
            vec![closed.clone(), open.clone()],
            vec![
                open.clone(),
                closed.clone(),
                other_close.clone(),
                answered.clone(),
            ],
            vec![open.clone()],
        ];
        let mut pairs = Vec::new();
        for (n, writes) in scenarios.iter().enumerate() {
            let at = u64::try_from(2_000_000 + n).unwrap();
            let one_by_one = CdrId::from_parts(at, &[1; 10]);
            for write in writes {
                store
                    .cdrs()
                    .upsert(&renamed(write, one_by_one))
                    .await
                    .unwrap();
            }
            pairs.push((one_by_one, CdrId::from_parts(at, &[2; 10])));
        }
        // The calls' writes interleaved (round robin), as a writer's queue holds them; each
        // call's own writes keep their order.
        let mut batch = Vec::new();
        for round in 0..4 {
            for (writes, (_, batched)) in scenarios.iter().zip(&pairs) {
                if let Some(write) = writes.get(round) {
                    batch.push(renamed(write, *batched));
                }
            }
        }
        store.cdrs().upsert_many(&batch).await.unwrap();
        for &(one_by_one, batched) in &pairs {
            let expected = store.cdrs().get(&scope, one_by_one).await.unwrap();
            let got = store.cdrs().get(&scope, batched).await.unwrap();
            assert_eq!(got, renamed(&expected, batched));
        }
        let first_id = pairs[0].1;
        let first = store.cdrs().get(&scope, first_id).await.unwrap();
        assert_eq!(first.state, CdrState::Closed);
        assert_eq!(first.billable_secs, 28);

        // Stale open copies of a stored closed call change nothing.
        let stale = [renamed(&open, first_id), renamed(&answered, first_id)];
        store.cdrs().upsert_many(&stale).await.unwrap();
        assert_eq!(store.cdrs().get(&scope, first_id).await.unwrap(), first);
        db
    })
    .await;
}

#[tokio::test]
async fn upsert_many_spans_several_statements_and_is_all_or_nothing() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, scope) = tenant(&store, "acme").await;
        // 700 calls (more than one multi-row statement), each open then closed.
        let mut batch = Vec::new();
        for i in 0..700_i64 {
            let open = start(acme.id, None, 3_000_000 + i, "0612345678");
            let mut closed = open.clone();
            closed.close(end(3_100_000 + i, Disposition::NoAnswer));
            batch.push(open);
            batch.push(closed);
        }
        store.cdrs().upsert_many(&batch).await.unwrap();
        let stored = all(&store, &scope).await;
        assert_eq!(stored.len(), 700);
        assert!(stored.iter().all(|record| record.state == CdrState::Closed));

        // A closed record without an end time violates a CHECK constraint: the database
        // refuses the whole batch (nothing of it is stored) with an error saying so.
        let mut fresh = Vec::new();
        for i in 0..300_i64 {
            fresh.push(start(acme.id, None, 4_000_000 + i, "0201234567"));
        }
        let mut bad = start(acme.id, None, 4_000_500, "0201234568");
        bad.state = CdrState::Closed;
        fresh.insert(150, bad);
        let error = store.cdrs().upsert_many(&fresh).await.unwrap_err();
        match &error {
            pbx_store::StoreError::Database(inner) => assert_eq!(
                inner.as_database_error().map(|db| db.kind()),
                Some(sqlx::error::ErrorKind::CheckViolation),
                "{error}"
            ),
            other => panic!("unexpected error {other:?}"),
        }
        assert_eq!(all(&store, &scope).await.len(), 700);
        db
    })
    .await;
}
