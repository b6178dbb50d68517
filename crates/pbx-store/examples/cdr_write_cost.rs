//! Cost of writing CDRs: one upsert per record (the CDR writer before batching) against
//! [`pbx_store::Cdrs::upsert_many`] batches (the writer now), on SQLite and, when reachable,
//! PostgreSQL. A measurement to read, not a test: it prints wall time and CPU time of the
//! whole process (every thread, the SQLite worker included) per 1,000 records, and the
//! statements issued.
//!
//! `cargo run --release -p pbx-store --example cdr_write_cost -- [calls]`
//!
//! The workload is a call benchmark's: call `i` starts at `i` ms, is answered 5 ms later and
//! ends 100 ms after its start; the three writes of every call (open, answered, closed) are
//! queued in time order, so a batch holds whole calls and parts of calls.

use std::time::{Duration, Instant};

use pbx_domain::{
    Actor, CallDirection, CallEnd, CallRecord, CallStart, CdrId, DisplayName, Disposition,
    HangupSide, NewTenant, SipDomain, Slug, TenantId, TenantStatus,
};
use pbx_store::Store;
use pbx_test_support::postgres::FreshDatabase;

type Error = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let calls: i64 = match std::env::args().nth(1) {
        Some(calls) => calls.parse()?,
        None => 2_000,
    };
    println!(
        "{calls} calls, {} writes (open, answered, closed)",
        calls * 3
    );
    println!("engine    mode              transactions  wall/1k records  CPU/1k records");
    let dir = tempfile::tempdir()?;
    let store = Store::open_data_dir(dir.path()).await?;
    run("sqlite", &store, calls).await?;
    store.close().await;
    if let Some(db) = FreshDatabase::create("cloudpbx_cdr_cost").await {
        let store = Store::open(&db.url).await?;
        run("postgres", &store, calls).await?;
        store.close().await;
        db.drop_database().await;
    }
    Ok(())
}

async fn run(engine: &str, store: &Store, calls: i64) -> Result<(), Error> {
    let tenant = store
        .tenants()
        .create(
            &Actor::Operator,
            &NewTenant {
                reseller_id: None,
                name: DisplayName::parse("Bench")?,
                slug: Slug::parse(&format!("bench-{engine}"))?,
                sip_domain: SipDomain::parse(&format!("{engine}.bench.test"))?,
                status: TenantStatus::Active,
            },
        )
        .await?
        .id;
    let mut base = 0;
    for mode in [Mode::OneByOne, Mode::Batch(48), Mode::Batch(512)] {
        let writes = workload(tenant, base, calls);
        base += calls * 10;
        let records = writes.len();
        let cpu_before = process_cpu();
        let started = Instant::now();
        let transactions = match mode {
            Mode::OneByOne => {
                for write in &writes {
                    store.cdrs().upsert(write).await?;
                }
                writes.len()
            }
            Mode::Batch(size) => {
                for batch in writes.chunks(size) {
                    store.cdrs().upsert_many(batch).await?;
                }
                writes.len().div_ceil(size)
            }
        };
        let wall = started.elapsed();
        let cpu = process_cpu().saturating_sub(cpu_before);
        let per_k = |total: Duration| total.as_secs_f64() * 1_000_000.0 / records as f64;
        println!(
            "{engine:<9} {:<17} {transactions:>12}  {:>12.0} ms  {:>11.1} ms",
            mode.label(),
            per_k(wall),
            per_k(cpu),
        );
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    OneByOne,
    Batch(usize),
}

impl Mode {
    fn label(self) -> String {
        match self {
            Self::OneByOne => "one upsert each".to_owned(),
            Self::Batch(size) => format!("batches of {size}"),
        }
    }
}

/// Every write of `calls` calls in time order.
fn workload(tenant: TenantId, base: i64, calls: i64) -> Vec<CallRecord> {
    let mut timed = Vec::with_capacity(usize::try_from(calls * 3).unwrap_or_default());
    for i in 0..calls {
        let start_ms = 1_700_000_000_000 + base + i;
        let mut record = CallRecord::open(CallStart {
            id: CdrId::from_parts(u64::try_from(start_ms).unwrap_or_default(), &rand_tail(i)),
            tenant_id: tenant,
            user_id: None,
            device_id: None,
            direction: CallDirection::Internal,
            caller: "10001".into(),
            callee_dialled: "10000".into(),
            callee: "10000".into(),
            trunk_id: None,
            sip_call_id: format!("{start_ms}-{i}@bench"),
            node_id: "node-1".into(),
            start_ms,
        });
        timed.push((start_ms, record.clone()));
        record.rang(start_ms + 2);
        record.answered(start_ms + 5);
        timed.push((start_ms + 5, record.clone()));
        record.close(CallEnd {
            end_ms: start_ms + 100,
            disposition: Disposition::Answered,
            sip_status: Some(200),
            hangup_cause: Some("BYE".into()),
            hangup_side: HangupSide::Caller,
        });
        timed.push((start_ms + 100, record));
    }
    timed.sort_by_key(|(at, _)| *at);
    timed.into_iter().map(|(_, record)| record).collect()
}

fn rand_tail(i: i64) -> [u8; 10] {
    let mut tail = [0; 10];
    tail[..8].copy_from_slice(&i.to_be_bytes());
    tail
}

/// CPU time of every live thread of this process (`/proc/self/task/*/schedstat`, ns).
fn process_cpu() -> Duration {
    let mut total = 0_u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}
