//! CloudPBX management API: a JSON REST API under `/api/v1` on axum, authenticated with
//! bearer API tokens, every query scoped by tenant, with its OpenAPI document at
//! `/api/v1/openapi.json`, liveness at `/healthz` and Prometheus metrics at `/metrics`.
//!
//! # How to drive it
//!
//! 1. Open the [`pbx_store::Store`] and load the live [`pbx_store::Directory`].
//! 2. Make sure an operator can log in: [`bootstrap_operator_token`] creates the first
//!    operator token when none exists (a generated secret to print once, or the one given in
//!    `CLOUDPBX_BOOTSTRAP_TOKEN`).
//! 3. Build an [`ApiState`] with a [`ControlPlane`] (the server's handle on the live
//!    registrar; [`StoreOnlyControlPlane`] when no SIP side runs) and the platform realm.
//! 4. [`router`] returns an `axum::Router`; it binds no socket. The server serves it; tests
//!    call it with `tower::ServiceExt::oneshot`.
//!
//! # Model
//!
//! - **Who**: a token acts as the operator (everything), a reseller (its tenants) or a
//!   customer admin (its tenant). Tenants are reached only through
//!   [`pbx_store::Store::scope`], so an object outside the caller's reach is `404`, exactly
//!   like one that does not exist.
//! - **Writes**: every write goes through [`ops::Ops`] (shared with the `cloudpbx` admin CLI),
//!   leaves an audit event (`tenant.created`, `device.credential_rotated`, ...) and then
//!   refreshes the directory (re-reading only the rows the write changed), so the change is
//!   live when the response leaves: a rotated password is refused at once.
//! - **Secrets** are shown once: a device's SIP password on create and on rotate, a token's
//!   secret on create. The store keeps HA1 digests and SHA-256 token hashes.
//! - **Errors** are `{"error": {"code", "field", "message"}}` ([`ApiError`]): 400 malformed
//!   JSON or bad query parameter, 401 no/invalid token, 403 role not allowed, 404 not found
//!   or out of scope, 405 wrong method, 409 taken, 415 not JSON, 422 a field's value (the
//!   field is named).
//!
//! See `README.md` in this crate for the endpoint list.

mod bootstrap;
mod control;
mod error;
mod json;
mod metrics;
pub mod model;
pub mod ops;
mod routes;
mod state;

pub use bootstrap::{BootstrapError, Bootstrapped, bootstrap_operator_token};
pub use control::{Cleared, ControlPlane, StoreOnlyControlPlane};
pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
pub use json::ApiJson;
pub use metrics::ApiMetrics;
pub use routes::{OPENAPI_PATH, openapi, router};
pub use state::{ApiState, Caller, MetricsSource, now_ms};
