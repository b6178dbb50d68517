//! Reading what a user dialled: extension, national, international or emergency number.

use std::str::FromStr;

use pbx_domain::{E164, Extension};
use phonenumber::country;

/// A country's numbering plan, as far as dialling needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPlan {
    country: String,
    country_code: u16,
    international_prefix: String,
    national_prefix: Option<String>,
}

/// What a dialled string means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialled {
    /// An extension of the caller's own tenant (it may not exist: the engine looks it up).
    Internal(Extension),
    /// A public number.
    External(E164),
    /// An emergency short code (`112`, `911`, ...), to be routed to a trunk as dialled.
    Emergency(String),
}

impl Dialled {
    /// The digits routes match against: E.164 digits without `+`, or the short code.
    /// `None` for internal calls.
    pub fn route_digits(&self) -> Option<&str> {
        match self {
            Self::Internal(_) => None,
            Self::External(number) => Some(number.digits()),
            Self::Emergency(code) => Some(code),
        }
    }

    /// The normalised text stored in CDRs: the extension, `+E.164` or the short code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Internal(extension) => extension.as_str(),
            Self::External(number) => number.as_str(),
            Self::Emergency(code) => code,
        }
    }
}

/// Why a dialled string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NormaliseError {
    /// Nothing was dialled.
    #[error("empty number")]
    Empty,
    /// Characters other than digits, a leading `+` and separators.
    #[error("not a phone number")]
    NotANumber,
    /// Digits that fit no numbering rule (too short or long, bad country code).
    #[error("invalid number: {0}")]
    Invalid(&'static str),
}

/// Emergency codes recognised in every country (GSM 112 and the common national ones).
const EMERGENCY_ANYWHERE: &[&str] = &["112", "911"];

impl NumberPlan {
    /// The plan of ISO 3166 country `iso` (`NL`, `DE`, `US`); `None` for an unknown code.
    pub fn for_country(iso: &str) -> Option<Self> {
        let iso = iso.trim().to_ascii_uppercase();
        let metadata = phonenumber::metadata::DATABASE.by_id(iso.as_str())?;
        let international_prefix = metadata
            .preferred_international_prefix()
            .map(str::to_owned)
            .or_else(|| {
                metadata
                    .international_prefix()
                    .map(|regex| regex.as_str().to_owned())
                    .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            })
            .unwrap_or_else(|| "00".to_owned());
        Some(Self {
            country: iso,
            country_code: metadata.country_code(),
            international_prefix,
            national_prefix: metadata
                .national_prefix()
                .filter(|prefix| !prefix.is_empty())
                .map(str::to_owned),
        })
    }

    /// The Netherlands (the default plan).
    pub fn netherlands() -> Self {
        Self {
            country: "NL".to_owned(),
            country_code: 31,
            international_prefix: "00".to_owned(),
            national_prefix: Some("0".to_owned()),
        }
    }

    /// The ISO country code.
    pub fn country(&self) -> &str {
        &self.country
    }

    /// The country calling code (31 for NL).
    pub const fn country_code(&self) -> u16 {
        self.country_code
    }

    fn is_emergency(&self, digits: &str) -> bool {
        if EMERGENCY_ANYWHERE.contains(&digits) {
            return true;
        }
        phonenumber::metadata::DATABASE
            .by_id(self.country.as_str())
            .and_then(|metadata| metadata.descriptors().emergency())
            .is_some_and(|descriptor| digits.len() <= 4 && descriptor.is_match(digits))
    }

    /// A national number (with its national prefix) to E.164.
    fn national(&self, digits: &str) -> Result<E164, NormaliseError> {
        if let Ok(id) = country::Id::from_str(&self.country)
            && let Ok(number) = phonenumber::parse(Some(id), digits)
            && phonenumber::is_valid(&number)
        {
            let text = number.format().mode(phonenumber::Mode::E164).to_string();
            if let Ok(e164) = E164::parse(&text) {
                return Ok(e164);
            }
        }
        // Numbers the metadata does not know yet (new ranges): strip the prefix ourselves.
        let significant = self
            .national_prefix
            .as_deref()
            .and_then(|prefix| digits.strip_prefix(prefix))
            .unwrap_or(digits);
        if significant.len() < 4 {
            return Err(NormaliseError::Invalid("too short for a national number"));
        }
        E164::parse(&format!("+{}{significant}", self.country_code))
            .map_err(|_| NormaliseError::Invalid("too long for a national number"))
    }
}

impl Default for NumberPlan {
    fn default() -> Self {
        Self::netherlands()
    }
}

