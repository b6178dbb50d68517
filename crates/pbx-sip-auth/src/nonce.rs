//! Stateless nonces: the server checks a nonce it issued without remembering it.
//!
//! Wire form: base64url (no padding, 43 characters) of 32 bytes
//! `issued_at (u64 BE seconds) | salt (8 bytes) | HMAC-SHA256(key, domain | issued_at | salt |
//! realm | client address)[..16]`. The tag binds the nonce to the realm and, optionally, to the
//! client's IP address; the timestamp gives expiry without state.

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Length of an encoded nonce.
pub const NONCE_LEN: usize = 43;
const RAW_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// How far in the future an issue time may lie (clock differences between cluster nodes).
const MAX_FUTURE_SKEW_SECS: u64 = 30;

/// Converts a time the caller read from its clock into the seconds this crate takes as `now`
/// (times before the epoch become 0).
pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The nonce key is shorter than [`NonceIssuer::MIN_KEY_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("nonce key must be at least {} bytes", NonceIssuer::MIN_KEY_LEN)]
pub struct KeyTooShort;

/// Issues and checks stateless nonces. `Debug` does not print the key.
#[derive(Clone)]
pub struct NonceIssuer {
    mac: HmacSha256,
    lifetime_secs: u64,
}

/// An issued nonce, held on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IssuedNonce {
    text: [u8; NONCE_LEN],
}

impl IssuedNonce {
    /// The nonce text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

impl fmt::Debug for IssuedNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for IssuedNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an authentic nonce says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceInfo {
    /// Issue time, seconds since the Unix epoch.
    pub issued_at: u64,
    /// Time from which the nonce is stale.
    pub expires_at: u64,
    /// The nonce's authentication tag; unique per nonce, used as the replay-tracker key.
    pub tag: [u8; TAG_LEN],
}

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not issued by this key for this realm and client (forged, tampered or mangled).
    #[error("nonce was not issued by this server")]
    Invalid,
    /// Authentic but past its lifetime: answer with `stale=true`.
    #[error("nonce has expired")]
    Expired(NonceInfo),
}

impl NonceIssuer {
    /// Shortest accepted key.
    pub const MIN_KEY_LEN: usize = 32;

    /// A new issuer. `key` is a server secret of at least 32 random bytes, shared by all nodes
    /// that must accept each other's nonces.
    pub fn new(key: &[u8], lifetime_secs: u64) -> Result<NonceIssuer, KeyTooShort> {
        if key.len() < Self::MIN_KEY_LEN {
            return Err(KeyTooShort);
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|_| KeyTooShort)?;
        Ok(NonceIssuer { mac, lifetime_secs })
    }

    /// How long a nonce stays fresh.
    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }

    /// Issues a nonce at `now` (seconds since the Unix epoch). `salt` should be random (it
    /// makes nonces issued in the same second differ); `client` binds the nonce to an address.
    pub fn issue(
        &self,
        realm: &str,
        client: Option<IpAddr>,
        now: u64,
        salt: [u8; 8],
    ) -> IssuedNonce {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..16].copy_from_slice(&salt);
        let tag = self.tag(&raw[..16], realm, client);
        raw[16..].copy_from_slice(&tag);
        let mut text = [0u8; NONCE_LEN];
        // 32 bytes always encode to exactly 43 characters; a failure would leave an
        // all-zero (and so never authentic) nonce.
        let _ = URL_SAFE_NO_PAD.encode_slice(raw, &mut text);
        IssuedNonce { text }
    }

    /// Checks a nonce received in credentials. Does no allocation.
    pub fn check(
        &self,
        nonce: &str,
        realm: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<NonceInfo, NonceError> {
        if nonce.len() != NONCE_LEN {
            return Err(NonceError::Invalid);
        }
        let mut raw = [0u8; RAW_LEN + 3];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(NonceError::Invalid),
        }
        let mac = self.tag_mac(&raw[..16], realm, client);
        // Constant-time comparison of the tag (digest's `verify_*` uses `subtle`).
        if mac.verify_truncated_left(&raw[16..RAW_LEN]).is_err() {
            return Err(NonceError::Invalid);
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let issued_at = u64::from_be_bytes(issued);
        if issued_at > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
            return Err(NonceError::Invalid);
        }
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&raw[16..RAW_LEN]);
        let info = NonceInfo {
            issued_at,
            expires_at: issued_at.saturating_add(self.lifetime_secs),
            tag,
        };
        if now >= info.expires_at {
            return Err(NonceError::Expired(info));
        }
        Ok(info)
    }

    /// A keyed MAC over `label`, for deriving other secrets from the nonce key.
    pub(crate) fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(b"pbx-sip-auth derive v1\0");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    fn tag_mac(&self, time_and_salt: &[u8], realm: &str, client: Option<IpAddr>) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(b"pbx-sip-auth nonce v1\0");
        mac.update(time_and_salt);
        mac.update(&(realm.len() as u64).to_be_bytes());
        mac.update(realm.as_bytes());
        // An IPv4 peer seen through a dual-stack socket as ::ffff:a.b.c.d is the same client.
        match client.map(|ip| ip.to_canonical()) {
            None => mac.update(&[0]),
            Some(IpAddr::V4(ip)) => {
                mac.update(&[4]);
                mac.update(&ip.octets());
            }
            Some(IpAddr::V6(ip)) => {
                mac.update(&[6]);
                mac.update(&ip.octets());
            }
        }
        mac
    }

    fn tag(&self, time_and_salt: &[u8], realm: &str, client: Option<IpAddr>) -> [u8; TAG_LEN] {
        let full = self
            .tag_mac(time_and_salt, realm, client)
            .finalize()
            .into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}
