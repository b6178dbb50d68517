//! The server side: challenges and verification.

use std::borrow::Cow;
use std::net::IpAddr;

use subtle::ConstantTimeEq;

use crate::algorithm::{Algorithm, Ha1, HashFunction, ResponseInput, compute_response};
use crate::challenge::Challenge;
use crate::credentials::Credentials;
use crate::error::AuthError;
use crate::nonce::{KeyTooShort, NonceError, NonceInfo, NonceIssuer};
use crate::syntax::is_header_safe;
use crate::tracker::NonceCountTracker;

/// Server settings (validated by [`Verifier::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The realm challenged for and required in credentials.
    pub realm: String,
    /// Algorithms offered, in order of preference (RFC 8760 §2.4: SHA-256 before MD5).
    /// Credentials in any other algorithm are refused.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce stays fresh, in seconds.
    pub nonce_lifetime_secs: u64,
    /// Accept credentials without `qop` (RFC 2069). Such credentials carry no nonce count, so
    /// they can be replayed while the nonce is fresh; off by default.
    pub allow_rfc2069: bool,
    /// `opaque` sent in challenges and required back in credentials.
    pub opaque: Option<String>,
    /// Bind nonces to the client's IP address (a nonce used from another address is invalid).
    pub bind_client_address: bool,
}

impl VerifierConfig {
    /// Defaults: SHA-256 then MD5, 300 s nonces, qop required, no opaque, no address binding.
    pub fn new(realm: impl Into<String>) -> VerifierConfig {
        VerifierConfig {
            realm: realm.into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime_secs: 300,
            allow_rfc2069: false,
            opaque: None,
            bind_client_address: false,
        }
    }
}

/// The configuration cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The nonce key is shorter than 32 bytes.
    #[error("nonce key must be at least 32 bytes")]
    KeyTooShort,
    /// No algorithm is enabled.
    #[error("no digest algorithm enabled")]
    NoAlgorithms,
    /// The realm is empty or contains CR, LF or NUL.
    #[error("realm is empty or contains CR, LF or NUL")]
    InvalidRealm,
    /// The opaque value contains CR, LF or NUL.
    #[error("opaque contains CR, LF or NUL")]
    InvalidOpaque,
    /// The nonce lifetime is zero.
    #[error("nonce lifetime must be positive")]
    ZeroLifetime,
}

impl From<KeyTooShort> for ConfigError {
    fn from(_: KeyTooShort) -> ConfigError {
        ConfigError::KeyTooShort
    }
}

/// The request being authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext<'a> {
    /// The method used in the digest (for `ACK` and `CANCEL`, RFC 3261 §22.4 says the
    /// credentials are those of the INVITE, whose method is used).
    pub method: &'a str,
    /// Source address of the request (used when nonces are bound to addresses).
    pub client: Option<IpAddr>,
    /// A key of this request instance (for SIP: a hash of the top Via branch, Call-ID and
    /// CSeq), for servers that answer statelessly and so see UDP retransmissions: the same
    /// credentials (nonce and `nc`) presented again with the same key are accepted as a
    /// retransmission of the request that used them; with another key, or `None`, they are
    /// a replay.
    pub retransmission: Option<u64>,
}

/// Credentials that verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedIdentity<'c> {
    /// The authenticated user name.
    pub username: &'c str,
    /// Algorithm used.
    pub algorithm: Algorithm,
    /// The nonce the credentials were made for.
    pub nonce: NonceInfo,
    /// The accepted nonce count (`None` in RFC 2069 mode).
    pub nonce_count: Option<u32>,
}

/// Issues challenges and verifies credentials for one realm. Cheap to share (`&self`); the
/// replay tracker is the caller's. `Debug` prints no secret.
#[derive(Clone)]
pub struct Verifier {
    config: VerifierConfig,
    issuer: NonceIssuer,
    decoy_secret: [u8; 32],
    /// Per enabled algorithm, the printed challenge around its nonce: `[fresh, stale]`, each
    /// `(before the nonce, after it)` (see [`Verifier::challenge_values`]).
    templates: Vec<[(Box<str>, Box<str>); 2]>,
}

