//! The provisioning secret: how a phone config can carry a SIP password although the store
//! keeps only HA1 digests, and the unguessable per-device HTTPS URL.
//!
//! * When provisioning is enabled for a device, the server gives its credential a fresh
//!   password (the registrar keeps using HA1 digests as before) and stores that password
//!   **sealed**: ChaCha20-Poly1305 under a 256-bit key derived from the server's provisioning
//!   key in the data directory (`secrets/provisioning.key`, mode 0600), with the device id as
//!   associated data, so a sealed value copied onto another device's row does not open. A
//!   database dump alone reveals no password; the key file alone reveals nothing either.
//! * The sealed row also keeps the MD5 HA1 the password was sealed for. If the credential is
//!   re-keyed elsewhere (`POST .../credentials`), the HA1s differ and provisioning refuses to
//!   hand out a stale password (the fetch log says `stale_credentials`) until provisioning is
//!   enabled again.
//! * The HTTPS URL token is `hex(device uuid) ‖ hex(HMAC-SHA256(url key, device id ‖ epoch))[..32]`:
//!   128 bits an attacker cannot guess, recomputable for display without storing it, and
//!   revoked by bumping the epoch (re-enabling provisioning).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use pbx_domain::DeviceId;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Length of the URL token in hex characters (32 for the device id, 32 for the tag).
pub const URL_TOKEN_LEN: usize = 64;

/// Why a sealed value does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// Not in the `v1.<base64>` format.
    #[error("sealed value is malformed")]
    Malformed,
    /// Wrong key, wrong device, or tampered.
    #[error("sealed value does not open with this key for this device")]
    Rejected,
    /// The random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// The server's provisioning keys. `Debug` prints no key material.
pub struct Sealer {
    seal_key: LessSafeKey,
    url_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<keys>)")
    }
}

fn derive(master: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = match HmacSha256::new_from_slice(master) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => return [0; 32],
    };
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl Sealer {
    /// Keys derived from the master secret (at least 32 bytes from the data directory).
    ///
    /// # Errors
    /// [`SealError::Malformed`] when the master secret is shorter than 32 bytes.
    pub fn new(master: &[u8]) -> Result<Self, SealError> {
        if master.len() < 32 {
            return Err(SealError::Malformed);
        }
        let seal = derive(master, b"cloudpbx provisioning seal v1");
        let unbound =
            UnboundKey::new(&CHACHA20_POLY1305, &seal).map_err(|_| SealError::Malformed)?;
        Ok(Self {
            seal_key: LessSafeKey::new(unbound),
            url_key: derive(master, b"cloudpbx provisioning url v1"),
        })
    }

    /// Seals `secret` for `device`. `nonce` must be fresh random bytes (the caller draws them;
    /// this crate does no I/O).
    pub fn seal(&self, device: DeviceId, secret: &str, nonce: [u8; NONCE_LEN]) -> String {
        let mut buffer = secret.as_bytes().to_vec();
        let aad = device.as_uuid();
        // Sealing in place cannot fail for inputs below ChaCha20-Poly1305's 256 GiB limit.
        let sealed = self.seal_key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut buffer,
        );
        if sealed.is_err() {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        format!("v1.{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for `device`.
    ///
    /// # Errors
    /// [`SealError`] when it is malformed, or sealed with another key or for another device.
    pub fn open(&self, device: DeviceId, sealed: &str) -> Result<String, SealError> {
        let encoded = sealed.strip_prefix("v1.").ok_or(SealError::Malformed)?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let aad = device.as_uuid();
        let plain = self
            .seal_key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| SealError::Rejected)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Rejected)
    }

    fn tag(&self, device: DeviceId, epoch: i64) -> [u8; 32] {
        let mut mac = match HmacSha256::new_from_slice(&self.url_key) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        mac.update(device.as_uuid().as_bytes());
        mac.update(&epoch.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The URL token of `device` at `epoch`.
    pub fn url_token(&self, device: DeviceId, epoch: i64) -> String {
        let tag = self.tag(device, epoch);
        format!(
            "{}{}",
            hex::encode(device.as_uuid().as_bytes()),
            hex::encode(&tag[..16])
        )
    }

    /// The device a token claims to be for (still to be verified with
    /// [`Sealer::verify_url_token`] against the stored epoch).
    pub fn token_device(token: &str) -> Option<DeviceId> {
        if token.len() != URL_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut id = [0u8; 16];
        hex::decode_to_slice(&token[..32], &mut id).ok()?;
        Some(DeviceId::from_uuid(uuid::Uuid::from_bytes(id)))
    }

    /// Whether `token` is the current token of `device` (constant-time comparison).
    pub fn verify_url_token(&self, device: DeviceId, epoch: i64, token: &str) -> bool {
        let expected = self.url_token(device, epoch);
        use subtle::ConstantTimeEq;
        expected.len() == token.len()
            && bool::from(
                expected
                    .as_bytes()
                    .ct_eq(token.to_ascii_lowercase().as_bytes()),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> DeviceId {
        DeviceId::from_parts(1_700_000_000_000, &[n; 10])
    }

    #[test]
    fn seals_and_opens_only_for_the_same_device_and_key() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal(device(1), "s3cret-pass", [1; NONCE_LEN]);
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(sealer.open(device(1), &sealed).unwrap(), "s3cret-pass");
        assert_eq!(sealer.open(device(2), &sealed), Err(SealError::Rejected));
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open(device(1), &sealed), Err(SealError::Rejected));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open(device(1), &String::from_utf8(tampered).unwrap())
                .is_err()
        );
        assert_eq!(sealer.open(device(1), "v2.xx"), Err(SealError::Malformed));
        assert_eq!(sealer.open(device(1), "v1.AAAA"), Err(SealError::Malformed));
        assert!(Sealer::new(&[1u8; 31]).is_err());
    }

    #[test]
    fn url_tokens_name_the_device_and_change_with_the_epoch() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let token = sealer.url_token(device(1), 1);
        assert_eq!(token.len(), URL_TOKEN_LEN);
        assert_eq!(Sealer::token_device(&token), Some(device(1)));
        assert!(sealer.verify_url_token(device(1), 1, &token));
        assert!(sealer.verify_url_token(device(1), 1, &token.to_ascii_uppercase()));
        assert!(!sealer.verify_url_token(device(1), 2, &token));
        assert!(!sealer.verify_url_token(device(2), 1, &token));
        let other = Sealer::new(&[9u8; 32]).unwrap();
        assert!(!other.verify_url_token(device(1), 1, &token));
        assert_eq!(Sealer::token_device("zz"), None);
        assert_eq!(Sealer::token_device(&"g".repeat(64)), None);
    }
}
