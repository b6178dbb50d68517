//! The client side, for trunks that challenge us (RFC 3261 §22.2–22.3).
//!
//! Feed every `WWW-Authenticate` (401) or `Proxy-Authenticate` (407) value of a response to
//! [`DigestClient::handle_challenge`], then ask [`DigestClient::authorization`] for the value
//! of the `Authorization` / `Proxy-Authorization` header of the retried request (and of later
//! requests: the nonce is reused with an incremented `nc` until the server re-challenges).
//! The client picks the strongest algorithm offered and always uses `qop=auth` when offered;
//! `auth-int` is not supported (no SIP trunk we know requires it). A `stale=true` re-challenge
//! is answered without new credentials; a non-stale re-challenge right after an answer to a
//! fresh nonce means the password is wrong and is reported as
//! [`ClientError::CredentialsRejected`] so the caller does not loop.

use std::borrow::Cow;
use std::fmt;

use crate::algorithm::{Algorithm, Ha1, ResponseInput, compute_response};
use crate::challenge::Challenge;
use crate::credentials::{Credentials, NonceCount};
use crate::error::AuthRole;
use crate::syntax::{ParseError, is_header_safe};

/// Why the client cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A challenge value does not parse.
    #[error("malformed challenge: {0}")]
    MalformedChallenge(ParseError),
    /// No Digest challenge with an algorithm and qop this client supports.
    #[error("no supported digest challenge offered")]
    NoSupportedChallenge,
    /// The server challenged again (not stale) right after we answered a fresh nonce: the
    /// username or password is wrong.
    #[error("credentials rejected by the server")]
    CredentialsRejected,
    /// [`DigestClient::authorization`] was called before any challenge.
    #[error("no challenge received yet")]
    NoChallenge,
    /// The username, password, method or uri contains CR, LF or NUL.
    #[error("value contains CR, LF or NUL")]
    InvalidCharacter,
    /// The nonce count is exhausted (2^32 - 1 requests on one nonce).
    #[error("nonce count exhausted")]
    NonceCountExhausted,
}

/// Digest client state for one account and one role (use one client for 401s and another for
/// 407s if a trunk sends both). `Debug` does not print the password.
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    state: Option<State>,
}

#[derive(Debug, Clone)]
struct State {
    role: AuthRole,
    challenge: Challenge<'static>,
    algorithm: Algorithm,
    use_qop: bool,
    ha1: Ha1,
    /// Number of authorizations made with this nonce.
    count: u32,
}

impl DigestClient {
    /// A client for `username`/`password`.
    pub fn new(username: &str, password: &str) -> Result<DigestClient, ClientError> {
        if !is_header_safe(username) || !is_header_safe(password) {
            return Err(ClientError::InvalidCharacter);
        }
        Ok(DigestClient {
            username: username.to_owned(),
            password: password.to_owned(),
            state: None,
        })
    }

    /// The role of the current challenge (which header to send), if challenged.
    pub fn role(&self) -> Option<AuthRole> {
        self.state.as_ref().map(|state| state.role)
    }

    /// The algorithm chosen for the current challenge, if challenged.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.state.as_ref().map(|state| state.algorithm)
    }

    /// Takes the challenge header values of a 401 or 407 response and picks the strongest
    /// supported challenge (ties go to the one listed first).
    pub fn handle_challenge(
        &mut self,
        role: AuthRole,
        values: &[&[u8]],
    ) -> Result<(), ClientError> {
        let mut best: Option<(Challenge<'_>, Algorithm, bool)> = None;
        for value in values {
            let challenges = match Challenge::parse_list(value) {
                Ok(challenges) => challenges,
                Err(ParseError::UnsupportedScheme) => continue,
                Err(error) => return Err(ClientError::MalformedChallenge(error)),
            };
            for challenge in challenges {
                let Ok(algorithm) = challenge.algorithm() else {
                    continue;
                };
                let use_qop = challenge.offers_qop_auth();
                if challenge.qop.is_some() && !use_qop {
                    continue; // only auth-int (or unknown) offered
                }
                if algorithm.is_session() && !use_qop {
                    continue; // -sess needs a cnonce, which only qop carries
                }
                if !is_header_safe(&challenge.realm) || !is_header_safe(&challenge.nonce) {
                    continue;
                }
                let stronger = best
                    .as_ref()
                    .is_none_or(|(_, current, _)| strength(algorithm) > strength(*current));
                if stronger {
                    best = Some((challenge, algorithm, use_qop));
                }
            }
        }
        let Some((challenge, algorithm, use_qop)) = best else {
            return Err(ClientError::NoSupportedChallenge);
        };
        if let Some(previous) = &self.state
            && previous.count == 1
            && !challenge.stale
        {
            self.state = None;
            return Err(ClientError::CredentialsRejected);
        }
        let ha1 = Ha1::compute(algorithm, &self.username, &challenge.realm, &self.password);
        self.state = Some(State {
            role,
            challenge: challenge.into_owned(),
            algorithm,
            use_qop,
            ha1,
            count: 0,
        });
        Ok(())
    }

    /// Forgets the current challenge (e.g. after the account was changed).
    pub fn reset(&mut self) {
        self.state = None;
    }

    /// Credentials for a request with `method` and Request-URI `uri`; print them with
    /// `to_string()` into the header named by [`AuthRole::credentials_header`]. `cnonce` is 16
    /// random bytes from the caller (this crate has no RNG). Each call increments `nc`.
    pub fn authorization(
        &mut self,
        method: &str,
        uri: &str,
        cnonce: [u8; 16],
    ) -> Result<Credentials<'static>, ClientError> {
        if !is_header_safe(method) || !is_header_safe(uri) {
            return Err(ClientError::InvalidCharacter);
        }
        let state = self.state.as_mut().ok_or(ClientError::NoChallenge)?;
        state.count = state
            .count
            .checked_add(1)
            .ok_or(ClientError::NonceCountExhausted)?;
        let cnonce = hex::encode(cnonce);
        let nc = NonceCount::new(state.count);
        let qop = state.use_qop.then_some("auth");
        let response = compute_response(
            &state.ha1,
            &ResponseInput {
                algorithm: state.algorithm,
                method,
                uri,
                nonce: &state.challenge.nonce,
                cnonce: qop.map(|_| cnonce.as_str()),
                nc: qop.map(|_| nc.as_str()),
                qop,
            },
        );
        let challenge = &state.challenge;
        Ok(Credentials {
            username: Cow::Owned(self.username.clone()),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: Cow::Owned(uri.to_owned()),
            response: Cow::Owned(response.as_str().to_owned()),
            // RFC 2617 clients omit algorithm for MD5; sending it is allowed and clearer.
            algorithm: Some(Cow::Borrowed(state.algorithm.name())),
            cnonce: state.use_qop.then_some(Cow::Owned(cnonce)),
            opaque: challenge.opaque.clone(),
            qop: qop.map(Cow::Borrowed),
            nc: state.use_qop.then_some(nc),
            params: Vec::new(),
        })
    }
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Preference between algorithms: stronger hash first, then the plain variant over `-sess`.
fn strength(algorithm: Algorithm) -> u8 {
    match algorithm {
        Algorithm::Sha512_256 => 6,
        Algorithm::Sha512_256Sess => 5,
        Algorithm::Sha256 => 4,
        Algorithm::Sha256Sess => 3,
        Algorithm::Md5 => 2,
        Algorithm::Md5Sess => 1,
    }
}
