//! Cost of verifying one set of credentials (MD5 and SHA-256), including the nonce HMAC
//! check, the decoy derivation, the response digest and the replay-tracker update.
//!
//! Run: `cargo bench -p pbx-sip-auth --bench digest`.

// A benchmark fails loudly on a broken fixture; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pbx_sip_auth::{
    Algorithm, AuthRole, Credentials, DigestClient, Ha1, NonceCountTracker, RequestContext,
    Verifier, VerifierConfig,
};

const NOW: u64 = 1_790_000_000;
const REALM: &str = "pbx.example.com";

fn header_for(verifier: &Verifier, algorithm: Algorithm) -> String {
    let values: Vec<String> = verifier
        .challenges(NOW, [1; 8], None, false)
        .iter()
        .map(ToString::to_string)
        .filter(|v| v.contains(&format!("algorithm={}", algorithm.name())))
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    let mut client = DigestClient::new("alice", "secret").unwrap();
    client.handle_challenge(AuthRole::Www, &refs).unwrap();
    client
        .authorization("REGISTER", "sip:pbx.example.com", [2; 16])
        .unwrap()
        .to_string()
}

fn verify(c: &mut Criterion) {
    let verifier = Verifier::new(&[7; 32], VerifierConfig::new(REALM)).unwrap();
    let request = RequestContext {
        method: "REGISTER",
        client: None,
        retransmission: None,
    };
    for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
        let header = header_for(&verifier, algorithm);
        let stored = Ha1::compute(algorithm, "alice", REALM, "secret");
        c.bench_function(&format!("verify/{}", algorithm.name()), |b| {
            b.iter_batched_ref(
                || NonceCountTracker::new(16),
                |tracker| {
                    let credentials = Credentials::parse(black_box(header.as_bytes())).unwrap();
                    let identity = verifier
                        .verify(
                            &request,
                            &credentials,
                            |_| Some(stored.clone()),
                            tracker,
                            NOW,
                        )
                        .unwrap();
                    black_box(identity.nonce_count);
                },
                BatchSize::SmallInput,
            );
        });
        c.bench_function(&format!("parse/{}", algorithm.name()), |b| {
            b.iter(|| Credentials::parse(black_box(header.as_bytes())).unwrap());
        });
    }
    c.bench_function("challenges/issue", |b| {
        b.iter(|| verifier.challenges(black_box(NOW), [3; 8], None, false));
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
