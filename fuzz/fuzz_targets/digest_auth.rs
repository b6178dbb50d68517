//! Digest auth header grammar (pbx-sip-auth). The first byte picks the parser:
//! 0 = credentials (Authorization / Proxy-Authorization value), 1 = challenge list
//! (WWW-Authenticate / Proxy-Authenticate value); the rest is the header value.
//!
//! Properties: no panic; what parses prints, and the print parses again and prints the same;
//! the verifier and the client never panic on what they are handed, and credentials the client
//! builds from any accepted challenge parse.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use pbx_sip_auth::{
    AuthRole, Challenge, Credentials, DigestClient, Ha1, HashFunction, NonceCountTracker,
    RequestContext, Verifier, VerifierConfig,
};

/// Keeps a value alive for the optimiser; errors are expected results here.
fn touch<T>(value: T) {
    let _ = black_box(value);
}

const KEY: [u8; 32] = [0x5a; 32];
const NOW: u64 = 1_800_000_000;

fn credentials(value: &[u8]) {
    let Ok(creds) = Credentials::parse(value) else {
        return;
    };
    let printed = creds.to_string();
    let again = match Credentials::parse(printed.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("printed credentials do not parse again: {e}\n{printed:?}"),
    };
    assert_eq!(
        again.to_string(),
        printed,
        "credentials print is not stable"
    );
    touch(creds.algorithm());

    let Ok(verifier) = Verifier::new(&KEY, VerifierConfig::new("pbx.example.com")) else {
        return;
    };
    let mut tracker = NonceCountTracker::new(16);
    let request = RequestContext {
        method: "REGISTER",
        client: None,
        retransmission: None,
    };
    let result = verifier.verify(
        &request,
        &creds,
        |hash| {
            let hex = if hash == HashFunction::Md5 {
                "0".repeat(32)
            } else {
                "0".repeat(64)
            };
            Ha1::from_hex(hash, &hex).ok()
        },
        &mut tracker,
        NOW,
    );
    if let Err(e) = result {
        touch(e.answer(AuthRole::Www));
    }
}

fn challenges(value: &[u8]) {
    if let Ok(list) = Challenge::parse_list(value) {
        for challenge in &list {
            let printed = challenge.to_string();
            let again = match Challenge::parse(printed.as_bytes()) {
                Ok(again) => again,
                Err(e) => panic!("printed challenge does not parse again: {e}\n{printed:?}"),
            };
            assert_eq!(again.to_string(), printed, "challenge print is not stable");
            touch(challenge.algorithm());
            touch(challenge.offers_qop_auth());
        }
    }
    let Ok(mut client) = DigestClient::new("alice", "secret") else {
        return;
    };
    if client.handle_challenge(AuthRole::Www, &[value]).is_err() {
        return;
    }
    if let Ok(creds) = client.authorization("INVITE", "sip:bob@example.com", [7; 16]) {
        let printed = creds.to_string();
        if let Err(e) = Credentials::parse(printed.as_bytes()) {
            panic!("client-built credentials do not parse: {e}\n{printed:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    match selector % 2 {
        0 => credentials(value),
        _ => challenges(value),
    }
});
