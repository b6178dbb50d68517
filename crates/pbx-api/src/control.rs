//! What the API needs from the live SIP side: the [`ControlPlane`] the server implements.

use std::fmt::Debug;

use pbx_domain::{TenantId, UserId};
use std::future::Future;
use std::pin::Pin;

/// What [`ControlPlane::clear_registrations`] resolves to: the number of bindings dropped.
pub type Cleared = Pin<Box<dyn Future<Output = usize> + Send + 'static>>;

/// Operations on the running SIP side that the API triggers. The store is the source of
/// truth for registrations (the registrar writes every binding through to it), so the API
/// lists and deletes them there; the control plane is told to drop the same bindings from
/// the registrar's memory, so a cleared phone really is forgotten until it registers again.
pub trait ControlPlane: Send + Sync + Debug + 'static {
    /// Forget the bindings of `tenant` (of one user when `user` is set) held in memory.
    /// Resolves to how many were dropped. The future runs on the request task; the work
    /// itself may happen elsewhere (the SIP driver) and must not take long.
    fn clear_registrations(&self, tenant: TenantId, user: Option<UserId>) -> Cleared;
}

/// The control plane when no SIP side runs in this process (tests, admin tools): nothing is
/// held in memory, so there is nothing to forget beyond the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOnlyControlPlane;

impl ControlPlane for StoreOnlyControlPlane {
    fn clear_registrations(&self, _tenant: TenantId, _user: Option<UserId>) -> Cleared {
        Box::pin(std::future::ready(0))
    }
}
