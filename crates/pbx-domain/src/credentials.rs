//! Generated secrets: SIP auth user names and passwords, HA1 digests, API token secrets.
//!
//! This crate is sans-IO: every generator takes its random bytes from the caller, who must
//! draw them from a cryptographically secure generator (the store uses the operating
//! system's). The sizes are part of the type signatures, so too little randomness cannot be
//! passed by mistake.

use std::fmt;

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ValidationError;
use crate::values::Realm;

/// RFC 4648 base32 alphabet in lower case (no `0`, `1`, `8`, `9`: fewer look-alikes when a
/// password is typed into a phone's keypad menu).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Encodes bytes as unpadded lower-case base32.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[usize::from((buffer >> bits) & 31)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[usize::from((buffer << (5 - bits)) & 31)]));
    }
    out
}

fn is_base32(text: &str) -> bool {
    text.bytes().all(|b| BASE32.contains(&b))
}

/// Random bytes in an auth user name: 80 bits, 16 base32 characters.
pub const AUTH_USER_NAME_RANDOM_BYTES: usize = 10;
/// Random bytes in a SIP password: 128 bits, 26 base32 characters.
pub const PASSWORD_RANDOM_BYTES: usize = 16;
/// Random bytes in an API token secret: 256 bits.
pub const API_TOKEN_RANDOM_BYTES: usize = 32;

/// A SIP digest auth user name: generated, globally unique, not guessable.
///
/// It carries neither tenant nor extension (an attacker who knows a company's extension
/// numbers learns nothing about its user names), so the tenant is found from the name
/// itself. 80 random bits make collisions negligible; the store's unique index catches the
/// rest and the store retries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AuthUserName(String);

impl AuthUserName {
    /// A new user name from 10 random bytes.
    pub fn generate(random: &[u8; AUTH_USER_NAME_RANDOM_BYTES]) -> Self {
        Self(base32(random))
    }

    /// Parses a stored or received user name (12–32 lower-case base32 characters).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        if (12..=32).contains(&text.len()) && is_base32(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(ValidationError::InvalidSecretFormat {
                kind: "auth user name",
            })
        }
    }

    /// The user name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuthUserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AuthUserName {
    type Error = ValidationError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<AuthUserName> for String {
    fn from(name: AuthUserName) -> String {
        name.0
    }
}

/// A generated SIP password (128 random bits). It exists only in memory: it is shown once
/// to whoever created the credential and never stored; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SipPassword(String);

impl SipPassword {
    /// A new password from 16 random bytes.
    pub fn generate(random: &[u8; PASSWORD_RANDOM_BYTES]) -> Self {
        Self(base32(random))
    }

    /// The password text, to hand to the user once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SipPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SipPassword(<redacted>)")
    }
}

/// Which digest algorithm an HA1 belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// MD5 (RFC 2617): 32 hex digits.
    Md5,
    /// SHA-256 (RFC 7616 / RFC 8760): 64 hex digits.
    Sha256,
}

impl DigestAlgorithm {
    const fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 => 64,
        }
    }
}

/// `H(username:realm:password)` in lower-case hex: what the registrar needs to check a
/// digest response, and all that is stored of a SIP password. It is a password equivalent
/// for its realm, so `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ha1 {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Ha1 {
    /// Computes the HA1 of `username:realm:password` with `algorithm`.
    pub fn compute(
        algorithm: DigestAlgorithm,
        username: &AuthUserName,
        realm: &Realm,
        password: &SipPassword,
    ) -> Self {
        let input = format!(
            "{}:{}:{}",
            username.as_str(),
            realm.as_str(),
            password.expose()
        );
        let hex = match algorithm {
            DigestAlgorithm::Md5 => hex::encode(Md5::digest(input.as_bytes())),
            DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(input.as_bytes())),
        };
        Self { algorithm, hex }
    }

    /// Parses a stored HA1 (lower-case hex of the algorithm's length).
    pub fn parse(algorithm: DigestAlgorithm, text: &str) -> Result<Self, ValidationError> {
        let valid = text.len() == algorithm.hex_len()
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self {
                algorithm,
                hex: text.to_owned(),
            })
        } else {
            Err(ValidationError::InvalidSecretFormat { kind: "HA1" })
        }
    }

    /// The algorithm.
    pub const fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lower-case hex digest.
    pub fn as_hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ha1({:?}, <redacted>)", self.algorithm)
    }
}

