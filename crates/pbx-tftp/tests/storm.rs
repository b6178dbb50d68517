//! 1,000 simulated phones fetch their files at once; all must succeed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::{fetch, start_default};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_storm_of_1000_phones_all_succeed() {
    let fixture = start_default().await;
    let expected = crate::support::brand_files()[1].1.clone();
    assert!(
        expected.len() > 9_000,
        "the storm file should be ~10 KB, is {}",
        expected.len()
    );
    let started = Instant::now();
    let phones: Vec<_> = (0..1000)
        .map(|_| {
            let addr = fixture.addr;
            tokio::spawn(async move {
                fetch(
                    addr,
                    "127.0.0.1".parse().unwrap(),
                    "acme/0004f2aabbcc-phone.cfg",
                    &[("blksize", "1428"), ("tsize", "0")],
                    Duration::from_millis(500),
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for phone in phones {
        let content = tokio::time::timeout(Duration::from_secs(20), phone)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(content == expected);
        ok += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(ok, 1000);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    eprintln!("boot storm: 1000 transfers in {elapsed:?}");
    tokio::time::timeout(Duration::from_secs(5), async {
        while fixture.stats.completed.load(Ordering::Relaxed) < 1000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(fixture.stats.failed.load(Ordering::Relaxed), 0);
}
