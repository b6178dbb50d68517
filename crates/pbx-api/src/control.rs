//! What the API needs from the live SIP side: the [`ControlPlane`] the server implements.

use std::fmt::Debug;

use pbx_domain::{TenantId, UserId};

/// Operations on the running SIP side that the API triggers. The store is the source of
/// truth for registrations (the registrar writes every binding through to it), so the API
/// lists and deletes them there; the control plane is told to drop the same bindings from
/// the registrar's memory, so a cleared phone really is forgotten until it registers again.
pub trait ControlPlane: Send + Sync + Debug + 'static {
    /// Forget the bindings of `tenant` (of one user when `user` is set) held in memory.
    /// Returns how many were dropped. Must not block for long: it runs on the request task.
    fn clear_registrations(&self, tenant: TenantId, user: Option<UserId>) -> usize;
}

/// The control plane when no SIP side runs in this process (tests, admin tools): nothing is
/// held in memory, so there is nothing to forget beyond the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOnlyControlPlane;

impl ControlPlane for StoreOnlyControlPlane {
    fn clear_registrations(&self, _tenant: TenantId, _user: Option<UserId>) -> usize {
        0
    }
}
