//! `Verifier::verify` (and parsing credentials that need no unescaping) does not allocate.
//!
//! A counting global allocator lives in this test binary only.

// The only `unsafe` is the `GlobalAlloc` impl, which forwards every call unchanged to the
// system allocator (the same contract, so the same safety) and bumps a counter.
#![allow(unsafe_code)]
// A panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use pbx_sip_auth::{
    Algorithm, AuthRole, Credentials, DigestClient, Ha1, NonceCountTracker, RequestContext,
    Verifier, VerifierConfig,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments, so the caller's
// obligations are passed on unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOW: u64 = 1_790_000_000;
const REALM: &str = "pbx.example.com";

#[test]
fn verify_does_not_allocate() {
    let verifier = Verifier::new(&[7; 32], VerifierConfig::new(REALM)).unwrap();
    let values: Vec<String> = verifier
        .challenges(NOW, [1; 8], None, false)
        .iter()
        .map(ToString::to_string)
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    let mut client = DigestClient::new("alice", "secret").unwrap();
    client.handle_challenge(AuthRole::Www, &refs).unwrap();
    let headers: Vec<String> = (0..2)
        .map(|i| {
            client
                .authorization("REGISTER", "sip:pbx.example.com", [i; 16])
                .unwrap()
                .to_string()
        })
        .collect();
    let stored = Ha1::compute(Algorithm::Sha256, "alice", REALM, "secret");
    let request = RequestContext {
        method: "REGISTER",
        client: None,
        retransmission: None,
    };
    let mut tracker = NonceCountTracker::new(16);

    // Other tests in this binary run on other threads, so measure the minimum over a few
    // tries rather than trusting a single window.
    let mut fewest = usize::MAX;
    for (index, header) in headers.iter().enumerate() {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        let credentials = Credentials::parse(header.as_bytes()).unwrap();
        let identity = verifier
            .verify(
                &request,
                &credentials,
                |_| Some(stored.clone()),
                &mut tracker,
                NOW,
            )
            .unwrap();
        let after = ALLOCATIONS.load(Ordering::SeqCst);
        assert_eq!(identity.nonce_count, Some(index as u32 + 1));
        fewest = fewest.min(after - before);
        eprintln!("request {index}: {} allocations", after - before);
    }
    assert_eq!(fewest, 0, "parse + verify allocated");
}
