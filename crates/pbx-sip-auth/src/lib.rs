//! Sans-IO SIP digest authentication (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760): header
//! grammar, stateless nonces, server-side verification and the client side for trunks.
//!
//! The crate works on raw header value bytes (it does not depend on the message crate), never
//! reads the clock (`now` is seconds since the Unix epoch, passed in), has no RNG (salts and
//! cnonces are passed in) and does no I/O.
//!
//! # Server (registrar, proxy)
//!
//! 1. Build one [`Verifier`] per realm at start-up from a secret key of at least 32 random
//!    bytes (the same key on every node, so any node accepts any node's nonces) and a
//!    [`VerifierConfig`]. Keep one [`NonceCountTracker`] per process.
//! 2. A request without credentials: answer 401 (or 407, see [`AuthRole`]) with one header
//!    per value of [`Verifier::challenges`] — SHA-256 first, then MD5 (RFC 8760 §2.4).
//! 3. A request with credentials: [`Credentials::parse`] the header value, check
//!    `credentials.uri` against the Request-URI with [`digest_uri_matches`], then call
//!    [`Verifier::verify`] with a closure that looks up the stored [`Ha1`] of
//!    `credentials.username` for the hash function asked for. Return `None` for an unknown
//!    user: a decoy HA1 is used and the error is the same as for a wrong password.
//! 4. On error, [`AuthError::answer`] says what to send: a fresh challenge (possibly with
//!    `stale=true`) or 400. Parse errors convert into [`AuthError`] with `?`
//!    (another scheme becomes [`AuthError::UnsupportedScheme`] → challenge, RFC 4475 §3.3.7).
//!
//! Nonces are stateless ([`NonceIssuer`]): an HMAC over issue time, salt, realm and optionally
//! the client address. An authentic but expired nonce with a correct response gives
//! [`AuthError::StaleNonce`]; a nonce count not above the last one accepted gives
//! [`AuthError::Replay`]. Responses are compared in constant time.
//!
//! # Client (trunks that challenge us)
//!
//! [`DigestClient::handle_challenge`] takes the challenge values of a 401/407;
//! [`DigestClient::authorization`] builds the credentials for the retried request with
//! `qop=auth`, a caller-supplied cnonce and an incrementing `nc`. `auth-int` is not supported.
//!
//! ```
//! use pbx_sip_auth::*;
//!
//! let key = [7u8; 32];
//! let verifier = Verifier::new(&key, VerifierConfig::new("example.com")).unwrap();
//! let mut tracker = NonceCountTracker::new(1024);
//! let now = 1_700_000_000;
//! let challenges: Vec<String> = verifier
//!     .challenges(now, [1; 8], None, false)
//!     .iter()
//!     .map(|c| c.to_string())
//!     .collect();
//!
//! let mut client = DigestClient::new("alice", "secret").unwrap();
//! let values: Vec<&[u8]> = challenges.iter().map(|c| c.as_bytes()).collect();
//! client.handle_challenge(AuthRole::Www, &values).unwrap();
//! let header = client
//!     .authorization("REGISTER", "sip:example.com", [2; 16])
//!     .unwrap()
//!     .to_string();
//!
//! let credentials = Credentials::parse(header.as_bytes()).unwrap();
//! let request = RequestContext { method: "REGISTER", client: None, retransmission: None };
//! let stored = Ha1::compute(Algorithm::Sha256, "alice", "example.com", "secret");
//! let identity = verifier
//!     .verify(&request, &credentials, |_| Some(stored), &mut tracker, now + 1)
//!     .unwrap();
//! assert_eq!(identity.username, "alice");
//! assert_eq!(identity.algorithm, Algorithm::Sha256);
//! ```

mod algorithm;
mod challenge;
mod client;
mod credentials;
mod error;
mod nonce;
mod server;
mod syntax;
mod tracker;

pub use algorithm::{
    Algorithm, Ha1, HashFunction, HexDigest, InvalidHa1, ResponseInput, compute_response,
};
pub use challenge::{Challenge, MAX_CHALLENGES};
pub use client::{ClientError, DigestClient};
pub use credentials::{Credentials, NonceCount, UnknownAlgorithm};
pub use error::{Answer, AuthError, AuthRole};
pub use nonce::{
    IssuedNonce, KeyTooShort, NONCE_LEN, NonceError, NonceInfo, NonceIssuer, unix_secs,
};
pub use server::{
    ConfigError, RequestContext, VerifiedIdentity, Verifier, VerifierConfig, digest_uri_matches,
};
pub use syntax::{AuthParam, MAX_EXTRA_PARAMS, MAX_VALUE_LEN, ParseError};
pub use tracker::NonceCountTracker;
