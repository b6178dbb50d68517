//! Shared fixtures.

use pbx_sip_auth::{
    Algorithm, AuthRole, Credentials, DigestClient, Ha1, NonceCountTracker, RequestContext,
    Verifier, VerifierConfig,
};

pub const KEY: [u8; 32] = [0x42; 32];
pub const REALM: &str = "pbx.example.com";
pub const NOW: u64 = 1_790_000_000;

pub fn verifier() -> Verifier {
    Verifier::new(&KEY, VerifierConfig::new(REALM)).unwrap()
}

pub fn verifier_with(edit: impl FnOnce(&mut VerifierConfig)) -> Verifier {
    let mut config = VerifierConfig::new(REALM);
    edit(&mut config);
    Verifier::new(&KEY, config).unwrap()
}

pub fn request() -> RequestContext<'static> {
    RequestContext {
        method: "REGISTER",
        client: None,
        retransmission: None,
    }
}

/// The challenge header values a verifier sends, as strings.
pub fn challenge_values(verifier: &Verifier, now: u64, stale: bool) -> Vec<String> {
    verifier
        .challenges(now, [9; 8], None, stale)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A client that has handled `values`.
pub fn challenged_client(username: &str, password: &str, values: &[String]) -> DigestClient {
    let mut client = DigestClient::new(username, password).unwrap();
    let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    client.handle_challenge(AuthRole::Www, &values).unwrap();
    client
}

/// Looks up a user in a one-user "database" of HA1 values.
pub fn lookup(
    username: &str,
    password: &str,
) -> impl Fn(&str, pbx_sip_auth::HashFunction) -> Option<Ha1> {
    let md5 = Ha1::compute(Algorithm::Md5, username, REALM, password);
    let sha256 = Ha1::compute(Algorithm::Sha256, username, REALM, password);
    let stored_user = username.to_owned();
    move |user, hash| {
        if user != stored_user {
            return None;
        }
        match hash {
            pbx_sip_auth::HashFunction::Md5 => Some(md5.clone()),
            pbx_sip_auth::HashFunction::Sha256 => Some(sha256.clone()),
            _ => None,
        }
    }
}

/// Parses a header and verifies it against the alice/secret account.
pub fn verify_header(
    verifier: &Verifier,
    header: &str,
    tracker: &mut NonceCountTracker,
    now: u64,
) -> Result<u32, pbx_sip_auth::AuthError> {
    verify_header_keyed(verifier, header, tracker, now, None)
}

/// [`verify_header`] for a request instance with a retransmission key.
pub fn verify_header_keyed(
    verifier: &Verifier,
    header: &str,
    tracker: &mut NonceCountTracker,
    now: u64,
    retransmission: Option<u64>,
) -> Result<u32, pbx_sip_auth::AuthError> {
    let credentials = Credentials::parse(header.as_bytes())?;
    let users = lookup("alice", "secret");
    let identity = verifier.verify(
        &RequestContext {
            retransmission,
            ..request()
        },
        &credentials,
        |hash| users(&credentials.username, hash),
        tracker,
        now,
    )?;
    assert_eq!(identity.username, "alice");
    Ok(identity.nonce_count.unwrap_or(0))
}
