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