/// Reads a dialled string (a Request-URI user part, a `tel:` number) with `plan`.
///
/// Separators (space, `-`, `.`, `(`, `)`, `/`) are ignored, `%2B` is a `+`, and URI
/// parameters after `;` are cut. Order of the rules: `+` → E.164; emergency codes; extension
/// shape (2–8 digits, not starting with 0) → internal; the international prefix → E.164;
/// the national prefix (or a subscriber number) → E.164 in the plan's country.
pub fn normalise(dialled: &str, plan: &NumberPlan) -> Result<Dialled, NormaliseError> {
    let dialled = dialled.split(';').next().unwrap_or_default();
    let dialled = dialled.replace("%2B", "+").replace("%2b", "+");
    let compact: String = dialled
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
        .collect();
    if compact.is_empty() {
        return Err(NormaliseError::Empty);
    }
    if let Some(rest) = compact.strip_prefix('+') {
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NormaliseError::NotANumber);
        }
        return E164::parse(&compact)
            .map(Dialled::External)
            .map_err(|_| NormaliseError::Invalid("not an E.164 number"));
    }
    if !compact.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NormaliseError::NotANumber);
    }
    if plan.is_emergency(&compact) {
        return Ok(Dialled::Emergency(compact));
    }
    if let Ok(extension) = Extension::parse(&compact) {
        return Ok(Dialled::Internal(extension));
    }
    if let Some(rest) = compact.strip_prefix(plan.international_prefix.as_str()) {
        return E164::parse(&format!("+{rest}"))
            .map(Dialled::External)
            .map_err(|_| NormaliseError::Invalid("not a valid international number"));
    }
    plan.national(&compact).map(Dialled::External)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn external(text: &str) -> Dialled {
        Dialled::External(E164::parse(text).unwrap())
    }

    #[test]
    fn dutch_dialling() {
        let nl = NumberPlan::for_country("nl").unwrap();
        assert_eq!(nl, NumberPlan::netherlands());
        assert_eq!(
            normalise("0201234567", &nl).unwrap(),
            external("+31201234567")
        );
        assert_eq!(
            normalise("06-12345678", &nl).unwrap(),
            external("+31612345678")
        );
        assert_eq!(
            normalise("0031201234567", &nl).unwrap(),
            external("+31201234567")
        );
        assert_eq!(
            normalise("00442079460018", &nl).unwrap(),
            external("+442079460018")
        );
        assert_eq!(
            normalise("+49 30 1234567", &nl).unwrap(),
            external("+49301234567")
        );
        assert_eq!(
            normalise("%2B31201234567", &nl).unwrap(),
            external("+31201234567")
        );
        assert_eq!(
            normalise("0201234567;phone-context=+31", &nl).unwrap(),
            external("+31201234567")
        );
        assert_eq!(normalise("0800 0123", &nl).unwrap(), external("+318000123"));
        assert_eq!(
            normalise("112", &nl).unwrap(),
            Dialled::Emergency("112".into())
        );
        assert_eq!(
            normalise("201", &nl).unwrap(),
            Dialled::Internal(Extension::parse("201").unwrap())
        );
        assert_eq!(
            normalise("12345678", &nl).unwrap(),
            Dialled::Internal(Extension::parse("12345678").unwrap())
        );
    }

    #[test]
    fn refusals() {
        let nl = NumberPlan::netherlands();
        assert_eq!(normalise("", &nl), Err(NormaliseError::Empty));
        assert_eq!(normalise(" ; x", &nl), Err(NormaliseError::Empty));
        assert_eq!(normalise("alice", &nl), Err(NormaliseError::NotANumber));
        assert_eq!(normalise("+31abc", &nl), Err(NormaliseError::NotANumber));
        assert!(matches!(
            normalise("+0123", &nl),
            Err(NormaliseError::Invalid(_))
        ));
        assert!(matches!(
            normalise("00", &nl),
            Err(NormaliseError::Invalid(_))
        ));
        assert!(matches!(
            normalise("0", &nl),
            Err(NormaliseError::Invalid(_))
        ));
        assert!(matches!(
            normalise("0123456789012345678", &nl),
            Err(NormaliseError::Invalid(_))
        ));
    }

    #[test]
    fn other_countries() {
        let us = NumberPlan::for_country("US").unwrap();
        assert_eq!(us.country_code(), 1);
        assert_eq!(
            normalise("011442079460018", &us).unwrap(),
            external("+442079460018")
        );
        assert_eq!(
            normalise("911", &us).unwrap(),
            Dialled::Emergency("911".into())
        );
        let de = NumberPlan::for_country("DE").unwrap();
        assert_eq!(
            normalise("030 1234567", &de).unwrap(),
            external("+49301234567")
        );
        assert!(NumberPlan::for_country("XX").is_none());
    }

    #[test]
    fn route_digits() {
        let nl = NumberPlan::netherlands();
        assert_eq!(
            normalise("0201234567", &nl).unwrap().route_digits(),
            Some("31201234567")
        );
        assert_eq!(normalise("201", &nl).unwrap().route_digits(), None);
        assert_eq!(normalise("201", &nl).unwrap().as_str(), "201");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_externals_are_e164(text in "[+0-9 ()%2Bb;.-]{0,24}") {
            let nl = NumberPlan::netherlands();
            if let Ok(Dialled::External(number)) = normalise(&text, &nl) {
                proptest::prop_assert!(E164::parse(number.as_str()).is_ok());
            }
        }
    }
}
