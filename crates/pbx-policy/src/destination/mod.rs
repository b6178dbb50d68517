//! Outbound destination control: classify a dialled number, then check it against policy.
//!
//! [`classify`] normalises what the user dialled (`0…` national, `00…` international, `+…`
//! E.164, short extensions, feature codes) and classifies it with the `phonenumber` crate's
//! numbering plans plus the platform's own lists (`lists.rs`: emergency short numbers,
//! satellite and international-network ranges, the high-fraud list, allowed service numbers).
//! [`OutboundPolicy::check`] applies class of service, default blocks and tenant exceptions.

mod lists;
mod policy;

use std::str::FromStr;

use phonenumber::{Mode, Type, country};
use serde::{Deserialize, Serialize};

pub use policy::{OutboundPolicy, PolicyDefaults, TenantExceptions};

use lists::{ClassTag, RangeKind};

/// Longest dial string considered (after removing separators); longer is `Invalid`.
pub const MAX_DIALLED: usize = 32;

/// The class of a dialled destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DestinationClass {
    /// An emergency number; always allowed.
    Emergency,
    /// An extension of the own tenant.
    Internal,
    /// A national fixed-line (or geographic-rate non-geographic) number.
    NationalFixed,
    /// A national mobile number.
    Mobile,
    /// Freephone.
    TollFree,
    /// Shared cost.
    SharedCost,
    /// Premium rate, national or international.
    PremiumRate,
    /// Another country.
    International {
        /// ISO 3166 alpha-2 code, or the calling code when the plan has none.
        country: String,
    },
    /// Satellite networks.
    Satellite,
    /// Service numbers, feature codes and international networks.
    Special,
    /// Not a number.
    Invalid,
}

/// A classified destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The class.
    pub class: DestinationClass,
    /// The number in E.164 (`+31201234567`) where it is a public number.
    pub e164: Option<String>,
    /// Set when a platform list flags the range as high-risk (blocked by default): its
    /// prefix and label, e.g. `+53 Cuba`.
    pub high_risk: Option<String>,
}

impl Destination {
    fn of(class: DestinationClass) -> Self {
        Self {
            class,
            e164: None,
            high_risk: None,
        }
    }

    fn public(class: DestinationClass, e164: String) -> Self {
        Self {
            class,
            e164: Some(e164),
            high_risk: None,
        }
    }
}

/// Classifies `dialled` for a tenant in `tenant_country` (ISO alpha-2, e.g. `"NL"`) whose
/// extensions are `internal_extension_len` digits long. Never panics.
pub fn classify(dialled: &str, tenant_country: &str, internal_extension_len: usize) -> Destination {
    let cleaned: String = dialled
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\t'))
        .take(MAX_DIALLED + 1)
        .collect();
    if cleaned.is_empty() || cleaned.len() > MAX_DIALLED {
        return Destination::of(DestinationClass::Invalid);
    }
    let (plus, digits) = match cleaned.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, cleaned.as_str()),
    };
    if !plus
        && digits.bytes().any(|b| b == b'*' || b == b'#')
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
    {
        return Destination::of(DestinationClass::Special);
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Destination::of(DestinationClass::Invalid);
    }
    let country = tenant_country.to_ascii_uppercase();
    let e164 = if plus {
        digits.to_owned()
    } else {
        if is_emergency(digits, &country) {
            return Destination::of(DestinationClass::Emergency);
        }
        if is_short_service(digits, &country) {
            return Destination::of(DestinationClass::Special);
        }
        if internal_extension_len > 0 && digits.len() == internal_extension_len {
            return Destination::of(DestinationClass::Internal);
        }
        if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else {
            match national_to_e164(digits, &country) {
                Some(e) => e,
                None => return Destination::of(DestinationClass::Invalid),
            }
        }
    };
    classify_e164(&e164, &country)
}

fn is_emergency(digits: &str, country: &str) -> bool {
    lists::EMERGENCY_ALWAYS.contains(&digits)
        || lists::EMERGENCY_BY_COUNTRY
            .iter()
            .any(|(c, n)| *c == country && *n == digits)
}

/// NL harmonised short numbers: 116xxx (European social services, free) and 14 + area code
/// (municipalities, local rate).
fn is_short_service(digits: &str, country: &str) -> bool {
    (digits.len() == 6 && digits.starts_with("116"))
        || (country == "NL" && digits.starts_with("140") && (5..=6).contains(&digits.len()))
}

/// National (or local) form to E.164 digits with the tenant country's plan.
fn national_to_e164(digits: &str, country: &str) -> Option<String> {
    let id = country::Id::from_str(country).ok()?;
    let number = phonenumber::parse(Some(id), digits).ok()?;
    let formatted = number.format().mode(Mode::E164).to_string();
    formatted.strip_prefix('+').map(str::to_owned)
}

fn classify_e164(digits: &str, tenant_country: &str) -> Destination {
    if digits.len() < 3 || digits.len() > 15 || digits.starts_with('0') {
        return Destination::of(DestinationClass::Invalid);
    }
    let e164 = format!("+{digits}");
    if let Some((_, label)) = lists::SERVICE_NUMBERS.iter().find(|(n, _)| *n == digits) {
        let _ = label;
        return Destination::public(DestinationClass::Special, e164);
    }
    let range = lists::platform_range(digits);
    if let Some((prefix, label, RangeKind::Class(tag))) = range {
        let mut dest = Destination::public(tag.class(), e164);
        if matches!(tag, ClassTag::SpecialHighRisk) {
            dest.high_risk = Some(format!("+{prefix} {label}"));
        }
        return dest;
    }
    let Ok(number) = phonenumber::parse(None, &e164) else {
        return Destination::of(DestinationClass::Invalid);
    };
    let code = number.code().value();
    let region = number.country().id().map(|id| id.as_ref().to_owned());
    let national = region.as_deref() == Some(tenant_country)
        || (region.is_none() && tenant_code(tenant_country) == Some(code));
    let kind = number.number_type(&phonenumber::metadata::DATABASE);
    let class = if national {
        match kind {
            Type::FixedLine | Type::FixedLineOrMobile | Type::Voip | Type::Uan => {
                DestinationClass::NationalFixed
            }
            Type::Mobile | Type::Pager => DestinationClass::Mobile,
            Type::TollFree => DestinationClass::TollFree,
            Type::SharedCost => DestinationClass::SharedCost,
            Type::PremiumRate => DestinationClass::PremiumRate,
            Type::Emergency => DestinationClass::Emergency,
            Type::PersonalNumber
            | Type::Voicemail
            | Type::ShortCode
            | Type::StandardRate
            | Type::Carrier
            | Type::NoInternational => DestinationClass::Special,
            Type::Unknown => DestinationClass::Invalid,
        }
    } else if kind == Type::PremiumRate {
        DestinationClass::PremiumRate
    } else {
        DestinationClass::International {
            country: region.unwrap_or_else(|| code.to_string()),
        }
    };
    let mut dest = if class == DestinationClass::Invalid {
        Destination::of(class)
    } else {
        Destination::public(class, e164)
    };
    if let Some((prefix, label, RangeKind::HighFraud)) = range {
        dest.high_risk = Some(format!("+{prefix} {label}"));
    }
    dest
}

fn tenant_code(country: &str) -> Option<u16> {
    phonenumber::metadata::DATABASE
        .by_id(country)
        .map(|m| m.country_code())
}