/// Stands in for the nonce when the challenge templates are printed.
const NONCE_MARK: &str = "NONCE";

impl Verifier {
    /// A verifier with nonce `key` (at least 32 random bytes, the same on every node).
    pub fn new(key: &[u8], config: VerifierConfig) -> Result<Verifier, ConfigError> {
        if config.realm.is_empty() || !is_header_safe(&config.realm) {
            return Err(ConfigError::InvalidRealm);
        }
        if config.opaque.as_deref().is_some_and(|o| !is_header_safe(o)) {
            return Err(ConfigError::InvalidOpaque);
        }
        if config.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        if config.nonce_lifetime_secs == 0 {
            return Err(ConfigError::ZeroLifetime);
        }
        let issuer = NonceIssuer::new(key, config.nonce_lifetime_secs)?;
        let decoy_secret = issuer.derive(b"decoy ha1");
        let templates = config
            .algorithms
            .iter()
            .map(|&algorithm| [false, true].map(|stale| template(&config, algorithm, stale)))
            .collect();
        Ok(Verifier {
            config,
            issuer,
            decoy_secret,
            templates,
        })
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// The nonce issuer (to issue or check nonces directly).
    pub fn issuer(&self) -> &NonceIssuer {
        &self.issuer
    }

    /// The challenges to send (one header value each, in order), all with one fresh nonce.
    /// `salt` should be 8 random bytes; `stale` comes from [`crate::Answer::Challenge`].
    pub fn challenges(
        &self,
        now: u64,
        salt: [u8; 8],
        client: Option<IpAddr>,
        stale: bool,
    ) -> Vec<Challenge<'static>> {
        let nonce = self
            .issuer
            .issue(&self.config.realm, self.binding(client), now, salt);
        self.config
            .algorithms
            .iter()
            .map(|algorithm| Challenge {
                realm: Cow::Owned(self.config.realm.clone()),
                domain: None,
                nonce: Cow::Owned(nonce.as_str().to_owned()),
                opaque: self.config.opaque.clone().map(Cow::Owned),
                stale,
                algorithm: Some(Cow::Borrowed(algorithm.name())),
                qop: Some(Cow::Borrowed("auth")),
                params: Vec::new(),
            })
            .collect()
    }

