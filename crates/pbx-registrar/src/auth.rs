//! Step 3 and 4 of RFC 3261 §10.3: who is registering. The tenant and the AOR come from the
//! authenticated credential, never from the To header.
//!
//! Enumeration safety: an unknown (or disabled) user name and a wrong password take the same
//! path through [`pbx_sip_auth::Verifier::verify`] (a decoy HA1 stands in for the missing
//! one) and get the same 401 with the same headers. The whitelist is checked after the
//! digest, whatever its outcome: a known account reached from a non-whitelisted address
//! gets 403 whether or not the password was right, so a foreign address learns nothing
//! about the password. (It does learn that a whitelisted account of that generated,
//! 80-bit-random name exists; names are not guessable, so this is accepted.)

use std::net::SocketAddr;

use bytes::Bytes;
use pbx_domain::{DeviceId, DigestAlgorithm, DirectorySnapshot, SipCredential, TenantId, UserId};
use pbx_sip::{HeaderName, Request, Response, StatusCode};
use pbx_sip_auth::{
    Answer, AuthError, AuthRole, Credentials, Ha1, HashFunction, NonceCountTracker, RequestContext,
    Verifier, digest_uri_matches,
};

use crate::event::{AuthFailure, RegistrationEvent};
use crate::ids::IdGenerator;
use crate::types::Now;

/// The registering account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) tenant_id: TenantId,
    pub(crate) user_id: UserId,
    pub(crate) device_id: DeviceId,
    pub(crate) aor: String,
    /// [`retransmission_key`] of the authenticated request (computed once, for the nonce
    /// count and for the bindings it sets).
    pub(crate) request_key: u64,
}

/// A refusal: the response to send and the security event to publish, if any.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) response: Response,
    pub(crate) event: Option<RegistrationEvent>,
}

pub(crate) struct AuthInput<'a> {
    pub(crate) request: &'a Request,
    pub(crate) source: SocketAddr,
    /// The REGISTER came over TLS (a whitelist-exempt device needs it outside the whitelist).
    pub(crate) tls: bool,
    pub(crate) now: Now,
    pub(crate) directory: &'a DirectorySnapshot,
    pub(crate) verifier: &'a Verifier,
}

