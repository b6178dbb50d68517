//! Limits configuration and the simple default tariff.

use serde::{Deserialize, Serialize};

use crate::destination::DestinationClass;

/// Usage limits for one account or one tenant. `None` = unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Concurrent outbound calls.
    pub max_concurrent: Option<u32>,
    /// Outbound call attempts in any 60 s.
    pub calls_per_minute: Option<u32>,
    /// Outbound call attempts in any hour.
    pub calls_per_hour: Option<u32>,
    /// Outbound minutes per UTC day.
    pub minutes_per_day: Option<u64>,
    /// Outbound cost per UTC day, in milli-cents (1 cent = 1000).
    pub cost_per_day: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::account_default()
    }
}

impl Limits {
    /// Defaults for one user account: 4 concurrent, 10/min, 60/h, 600 min/day, €50/day.
    pub fn account_default() -> Self {
        Self {
            max_concurrent: Some(4),
            calls_per_minute: Some(10),
            calls_per_hour: Some(60),
            minutes_per_day: Some(600),
            cost_per_day: Some(5_000_000),
        }
    }

    /// Defaults for a tenant: 30 concurrent, 60/min, 600/h, 6000 min/day, €500/day.
    pub fn tenant_default() -> Self {
        Self {
            max_concurrent: Some(30),
            calls_per_minute: Some(60),
            calls_per_hour: Some(600),
            minutes_per_day: Some(6_000),
            cost_per_day: Some(50_000_000),
        }
    }

    /// No limits.
    pub fn unlimited() -> Self {
        Self {
            max_concurrent: None,
            calls_per_minute: None,
            calls_per_hour: None,
            minutes_per_day: None,
            cost_per_day: None,
        }
    }
}

/// Per-class price per minute in milli-cents, until billing exists. Deliberately pessimistic
/// for the classes fraud goes to, so the cost limit trips early there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tariff {
    /// National fixed and specials.
    pub national: u64,
    /// National mobile.
    pub mobile: u64,
    /// Shared cost.
    pub shared_cost: u64,
    /// Premium rate (where a tenant allowed it).
    pub premium: u64,
    /// International.
    pub international: u64,
    /// Satellite.
    pub satellite: u64,
}

impl Default for Tariff {
    fn default() -> Self {
        Self {
            national: 2_000,
            mobile: 5_000,
            shared_cost: 10_000,
            premium: 100_000,
            international: 20_000,
            satellite: 500_000,
        }
    }
}

impl Tariff {
    /// Milli-cents per minute for a destination class (internal, emergency, toll-free: 0).
    pub fn per_minute(&self, class: &DestinationClass) -> u64 {
        match class {
            DestinationClass::Emergency
            | DestinationClass::Internal
            | DestinationClass::TollFree
            | DestinationClass::Invalid => 0,
            DestinationClass::NationalFixed | DestinationClass::Special => self.national,
            DestinationClass::Mobile => self.mobile,
            DestinationClass::SharedCost => self.shared_cost,
            DestinationClass::PremiumRate => self.premium,
            DestinationClass::International { .. } => self.international,
            DestinationClass::Satellite => self.satellite,
        }
    }
}