    /// The challenges of [`Verifier::challenges`], printed as header values (the same text
    /// as their `Display`), one per enabled algorithm: each is one allocation, the nonce
    /// put between a prefix and a suffix printed when the verifier was made.
    pub fn challenge_values(
        &self,
        now: u64,
        salt: [u8; 8],
        client: Option<IpAddr>,
        stale: bool,
    ) -> impl Iterator<Item = Vec<u8>> + '_ {
        let nonce = self
            .issuer
            .issue(&self.config.realm, self.binding(client), now, salt);
        self.templates.iter().map(move |pair| {
            let (prefix, suffix) = &pair[usize::from(stale)];
            let nonce = nonce.as_str();
            let mut value = Vec::with_capacity(prefix.len() + nonce.len() + suffix.len());
            value.extend_from_slice(prefix.as_bytes());
            value.extend_from_slice(nonce.as_bytes());
            value.extend_from_slice(suffix.as_bytes());
            value
        })
    }

    /// The stand-in HA1 used for unknown users (see [`Ha1::decoy`]).
    pub fn decoy_ha1(&self, hash: HashFunction, username: &str) -> Ha1 {
        Ha1::decoy(hash, &self.config.realm, username, &self.decoy_secret)
    }

    /// Verifies credentials.
    ///
    /// `ha1_for` is called once with the hash function the credentials need and returns the
    /// stored HA1 of `credentials.username` — or `None` for an unknown user, in which case a
    /// decoy is used and the result is the same [`AuthError::InvalidResponse`] as for a wrong
    /// password. The caller still checks `credentials.uri` against the Request-URI
    /// ([`digest_uri_matches`]). Does not allocate except when the tracker records a new nonce.
    pub fn verify<'c>(
        &self,
        request: &RequestContext<'_>,
        credentials: &'c Credentials<'_>,
        ha1_for: impl FnOnce(HashFunction) -> Option<Ha1>,
        tracker: &mut NonceCountTracker,
        now: u64,
    ) -> Result<VerifiedIdentity<'c>, AuthError> {
        if credentials.realm != self.config.realm.as_str() {
            return Err(AuthError::RealmMismatch);
        }
        let algorithm = credentials
            .algorithm()
            .ok()
            .filter(|algorithm| self.config.algorithms.contains(algorithm))
            .ok_or(AuthError::UnsupportedAlgorithm)?;
        let qop = match credentials.qop.as_deref() {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => Some(qop),
            Some(_) => return Err(AuthError::UnsupportedQop),
            None if self.config.allow_rfc2069 && !algorithm.is_session() => None,
            None => return Err(AuthError::QopRequired),
        };
        // Every path that reaches here with a `-sess` algorithm has qop (checked above).
        if qop.is_some() {
            if credentials.nc.is_none() {
                return Err(AuthError::MissingNonceCount);
            }
            if credentials.cnonce.as_deref().is_none_or(str::is_empty) {
                return Err(AuthError::MissingCnonce);
            }
        }
        let mut received = [0u8; 64];
        let received = lowercase_hex(&credentials.response, algorithm.hash(), &mut received)
            .ok_or(AuthError::MalformedResponse)?;
        if let Some(opaque) = &self.config.opaque
            && credentials.opaque.as_deref() != Some(opaque.as_str())
        {
            return Err(AuthError::OpaqueMismatch);
        }
        let (nonce, expired) = match self.issuer.check(
            &credentials.nonce,
            &self.config.realm,
            self.binding(request.client),
            now,
        ) {
            Ok(info) => (info, false),
            Err(NonceError::Expired(info)) => (info, true),
            Err(NonceError::Invalid) => return Err(AuthError::InvalidNonce),
        };

        // Same work whether or not the user exists: the decoy is always derived.
        let hash = algorithm.hash();
        let decoy = self.decoy_ha1(hash, &credentials.username);
        let ha1 = ha1_for(hash)
            .filter(|ha1| ha1.hash_function() == hash)
            .unwrap_or(decoy);
        let expected = compute_response(
            &ha1,
            &ResponseInput {
                algorithm,
                method: request.method,
                uri: &credentials.uri,
                nonce: &credentials.nonce,
                cnonce: credentials.cnonce.as_deref(),
                nc: credentials.nc.as_ref().map(|nc| nc.as_str()),
                qop,
            },
        );
        if !bool::from(expected.as_bytes().ct_eq(received)) {
            return Err(AuthError::InvalidResponse);
        }
        // RFC 7616 §3.3: stale only when the digest was valid for the old nonce.
        if expired {
            return Err(AuthError::StaleNonce);
        }
        let nonce_count = match (qop, credentials.nc) {
            (Some(_), Some(nc)) => {
                tracker
                    .observe(&nonce, nc.value(), now, request.retransmission)
                    .map_err(|_| AuthError::Replay)?;
                Some(nc.value())
            }
            _ => None,
        };
        Ok(VerifiedIdentity {
            username: &credentials.username,
            algorithm,
            nonce,
            nonce_count,
        })
    }

    fn binding(&self, client: Option<IpAddr>) -> Option<IpAddr> {
        client.filter(|_| self.config.bind_client_address)
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Lowercases a hex response of the right length into `buffer`.
fn lowercase_hex<'b>(
    response: &str,
    hash: HashFunction,
    buffer: &'b mut [u8; 64],
) -> Option<&'b [u8]> {
    let len = hash.hex_len();
    if response.len() != len {
        return None;
    }
    let target = buffer.get_mut(..len)?;
    for (out, b) in target.iter_mut().zip(response.bytes()) {
        if !b.is_ascii_hexdigit() {
            return None;
        }
        *out = b.to_ascii_lowercase();
    }
    Some(target)
}