/// The key of one REGISTER instance: its source and its top Via (with the branch, as stamped
/// on arrival), Call-ID, CSeq, Contacts, Expires and Authorization, byte for byte. A UDP
/// retransmission has the same key, so the registrar, which answers REGISTER statelessly,
/// accepts its credentials again (the nonce count is not new); a replay from anywhere else,
/// or of other credentials, is refused.
pub(crate) fn retransmission_key(request: &Request, source: SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut hasher);
    for name in [HeaderName::Via, HeaderName::CallId, HeaderName::CSeq] {
        request.headers().get(&name).hash(&mut hasher);
    }
    // What it asks for and how it proves it: the same CSeq with other Contacts or other
    // credentials is not a retransmission.
    for name in [
        HeaderName::Contact,
        HeaderName::Expires,
        HeaderName::Authorization,
    ] {
        for value in request.headers().get_all(&name) {
            value.hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Authenticates a REGISTER and resolves its account.
pub(crate) fn authenticate(
    input: &AuthInput<'_>,
    tracker: &mut NonceCountTracker,
    ids: &mut IdGenerator,
) -> Result<Account, Box<Refusal>> {
    let values = input.request.authorization();
    let mut first_error = None;
    let mut chosen = None;
    for value in &values {
        match Credentials::parse(value) {
            Ok(credentials) if credentials.realm == input.verifier.realm() => {
                chosen = Some(credentials);
                break;
            }
            Ok(_) => {}
            Err(error) => {
                first_error.get_or_insert(AuthError::from(error));
            }
        }
    }
    let Some(credentials) = chosen else {
        return Err(Box::new(match first_error {
            Some(error) => refusal_for(input, ids, &error),
            None => Refusal {
                response: challenge(input, ids, false),
                event: None,
            },
        }));
    };
    let request_uri = String::from_utf8_lossy(&input.request.uri().to_bytes()).into_owned();
    if !digest_uri_matches(&credentials.uri, &request_uri) {
        // RFC 3261 §22.4 ties the credentials to the Request-URI: a mismatch is malformed.
        return Err(Box::new(Refusal {
            response: reply(input, ids, StatusCode::BAD_REQUEST),
            event: Some(auth_failed(
                AuthFailure::MalformedCredentials,
                input.source,
                None,
            )),
        }));
    }
    let request_key = retransmission_key(input.request, input.source);
    let context = RequestContext {
        method: "REGISTER",
        client: Some(input.source.ip()),
        retransmission: Some(request_key),
    };
    let directory = input.directory;
    // One directory lookup serves the digest and the whitelist check.
    let credential = directory.usable_credential(&credentials.username);
    let verified = input.verifier.verify(
        &context,
        &credentials,
        |hash| stored_ha1(credential, hash),
        tracker,
        input.now.unix_secs(),
    );
    if let Some(credential) = credential
        && !directory.source_permitted(credential, input.source.ip(), input.tls)
    {
        return Err(Box::new(Refusal {
            response: reply(input, ids, StatusCode::FORBIDDEN),
            event: Some(auth_failed(
                AuthFailure::NotWhitelisted,
                input.source,
                Some(credential),
            )),
        }));
    }
    if let Err(error) = verified {
        return Err(Box::new(refusal_for(input, ids, &error)));
    }
    // `verify` only succeeds with a real HA1, so the credential exists.
    let Some(credential) = credential else {
        return Err(Box::new(refusal_for(
            input,
            ids,
            &AuthError::InvalidResponse,
        )));
    };
    let aor = directory
        .user(credential.user_id)
        .zip(directory.tenant(credential.tenant_id))
        .map(|(user, tenant)| format!("sip:{}@{}", user.extension, tenant.sip_domain));
    let Some(aor) = aor else {
        // The snapshot is inconsistent (credential without user or tenant).
        return Err(Box::new(Refusal {
            response: reply(input, ids, StatusCode::SERVER_INTERNAL_ERROR),
            event: None,
        }));
    };
    Ok(Account {
        tenant_id: credential.tenant_id,
        user_id: credential.user_id,
        device_id: credential.device_id,
        aor,
        request_key,
    })
}

/// The stored HA1 for the hash function the credentials use.
fn stored_ha1(credential: Option<&SipCredential>, hash: HashFunction) -> Option<Ha1> {
    let credential = credential?;
    let stored = match hash {
        HashFunction::Md5 => &credential.ha1_md5,
        HashFunction::Sha256 => &credential.ha1_sha256,
        _ => return None,
    };
    let expected = match hash {
        HashFunction::Md5 => DigestAlgorithm::Md5,
        _ => DigestAlgorithm::Sha256,
    };
    if stored.algorithm() != expected {
        return None;
    }
    Ha1::from_hex(hash, stored.as_hex()).ok()
}

fn refusal_for(input: &AuthInput<'_>, ids: &mut IdGenerator, error: &AuthError) -> Refusal {
    let failure = match error {
        AuthError::InvalidResponse => Some(AuthFailure::InvalidCredentials),
        AuthError::Replay => Some(AuthFailure::Replay),
        AuthError::StaleNonce | AuthError::UnsupportedScheme => None,
        AuthError::Malformed(_)
        | AuthError::MissingNonceCount
        | AuthError::MissingCnonce
        | AuthError::MalformedResponse => Some(AuthFailure::MalformedCredentials),
        _ => Some(AuthFailure::InvalidNonce),
    };
    let response = match error.answer(AuthRole::Www) {
        Answer::Challenge { stale, .. } => challenge(input, ids, stale),
        _ => reply(input, ids, StatusCode::BAD_REQUEST),
    };
    Refusal {
        response,
        // The account stays anonymous: naming it would tell a wrong password from an
        // unknown user in the event log's consumers (webhooks).
        event: failure.map(|reason| auth_failed(reason, input.source, None)),
    }
}

fn auth_failed(
    reason: AuthFailure,
    source: SocketAddr,
    credential: Option<&SipCredential>,
) -> RegistrationEvent {
    RegistrationEvent::AuthFailed {
        reason,
        source,
        tenant_id: credential.map(|c| c.tenant_id),
        user_id: credential.map(|c| c.user_id),
    }
}

/// A 401 with one WWW-Authenticate per enabled algorithm (SHA-256 first).
fn challenge(input: &AuthInput<'_>, ids: &mut IdGenerator, stale: bool) -> Response {
    let salt = ids.next_u64().to_be_bytes();
    let mut response = reply(input, ids, StatusCode::UNAUTHORIZED);
    for value in
        input
            .verifier
            .challenge_values(input.now.unix_secs(), salt, Some(input.source.ip()), stale)
    {
        response
            .headers_mut()
            .push(HeaderName::WwwAuthenticate, Bytes::from(value));
    }
    response
}

/// A response with the registrar's To tag.
pub(crate) fn reply(input: &AuthInput<'_>, ids: &IdGenerator, status: StatusCode) -> Response {
    reply_to(input.request, ids, status)
}

/// A response to `request` with a To tag derived from its Call-ID.
pub(crate) fn reply_to(request: &Request, ids: &IdGenerator, status: StatusCode) -> Response {
    let call_id = request.call_id().unwrap_or_default();
    Response::for_request(request, status).with_to_tag(ids.tag_for(&call_id))
}
