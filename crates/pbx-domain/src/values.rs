//! Validated value types: slugs, extensions, E.164 numbers, SIP domains, display names, realms.
//!
//! Each type can only be built through its parser, so a value that exists is valid. All of
//! them serialise as their canonical text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

macro_rules! text_value {
    ($name:ident) => {
        impl $name {
            /// The canonical text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// A tenant's short name, unique on the platform: used in URLs and in the provisioning
/// address `tftp://<slug>@provisioning-host`.
///
/// Rules: 2–63 characters of `a-z`, `0-9` and `-`; starts with a letter; does not end with
/// `-` and has no `--`. Upper-case ASCII input is folded to lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Parses and normalises a slug.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let slug = text.trim().to_ascii_lowercase();
        let fail = |reason| Err(ValidationError::InvalidSlug { reason });
        if slug.len() < 2 || slug.len() > 63 {
            return fail("must be 2 to 63 characters");
        }
        if !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return fail("only a-z, 0-9 and '-' are allowed");
        }
        if !slug.as_bytes()[0].is_ascii_lowercase() {
            return fail("must start with a letter");
        }
        if slug.ends_with('-') || slug.contains("--") {
            return fail("no trailing '-' and no '--'");
        }
        Ok(Self(slug))
    }
}
text_value!(Slug);

/// An extension number, unique within its tenant (it may repeat across tenants).
///
/// Rules: 2–8 ASCII digits, not starting with `0` (the usual outside-line prefix, so an
/// extension can never shadow a national or international dial string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Extension(String);

impl Extension {
    /// Parses an extension number.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        let fail = |reason| Err(ValidationError::InvalidExtension { reason });
        if text.len() < 2 || text.len() > 8 {
            return fail("must be 2 to 8 digits");
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return fail("only digits are allowed");
        }
        if text.starts_with('0') {
            return fail("must not start with 0");
        }
        Ok(Self(text.to_owned()))
    }
}
text_value!(Extension);

/// A phone number in E.164 form: `+`, then 2–15 digits of which the first is not `0`.
///
/// Input may use spaces, `-`, `.`, `(` and `)` as separators, and `00` instead of `+`; the
/// canonical form has neither (`+31201234567`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    /// Parses and normalises an E.164 number.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let fail = |reason| Err(ValidationError::InvalidE164 { reason });
        let compact: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest
        } else {
            return fail("must start with '+' or '00'");
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return fail("only digits may follow '+'");
        }
        if digits.len() < 2 || digits.len() > 15 {
            return fail("must have 2 to 15 digits");
        }
        if digits.starts_with('0') {
            return fail("country code cannot start with 0");
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The digits without the leading `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}
text_value!(E164);

/// A tenant's SIP domain: a DNS host name (RFC 1123), at least two labels, stored in lower
/// case without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SipDomain(String);

impl SipDomain {
    /// Parses and normalises a SIP domain.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let fail = |reason| Err(ValidationError::InvalidSipDomain { reason });
        let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() || domain.len() > 253 {
            return fail("must be 1 to 253 characters");
        }
        let mut labels = 0;
        for label in domain.split('.') {
            labels += 1;
            if label.is_empty() || label.len() > 63 {
                return fail("each label must be 1 to 63 characters");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return fail("only a-z, 0-9, '-' and '.' are allowed");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return fail("a label cannot start or end with '-'");
            }
        }
        if labels < 2 {
            return fail("must have at least two labels");
        }
        if domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return fail("must be a host name, not an IP address");
        }
        Ok(Self(domain))
    }
}
text_value!(SipDomain);

/// A human-readable name (user display name, tenant or reseller name): 1–100 characters
/// after trimming, no control characters (it ends up in SIP `From` display names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let fail = |reason| Err(ValidationError::InvalidDisplayName { reason });
        let text = text.trim();
        let length = text.chars().count();
        if length == 0 || length > 100 {
            return fail("must be 1 to 100 characters");
        }
        if text.chars().any(char::is_control) {
            return fail("control characters are not allowed");
        }
        Ok(Self(text.to_owned()))
    }
}
text_value!(DisplayName);

/// The digest realm that HA1 values are computed for.
///
/// The platform uses ONE realm (from configuration) for every tenant: the tenant is found
/// from the globally unique auth user name, not from the domain the phone sends, so phones
/// with a wrong or missing domain still authenticate. Changing the realm invalidates every
/// stored HA1, which is why each credential row records the realm it was made for.
/// Rules: 1–128 printable ASCII characters, without `"` and `\` (it is sent quoted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Realm(String);

impl Realm {
    /// Parses a realm.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let fail = |reason| Err(ValidationError::InvalidRealm { reason });
        if text.is_empty() || text.len() > 128 {
            return fail("must be 1 to 128 characters");
        }
        if !text
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return fail("printable ASCII without '\"' and '\\' only");
        }
        Ok(Self(text.to_owned()))
    }
}
text_value!(Realm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules() {
        assert_eq!(Slug::parse("Acme-Corp").unwrap().as_str(), "acme-corp");
        for bad in [
            "a",
            "-acme",
            "acme-",
            "ac--me",
            "1acme",
            "acme_corp",
            "ac me",
            "",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Slug::parse(&"a".repeat(63)).is_ok());
        assert!(Slug::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn extension_rules() {
        assert_eq!(Extension::parse(" 201 ").unwrap().as_str(), "201");
        for bad in ["1", "012", "12a", "123456789", "+123", "*12", ""] {
            assert!(Extension::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn e164_normalises_and_rejects() {
        assert_eq!(
            E164::parse("+31 20 123-4567").unwrap().as_str(),
            "+31201234567"
        );
        assert_eq!(
            E164::parse("0031 (20) 1234567").unwrap().as_str(),
            "+31201234567"
        );
        assert_eq!(
            E164::parse("+441632960001").unwrap().digits(),
            "441632960001"
        );
        for bad in [
            "31201234567",
            "+0201234567",
            "+1",
            "+1234567890123456",
            "+31a2",
            "",
            "+",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sip_domain_rules() {
        assert_eq!(
            SipDomain::parse("Acme.PBX.example.com.").unwrap().as_str(),
            "acme.pbx.example.com"
        );
        for bad in [
            "localhost",
            "-a.example.com",
            "a..example.com",
            "a_b.example.com",
            "10.0.0.1",
            "",
        ] {
            assert!(SipDomain::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_name_and_realm() {
        assert_eq!(
            DisplayName::parse("  Ann de Vries ").unwrap().as_str(),
            "Ann de Vries"
        );
        assert!(DisplayName::parse("bad\r\nname").is_err());
        assert!(DisplayName::parse("   ").is_err());
        assert!(Realm::parse("cloudpbx").is_ok());
        assert!(Realm::parse("bad\"realm").is_err());
        assert!(Realm::parse("").is_err());
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let slug: Slug = serde_json::from_str("\"ACME\"").unwrap();
        assert_eq!(slug.as_str(), "acme");
        assert!(serde_json::from_str::<E164>("\"12345\"").is_err());
        assert_eq!(serde_json::to_string(&slug).unwrap(), "\"acme\"");
    }
}
