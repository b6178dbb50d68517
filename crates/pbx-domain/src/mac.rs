//! MAC addresses of desk phones (the key that provisioning finds a phone's config by).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// A 48-bit MAC address.
///
/// Accepted notations: `00:15:65:AA:BB:CC`, `00-15-65-aa-bb-cc`, `0015.65aa.bbcc` (Cisco) and
/// `001565aabbcc`, in either case. It displays as `00:15:65:aa:bb:cc`; [`MacAddress::bare`]
/// gives the `001565aabbcc` form that phones use in configuration file names (and that the
/// store keeps, so equal MACs in different notations collide on the unique index).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// Parses a MAC address in any accepted notation.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        let hex: String = match text.len() {
            12 => text.to_owned(),
            14 if is_grouped(text, '.', 4) => text.replace('.', ""),
            17 if is_grouped(text, ':', 2) => text.replace(':', ""),
            17 if is_grouped(text, '-', 2) => text.replace('-', ""),
            _ => return Err(ValidationError::InvalidMac),
        };
        let mut bytes = [0u8; 6];
        hex::decode_to_slice(hex.as_bytes(), &mut bytes)
            .map_err(|_| ValidationError::InvalidMac)?;
        Ok(Self(bytes))
    }

    /// The six bytes.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Twelve lower-case hex digits without separators (`001565aabbcc`).
    pub fn bare(&self) -> String {
        hex::encode(self.0)
    }
}

/// True when `text` is groups of `width` characters separated by exactly one `separator`.
fn is_grouped(text: &str, separator: char, width: usize) -> bool {
    text.split(separator).all(|group| group.len() == width)
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddress({self})")
    }
}

impl FromStr for MacAddress {
    type Err = ValidationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<String> for MacAddress {
    type Error = ValidationError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<MacAddress> for String {
    fn from(mac: MacAddress) -> String {
        mac.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_notations_normalise_to_one_value() {
        let expected = [0x00, 0x15, 0x65, 0xaa, 0xbb, 0xcc];
        for text in [
            "00:15:65:AA:BB:CC",
            "0015.65aa.bbcc",
            "001565aabbcc",
            "00-15-65-aa-bb-cc",
            "001565AABBCC",
        ] {
            let mac = MacAddress::parse(text).unwrap();
            assert_eq!(mac.octets(), expected, "{text}");
            assert_eq!(mac.bare(), "001565aabbcc");
            assert_eq!(mac.to_string(), "00:15:65:aa:bb:cc");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "00:15:65:AA:BB",
            "00:15:65:AA:BB:CG",
            "0015.65aa.bbc",
            "00:1565:AA:BB:CC:",
            "00:15-65:aa:bb:cc",
            "001565aabbccdd",
            "0015:65aa:bbcc",
            "zz1565aabbcc",
        ] {
            assert_eq!(
                MacAddress::parse(bad),
                Err(ValidationError::InvalidMac),
                "{bad:?}"
            );
        }
    }
}
