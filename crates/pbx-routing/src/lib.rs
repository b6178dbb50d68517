//! Sans-IO call routing for CloudPBX: what the call engine asks before it places a leg.
//!
//! Everything here is synchronous, allocation-light and free of I/O, so the call engine
//! calls it from its SIP callbacks. The server builds a [`RoutingSnapshot`] from the store
//! (trunks with their decrypted credentials, routes, tenant settings, numbers) and swaps in
//! a new one after every configuration change.
//!
//! # What the call engine calls
//!
//! - **Dialled number** → [`RoutingSnapshot::normalise`]: `Internal(extension)`,
//!   `External(E.164)` or `Emergency(short code)`, using the tenant's country plan
//!   ([`NumberPlan`]; default the Netherlands: `0201234567` → `+31201234567`,
//!   `0044...` → `+44...`, `+...` kept, `201` → extension 201).
//! - **Outbound** → [`RoutingSnapshot::outbound`]: the longest matching route prefix (a
//!   tenant's own route wins over an operator route of the same length) gives an ordered
//!   [`OutboundTargets`] iterator of [`TrunkTarget`]s; try one, and on a final response for
//!   which [`should_fail_over`] says yes (5xx, 408, timeout, transport error) take the next.
//! - **Caller ID** → [`RoutingSnapshot::caller_id`]: the user's own DID, else the tenant's
//!   main number; [`wants_privacy`] reads the caller's `Privacy` / anonymous `From`, and
//!   [`CallerId`] renders `From`, `P-Asserted-Identity` and `Privacy` for the trunk leg.
//! - **Inbound** → [`RoutingSnapshot::trunk_for_source`] (is this packet from one of our
//!   carriers at all?) and [`RoutingSnapshot::inbound`] (DID → tenant and user, or the status
//!   to answer: 403 not a trunk, 404 unknown or unassigned number).
//!
//! ```
//! use pbx_routing::{Dialled, NumberPlan, normalise};
//!
//! let nl = NumberPlan::for_country("NL").unwrap();
//! assert_eq!(normalise("020 123 4567", &nl).unwrap(), Dialled::External("+31201234567".parse().unwrap()));
//! assert_eq!(normalise("0044 20 7946 0018", &nl).unwrap(), Dialled::External("+442079460018".parse().unwrap()));
//! assert!(matches!(normalise("201", &nl).unwrap(), Dialled::Internal(_)));
//! ```

mod caller_id;
mod number;
mod table;

pub use caller_id::{ANONYMOUS_URI, CallerId, wants_privacy};
pub use number::{Dialled, NormaliseError, NumberPlan, normalise};
pub use table::{
    InboundDecision, NoRoute, OutboundTargets, RoutingParts, RoutingSnapshot, TrunkTarget,
    explicit_port, should_fail_over,
};
