//! The platform's own number lists: what the numbering-plan library does not know.
//!
//! Sources of reasoning (kept as data so operators can review them):
//! - ITU-T E.164 assignments: +870 Inmarsat, +881 GMSS (+8816/+8817 Iridium, +8812/+8813
//!   Ellipso, +8818/+8819 Globalstar), +882/+883 international networks (+883 510 is iNum;
//!   the rest are carrier-specific and priced like premium), +979 International Premium Rate
//!   Service (IPRS), +800 Universal International Freephone, +808 International Shared Cost,
//!   +888 OCHA.
//! - International Revenue Share Fraud (IRSF): the destinations that recur in the operator
//!   community's high-risk lists (CFCA fraud loss surveys, GSMA fraud forum test-number
//!   reports, carriers' "high-risk destination" blocks): small-island and West-African
//!   destinations with high termination rates and "free" revenue-share numbers, plus the
//!   premium-like ranges of otherwise ordinary countries (e.g. Latvia +371 90). The list is a
//!   default, not truth: tenants that really call these countries add an exception.

use super::DestinationClass;

/// How an international prefix is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeKind {
    /// A class of its own (satellite, IPRS, freephone, ...), not a country.
    Class(ClassTag),
    /// A country range on the high-fraud list.
    HighFraud,
}

/// Non-country classes a platform range maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassTag {
    Satellite,
    PremiumRate,
    TollFree,
    SharedCost,
    /// Special, and high-risk (blocked by default).
    SpecialHighRisk,
    /// Special, ordinary.
    Special,
}

impl ClassTag {
    pub(crate) fn class(self) -> DestinationClass {
        match self {
            Self::Satellite => DestinationClass::Satellite,
            Self::PremiumRate => DestinationClass::PremiumRate,
            Self::TollFree => DestinationClass::TollFree,
            Self::SharedCost => DestinationClass::SharedCost,
            Self::SpecialHighRisk | Self::Special => DestinationClass::Special,
        }
    }
}

/// A platform range: E.164 digits prefix (no `+`), label, treatment.
pub(crate) type Range = (&'static str, &'static str, RangeKind);

use ClassTag as C;
use RangeKind::{Class, HighFraud};

/// Platform ranges, matched by longest prefix on the E.164 digits.
pub(crate) const PLATFORM_RANGES: &[Range] = &[
    // Satellite and global services (ITU-T E.164 list of assigned country codes).
    ("870", "Inmarsat", Class(C::Satellite)),
    ("881", "Global Mobile Satellite System", Class(C::Satellite)),
    ("8816", "Iridium", Class(C::Satellite)),
    ("8817", "Iridium", Class(C::Satellite)),
    ("882", "International networks", Class(C::SpecialHighRisk)),
    ("883", "International networks", Class(C::SpecialHighRisk)),
    (
        "979",
        "International Premium Rate Service",
        Class(C::PremiumRate),
    ),
    (
        "800",
        "Universal International Freephone",
        Class(C::TollFree),
    ),
    (
        "808",
        "International Shared Cost Service",
        Class(C::SharedCost),
    ),
    (
        "888",
        "OCHA telecommunications for disaster relief",
        Class(C::Special),
    ),
    // High-fraud (IRSF) destinations.
    ("53", "Cuba", HighFraud),
    ("37190", "Latvia premium-like 90x", HighFraud),
    ("37081", "Lithuania premium-like", HighFraud),
    ("220", "Gambia", HighFraud),
    ("224", "Guinea", HighFraud),
    ("231", "Liberia", HighFraud),
    ("232", "Sierra Leone", HighFraud),
    ("239", "Sao Tome and Principe", HighFraud),
    ("245", "Guinea-Bissau", HighFraud),
    ("247", "Ascension", HighFraud),
    ("252", "Somalia", HighFraud),
    ("269", "Comoros", HighFraud),
    ("290", "Saint Helena", HighFraud),
    ("670", "Timor-Leste", HighFraud),
    ("672", "Norfolk Island / Antarctica", HighFraud),
    ("674", "Nauru", HighFraud),
    ("675", "Papua New Guinea", HighFraud),
    ("677", "Solomon Islands", HighFraud),
    ("678", "Vanuatu", HighFraud),
    ("681", "Wallis and Futuna", HighFraud),
    ("682", "Cook Islands", HighFraud),
    ("683", "Niue", HighFraud),
    ("686", "Kiribati", HighFraud),
    ("688", "Tuvalu", HighFraud),
    ("690", "Tokelau", HighFraud),
    ("691", "Micronesia", HighFraud),
    ("692", "Marshall Islands", HighFraud),
    ("960", "Maldives", HighFraud),
];

/// The longest platform range matching `digits` (E.164 without `+`).
pub(crate) fn platform_range(digits: &str) -> Option<&'static Range> {
    PLATFORM_RANGES
        .iter()
        .filter(|(prefix, _, _)| digits.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
}

/// Emergency numbers dialled as short numbers, valid on the whole platform: 112 (EU, and on
/// GSM networks worldwide) and 911 (North America, and on GSM networks worldwide).
pub(crate) const EMERGENCY_ALWAYS: &[&str] = &["112", "911"];

/// Additional emergency short numbers per tenant country (ISO 3166 alpha-2).
pub(crate) const EMERGENCY_BY_COUNTRY: &[(&str, &str)] = &[
    ("GB", "999"),
    ("IE", "999"),
    ("BE", "100"),
    ("BE", "101"),
    ("FR", "15"),
    ("FR", "17"),
    ("FR", "18"),
    ("DE", "110"),
    ("AU", "000"),
];

/// E.164 numbers the numbering plan puts in a premium range that the platform allows as
/// ordinary service numbers. Decision: NL 0900-8844 (police non-emergency line) is charged
/// at the local rate and must be reachable from every phone, so it is `Special`, not
/// `PremiumRate`.
pub(crate) const SERVICE_NUMBERS: &[(&str, &str)] =
    &[("319008844", "NL police non-emergency (0900-8844)")];
