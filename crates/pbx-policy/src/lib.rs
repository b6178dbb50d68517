//! Sans-IO fraud and abuse policy for CloudPBX (issue 4, PRODUCT.md R5).
//!
//! The policy decides before any transaction, dialog or media exists. Nothing here reads the
//! clock, spawns or does I/O: every call takes `now` in Unix milliseconds, and all memory
//! keyed by attacker-controlled data is capped. The crate has four parts:
//!
//! - [`guard`]: brute-force and scanning guard. The transport asks [`Guard::is_banned`]
//!   before parsing; the SIP layer reports failed authentications, unknown users,
//!   unanswered challenges, scanner User-Agents and raw requests with [`Guard::record`],
//!   which returns ban/throttle events. Snapshots ([`Guard::export`] / [`Guard::import`])
//!   are serde-serialisable for persistence.
//! - [`destination`]: [`classify`] a dialled string (normalised to E.164 with the
//!   `phonenumber` crate plus the platform's own lists), then [`OutboundPolicy::check`]
//!   it against the class of service, the default block lists and per-tenant exceptions.
//! - [`limits`]: [`UsageTracker`] counts concurrent calls, calls per minute/hour, minutes
//!   and cost per day per account and tenant; [`UsageTracker::check_setup`] at call set-up,
//!   [`UsageTracker::check_running`] periodically during calls.
//! - [`baseline`]: per-account hour-of-week usage baseline used by the tracker to block
//!   accounts whose use jumps far above their own habit.
//!
//! - [`admission`]: the per-tenant/per-user IP whitelist check ([`whitelist_check`]), which
//!   also tells the guard whether a source is exempt.
//!
//! All outcomes that matter for audit are [`SecurityEvent`]s.
//!
//! ```
//! use pbx_domain::ClassOfService;
//! use pbx_policy::{classify, OutboundPolicy, PolicyDefaults, TenantExceptions, Verdict};
//!
//! let dest = classify("0906 123456", "NL", 3);
//! let verdict = OutboundPolicy::check(
//!     ClassOfService::International,
//!     &dest,
//!     &TenantExceptions::default(),
//!     &PolicyDefaults::default(),
//! );
//! assert!(matches!(verdict, Verdict::Block { .. }));
//! assert_eq!(verdict.decision().status(), Some(403));
//! ```

pub mod admission;
pub mod baseline;
mod bounded;
pub mod decision;
pub mod destination;
pub mod error;
pub mod event;
pub mod guard;
pub mod limits;
pub mod source;
pub mod window;

pub use admission::{WhitelistOutcome, whitelist_check};
pub use baseline::{Baseline, BaselineConfig};
pub use bounded::BoundedMap;
pub use decision::{BlockReason, Decision, Verdict};
pub use destination::{
    Destination, DestinationClass, OutboundPolicy, PolicyDefaults, TenantExceptions, classify,
};
pub use error::ConfigError;
pub use event::{BanReason, LiftedBy, LimitKind, Scope, SecurityEvent};
pub use guard::{Guard, GuardConfig, GuardEvent, Observation, ObservationKind, scanner_user_agent};
pub use limits::{BreachEvent, CallHandle, Limits, Tariff, UsageTracker};
pub use source::SourceKey;
