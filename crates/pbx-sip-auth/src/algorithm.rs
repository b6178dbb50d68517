//! Digest algorithms (RFC 7616 §3.2, RFC 8760), the stored `HA1` value and the response
//! computation. Everything here hashes into stack buffers: no allocation.

use std::fmt;

use hmac::{KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// A digest algorithm as named in the `algorithm` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5` (RFC 2617; still needed for old phones). The default when `algorithm` is absent.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (RFC 7616, RFC 8760).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm this crate implements, strongest hash first.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Md5,
        Algorithm::Md5Sess,
    ];

    /// The name used in the `algorithm` parameter.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Looks an algorithm up by name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    /// The hash function behind the algorithm (and so the kind of stored [`Ha1`] it needs).
    pub const fn hash(self) -> HashFunction {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => HashFunction::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashFunction::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => HashFunction::Sha512_256,
        }
    }

    /// Whether this is a `-sess` variant (HA1 mixes in the nonce and cnonce).
    pub const fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hash function of an algorithm; a stored HA1 is per hash function (`MD5` and `MD5-sess`
/// share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashFunction {
    /// MD5, 32 hex digits.
    Md5,
    /// SHA-256, 64 hex digits.
    Sha256,
    /// SHA-512/256, 64 hex digits.
    Sha512_256,
}

impl HashFunction {
    /// Length of the hex form of this hash.
    pub const fn hex_len(self) -> usize {
        match self {
            HashFunction::Md5 => 32,
            HashFunction::Sha256 | HashFunction::Sha512_256 => 64,
        }
    }

    /// Hashes `parts` joined by `:` (RFC 7616 `H(a:b:c)`) into lowercase hex.
    pub(crate) fn hex_of(self, parts: &[&[u8]]) -> HexDigest {
        match self {
            HashFunction::Md5 => hex_digest::<Md5>(parts),
            HashFunction::Sha256 => hex_digest::<Sha256>(parts),
            HashFunction::Sha512_256 => hex_digest::<Sha512_256>(parts),
        }
    }
}

/// A lowercase hex digest on the stack (at most 64 digits).
#[derive(Clone, PartialEq, Eq)]
pub struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    fn from_bytes(bytes: &[u8]) -> HexDigest {
        let mut digest = HexDigest {
            buf: [0; 64],
            len: 0,
        };
        let len = (bytes.len() * 2).min(64);
        let source = bytes.get(..len / 2).unwrap_or_default();
        if let Some(target) = digest.buf.get_mut(..len)
            && hex::encode_to_slice(source, target).is_ok()
        {
            digest.len = len;
        }
        digest
    }

    /// The digits as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex_digest<D: Digest>(parts: &[&[u8]]) -> HexDigest {
    let mut hasher = D::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    HexDigest::from_bytes(&hasher.finalize())
}

/// A stored `HA1 = H(username:realm:password)` for one hash function. Store this, never the
/// password. `Debug` does not print the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    hash: HashFunction,
    hex: HexDigest,
}

/// A stored HA1 string is not the right number of hex digits for its hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored HA1 is not {expected} hexadecimal digits")]
pub struct InvalidHa1 {
    /// Number of hex digits the hash function needs.
    pub expected: usize,
}

impl Ha1 {
    /// Computes HA1 for `algorithm`'s hash function (`-sess` variants store the same HA1 as
    /// their base algorithm; the session part is mixed in at verification time).
    pub fn compute(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> Ha1 {
        let hash = algorithm.hash();
        Ha1 {
            hash,
            hex: hash.hex_of(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()]),
        }
    }

    /// Loads a stored HA1 from its hex form (either case).
    pub fn from_hex(hash: HashFunction, hex: &str) -> Result<Ha1, InvalidHa1> {
        let expected = hash.hex_len();
        let mut bytes = [0u8; 32];
        let target = bytes.get_mut(..expected / 2).unwrap_or_default();
        if hex.len() != expected || hex::decode_to_slice(hex, target).is_err() {
            return Err(InvalidHa1 { expected });
        }
        Ok(Ha1 {
            hash,
            hex: HexDigest::from_bytes(target),
        })
    }

    /// A deterministic stand-in HA1 for a user that does not exist, so that the answer and the
    /// work done are the same as for a wrong password. `server_secret` must stay private: with
    /// it an attacker could tell decoys from real users.
    pub fn decoy(hash: HashFunction, realm: &str, username: &str, server_secret: &[u8]) -> Ha1 {
        let mut mac = match HmacSha256::new_from_slice(server_secret) {
            Ok(mac) => mac,
            // HMAC accepts keys of any length; this arm is unreachable in practice.
            Err(_) => HmacSha256::new(&Default::default()),
        };
        mac.update(b"pbx-sip-auth decoy ha1 v1\0");
        mac.update(realm.as_bytes());
        mac.update(b"\0");
        mac.update(username.as_bytes());
        let tag = mac.finalize().into_bytes();
        Ha1 {
            hash,
            hex: HexDigest::from_bytes(tag.get(..hash.hex_len() / 2).unwrap_or_default()),
        }
    }

    /// The hash function this HA1 belongs to.
    pub fn hash_function(&self) -> HashFunction {
        self.hash
    }

    /// The lowercase hex form, for storing.
    pub fn as_hex(&self) -> &str {
        self.hex.as_str()
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ha1")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// The inputs of a `response` (request-digest) computation, RFC 7616 §3.4.1.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    /// Algorithm in use.
    pub algorithm: Algorithm,
    /// Request method (`REGISTER`, `INVITE`, ...; for `ACK`/`CANCEL` the INVITE's, RFC 3261 §22.4).
    pub method: &'a str,
    /// The `uri` parameter exactly as sent.
    pub uri: &'a str,
    /// Server nonce.
    pub nonce: &'a str,
    /// Client nonce (needed with qop and with `-sess`).
    pub cnonce: Option<&'a str>,
    /// `nc` exactly as sent (8 hex digits).
    pub nc: Option<&'a str>,
    /// `qop` value (`auth`), or `None` for RFC 2069 compatibility.
    pub qop: Option<&'a str>,
}

/// Computes the expected `response` value. `ha1` must belong to `input.algorithm`'s hash
/// function; a mismatching HA1 gives a digest that matches nothing.
pub fn compute_response(ha1: &Ha1, input: &ResponseInput<'_>) -> HexDigest {
    let hash = input.algorithm.hash();
    let cnonce = input.cnonce.unwrap_or_default().as_bytes();
    let session;
    let ha1_hex = if input.algorithm.is_session() {
        session = hash.hex_of(&[ha1.hex.as_bytes(), input.nonce.as_bytes(), cnonce]);
        session.as_bytes()
    } else {
        ha1.hex.as_bytes()
    };
    let ha2 = hash.hex_of(&[input.method.as_bytes(), input.uri.as_bytes()]);
    match input.qop {
        Some(qop) => hash.hex_of(&[
            ha1_hex,
            input.nonce.as_bytes(),
            input.nc.unwrap_or_default().as_bytes(),
            cnonce,
            qop.as_bytes(),
            ha2.as_bytes(),
        ]),
        None => hash.hex_of(&[ha1_hex, input.nonce.as_bytes(), ha2.as_bytes()]),
    }
}