/// Whether the digest `uri` names the Request-URI: equal, or equal ignoring ASCII case outside
/// the user part. A quick check; full RFC 3261 §19.1.4 URI equality lives in `pbx-sip`.
///
/// An IPv6 reference host matches with or without its brackets (`sip:[::1]:5060` and
/// `sip:::1:5060`): SIPp 3.6 drops them from the digest `uri`. Only brackets around a valid
/// IPv6 address are ignored; every other difference is still a mismatch.
pub fn digest_uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if uri_matches(digest_uri, request_uri) {
        return true;
    }
    match (unbracketed(digest_uri), unbracketed(request_uri)) {
        (None, None) => false,
        (digest, request) => uri_matches(
            digest.as_deref().unwrap_or(digest_uri),
            request.as_deref().unwrap_or(request_uri),
        ),
    }
}

/// `uri` with the brackets of its IPv6 reference host removed, if it has one.
fn unbracketed(uri: &str) -> Option<String> {
    let open = uri.find('[')?;
    let close = open + uri.get(open..)?.find(']')?;
    let inner = uri.get(open + 1..close)?;
    inner.parse::<std::net::Ipv6Addr>().ok()?;
    let mut out = String::with_capacity(uri.len());
    out.push_str(uri.get(..open)?);
    out.push_str(inner);
    out.push_str(uri.get(close + 1..)?);
    Some(out)
}

fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    let digest_uri = digest_uri.trim();
    let request_uri = request_uri.trim();
    if digest_uri == request_uri {
        return true;
    }
    match (digest_uri.split_once('@'), request_uri.split_once('@')) {
        (Some((digest_user, digest_host)), Some((request_user, request_host))) => {
            let scheme_len = digest_user.find(':').map_or(0, |i| i + 1);
            let (digest_scheme, digest_user) = digest_user.split_at(scheme_len);
            let Some(request_scheme) = request_user.get(..scheme_len) else {
                return false;
            };
            let request_user = request_user.get(scheme_len..).unwrap_or_default();
            digest_scheme.eq_ignore_ascii_case(request_scheme)
                && digest_user == request_user
                && digest_host.eq_ignore_ascii_case(request_host)
        }
        (None, None) => digest_uri.eq_ignore_ascii_case(request_uri),
        _ => false,
    }
}

/// One challenge printed with [`NONCE_MARK`] as its nonce, split around it. The mark
/// appears once as `nonce="NONCE"`: the realm and opaque before it are quoted strings, whose
/// own quotes would be escaped.
fn template(config: &VerifierConfig, algorithm: Algorithm, stale: bool) -> (Box<str>, Box<str>) {
    let printed = Challenge {
        realm: Cow::Borrowed(&config.realm),
        domain: None,
        nonce: Cow::Borrowed(NONCE_MARK),
        opaque: config.opaque.as_deref().map(Cow::Borrowed),
        stale,
        algorithm: Some(Cow::Borrowed(algorithm.name())),
        qop: Some(Cow::Borrowed("auth")),
        params: Vec::new(),
    }
    .to_string();
    let mark = format!("nonce=\"{NONCE_MARK}\"");
    let at = printed
        .find(&mark)
        .map_or(printed.len(), |at| at + "nonce=\"".len());
    let (prefix, rest) = printed.split_at(at);
    let suffix = rest.strip_prefix(NONCE_MARK).unwrap_or(rest);
    (prefix.into(), suffix.into())
}
