//! Client side: algorithm choice, nc, stale re-challenges, rejected credentials.

use pbx_sip_auth::{
    Algorithm, AuthRole, ClientError, Credentials, DigestClient, NonceCountTracker,
};

use crate::support::{NOW, challenge_values, verifier, verify_header};

fn client() -> DigestClient {
    DigestClient::new("alice", "secret").unwrap()
}

#[test]
fn picks_the_strongest_algorithm_whatever_the_order() {
    let md5 = b"Digest realm=\"t\", nonce=\"n\", algorithm=MD5, qop=\"auth\"";
    let sha256 = b"Digest realm=\"t\", nonce=\"n\", algorithm=SHA-256, qop=\"auth\"";
    let sha512 = b"Digest realm=\"t\", nonce=\"n\", algorithm=SHA-512-256, qop=\"auth\"";
    let unknown = b"Digest realm=\"t\", nonce=\"n\", algorithm=SHA3-512, qop=\"auth\"";
    let mut client = client();
    client
        .handle_challenge(AuthRole::Www, &[md5, unknown, sha256])
        .unwrap();
    assert_eq!(client.algorithm(), Some(Algorithm::Sha256));
    client
        .handle_challenge(AuthRole::Proxy, &[sha256, sha512, md5])
        .unwrap();
    assert_eq!(client.algorithm(), Some(Algorithm::Sha512_256));
    assert_eq!(client.role(), Some(AuthRole::Proxy));
}

#[test]
fn nonce_count_increments_and_cnonce_is_the_callers() {
    let mut client = client();
    client
        .handle_challenge(
            AuthRole::Www,
            &[b"Digest realm=\"t\", nonce=\"abc\", opaque=\"xyz\", qop=\"auth,auth-int\""],
        )
        .unwrap();
    let first = client
        .authorization("INVITE", "sip:bob@t", [0xab; 16])
        .unwrap();
    let second = client
        .authorization("INVITE", "sip:bob@t", [0xcd; 16])
        .unwrap();
    assert_eq!(first.nc.unwrap().as_str(), "00000001");
    assert_eq!(second.nc.unwrap().as_str(), "00000002");
    assert_eq!(
        first.cnonce.as_deref(),
        Some("abababababababababababababababab")
    );
    assert_eq!(first.qop.as_deref(), Some("auth"));
    assert_eq!(first.opaque.as_deref(), Some("xyz"), "opaque echoed");
    assert_eq!(
        first.algorithm.as_deref(),
        Some("MD5"),
        "absent algorithm means MD5"
    );
    assert_ne!(first.response, second.response);
    let printed = first.to_string();
    assert!(printed.starts_with(
        "Digest username=\"alice\", realm=\"t\", nonce=\"abc\", uri=\"sip:bob@t\", response=\""
    ));
    assert_eq!(Credentials::parse(printed.as_bytes()).unwrap(), first);
}

#[test]
fn stale_rechallenge_is_answered_without_new_credentials() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(16);
    let mut client = client();
    let values = challenge_values(&verifier, NOW, false);
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    client.handle_challenge(AuthRole::Www, &refs).unwrap();
    let header = client
        .authorization("REGISTER", "sip:pbx.example.com", [1; 16])
        .unwrap()
        .to_string();
    let later = NOW + 3600;
    assert_eq!(
        verify_header(&verifier, &header, &mut tracker, later),
        Err(pbx_sip_auth::AuthError::StaleNonce)
    );
    let stale = challenge_values(&verifier, later, true);
    let refs: Vec<&[u8]> = stale.iter().map(|v| v.as_bytes()).collect();
    client.handle_challenge(AuthRole::Www, &refs).unwrap();
    let retry = client
        .authorization("REGISTER", "sip:pbx.example.com", [2; 16])
        .unwrap();
    assert_eq!(retry.nc.unwrap().value(), 1, "new nonce, count restarts");
    assert_eq!(
        verify_header(&verifier, &retry.to_string(), &mut tracker, later),
        Ok(1)
    );
}

#[test]
fn rechallenge_after_fresh_answer_means_wrong_password() {
    let verifier = verifier();
    let mut client = DigestClient::new("alice", "wrong").unwrap();
    let values = challenge_values(&verifier, NOW, false);
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    client.handle_challenge(AuthRole::Www, &refs).unwrap();
    client
        .authorization("REGISTER", "sip:pbx.example.com", [1; 16])
        .unwrap();
    assert_eq!(
        client.handle_challenge(AuthRole::Www, &refs),
        Err(ClientError::CredentialsRejected)
    );
    assert_eq!(
        client.authorization("REGISTER", "sip:pbx.example.com", [1; 16]),
        Err(ClientError::NoChallenge)
    );
}

#[test]
fn rechallenge_after_reused_nonce_is_accepted() {
    // A server that lets nonces expire without stale=true: after nc=2 was refused, the new
    // challenge is tried once.
    let mut client = client();
    let challenge = b"Digest realm=\"t\", nonce=\"one\", qop=\"auth\"";
    client
        .handle_challenge(AuthRole::Www, &[challenge])
        .unwrap();
    client.authorization("REGISTER", "sip:t", [1; 16]).unwrap();
    client.authorization("REGISTER", "sip:t", [2; 16]).unwrap();
    let next = b"Digest realm=\"t\", nonce=\"two\", qop=\"auth\"";
    client.handle_challenge(AuthRole::Www, &[next]).unwrap();
    let credentials = client.authorization("REGISTER", "sip:t", [3; 16]).unwrap();
    assert_eq!(credentials.nonce, "two");
}

#[test]
fn unsupported_challenges_are_reported() {
    let mut client = client();
    for values in [
        &[&b"Digest realm=\"t\", nonce=\"n\", qop=\"auth-int\""[..]][..],
        &[b"Basic realm=\"t\""],
        &[b"Digest realm=\"t\", nonce=\"n\", algorithm=MD5-sess"],
        &[],
    ] {
        assert_eq!(
            client.handle_challenge(AuthRole::Www, values),
            Err(ClientError::NoSupportedChallenge)
        );
    }
    assert!(matches!(
        client.handle_challenge(AuthRole::Www, &[b"Digest realm=\"t"]),
        Err(ClientError::MalformedChallenge(_))
    ));
    assert_eq!(
        DigestClient::new("a\nb", "x").unwrap_err(),
        ClientError::InvalidCharacter
    );
    assert!(!format!("{:?}", DigestClient::new("alice", "hunter2").unwrap()).contains("hunter2"));
}