/// A freshly generated API token secret (`cpbx_` + 52 base32 characters). Shown once; only
/// its [`TokenHash`] is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenSecret(String);

impl ApiTokenSecret {
    /// A new secret from 32 random bytes.
    pub fn generate(random: &[u8; API_TOKEN_RANDOM_BYTES]) -> Self {
        Self(format!("cpbx_{}", base32(random)))
    }

    /// The secret text, to hand to the client once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash to store and to look the token up by.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for ApiTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTokenSecret(<redacted>)")
    }
}

/// SHA-256 of an API token secret, lower-case hex. A presented bearer token is hashed and
/// looked up; 256-bit random secrets need no slow hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// Parses a stored hash (64 lower-case hex digits).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        Ha1::parse(DigestAlgorithm::Sha256, text)
            .map(|ha1| Self(ha1.hex))
            .map_err(|_| ValidationError::InvalidSecretFormat { kind: "token hash" })
    }

    /// The hex digest.
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 section 10, lower case and without padding.
        for (input, expected) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn generated_names_and_passwords_have_the_promised_size() {
        let name = AuthUserName::generate(&[0xa5; 10]);
        assert_eq!(name.as_str().len(), 16);
        assert_eq!(AuthUserName::parse(name.as_str()).unwrap(), name);
        let password = SipPassword::generate(&[0x5a; 16]);
        assert_eq!(
            password.expose().len(),
            26,
            "26 base32 chars carry the 128 bits"
        );
        assert_ne!(
            AuthUserName::generate(&[1; 10]),
            AuthUserName::generate(&[2; 10])
        );
        assert!(!format!("{password:?}").contains(password.expose()));
        assert!(AuthUserName::parse("201").is_err());
        assert!(AuthUserName::parse("ABCDEFGHIJKLMNOP").is_err());
    }

    #[test]
    fn ha1_values_match_known_digests() {
        // Values checked with `printf 'user:realm:pass' | md5sum` / `sha256sum`.
        let user = AuthUserName::parse("aaaaaaaaaaaaaaaa").unwrap();
        let realm = Realm::parse("cloudpbx").unwrap();
        let password = SipPassword("secret".to_owned());
        let md5 = Ha1::compute(DigestAlgorithm::Md5, &user, &realm, &password);
        let sha = Ha1::compute(DigestAlgorithm::Sha256, &user, &realm, &password);
        assert_eq!(
            md5.as_hex(),
            hex::encode(Md5::digest(b"aaaaaaaaaaaaaaaa:cloudpbx:secret"))
        );
        assert_eq!(md5.as_hex(), KNOWN_MD5);
        assert_eq!(sha.as_hex(), KNOWN_SHA256);
        assert_eq!(Ha1::parse(DigestAlgorithm::Md5, md5.as_hex()).unwrap(), md5);
        assert!(Ha1::parse(DigestAlgorithm::Sha256, md5.as_hex()).is_err());
        assert!(!format!("{md5:?}").contains(md5.as_hex()));
    }

    const KNOWN_MD5: &str = "69fc32e908e76d78cc59e78e6e2e143b";
    const KNOWN_SHA256: &str = "fb7f9287dd5da86b84b20c0caf86312913441d328d385cccc904abc53c53ada4";

    #[test]
    fn api_token_hash_is_sha256_of_the_secret() {
        let secret = ApiTokenSecret::generate(&[9; 32]);
        assert!(secret.expose().starts_with("cpbx_"));
        assert_eq!(secret.expose().len(), 5 + 52);
        assert_eq!(secret.hash(), TokenHash::of(secret.expose()));
        assert_eq!(
            TokenHash::parse(secret.hash().as_hex()).unwrap(),
            secret.hash()
        );
        assert_eq!(
            TokenHash::of("abc").as_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
