//! Attended transfer (REFER with `Replaces`, RFC 3891) on the running server. The engine
//! checks the named dialog (a confirmed leg of another of our calls, not a trunk's; 481,
//! 403, 491 otherwise) and reports it in [`pbx_call::TransferRequest::replaces`]; here the
//! policy check: the named leg must be the transferor's own party, the same user of the same
//! tenant (a desk phone's two lines, or two devices of one user), else the REFER gets 403.
//! The engine then joins the transferee with the other call's party on our relay and
//! releases the transferor ([`pbx_call::CallEngine::start_attended_transfer`]). Nothing is
//! sent anywhere but to the parties of the two calls; the `Refer-To` URI is not resolved.
//!
//! The joined call's CDR (`transfer_of` = the transferee's call) takes the transferee's call's
//! context with the callee replaced by the target as the other call knew it: its called
//! user (and called tenant) when the target was that call's callee, or its calling user
//! when the target called the transferor from a device of the same tenant (none otherwise).
//! The fraud guard's count of the target's call (a call to a number through a trunk, say)
//! moves to the joined call at its answer (the record's `joined`) and ends with it, as for a
//! blind transfer to a number: a transferor cannot leave an outside call running uncounted.

use pbx_call::TransferRequest;
use pbx_domain::{TenantId, UserId};
use pbx_sip_net::Context;

use super::{CallContext, Calls, now_pair};

impl Calls {
    /// Checks and starts (or refuses, 403) an attended transfer the engine reported.
    pub(super) fn start_attended(
        &mut self,
        ctx: &mut Context<'_>,
        request: &TransferRequest<CallContext>,
    ) {
        let Some(replaced) = &request.replaces else {
            return;
        };
        let now = now_pair(ctx);
        let key = request.key;
        let transferor = party(&request.context, request.transferor_is_caller);
        let named = party(&replaced.context, replaced.side_is_caller);
        let outcome = if transferor.is_some() && transferor == named {
            tracing::info!(call = key.0, other = replaced.key.0, "attended transfer");
            let context =
                joined_context(&request.context, &replaced.context, replaced.side_is_caller);
            self.engine
                .start_attended_transfer(ctx.engine(), now, key, context)
        } else {
            tracing::info!(
                call = key.0,
                other = replaced.key.0,
                "attended transfer refused: the replaced dialog is another party's"
            );
            self.engine.refuse_transfer(ctx.engine(), now, key, 403)
        };
        if let Err(error) = outcome {
            tracing::warn!(call = key.0, %error, "attended transfer not resolved");
        }
    }
}

/// The tenant and user of one side of a call: its record's caller (`is_caller`), or its
/// callee (of the called tenant for a call between tenants). `None` when that side is not
/// one of our users.
pub(super) fn party(context: &CallContext, is_caller: bool) -> Option<(TenantId, UserId)> {
    if is_caller {
        return Some((context.tenant_id, context.user_id));
    }
    match &context.callee_tenant {
        Some(callee) => Some((callee.tenant_id, callee.user_id)),
        None => Some((context.tenant_id, context.callee_user_id?)),
    }
}

/// The joined call's record context (see the module doc): the transferee's call's
/// `context` with the target as callee, from the `other` call's context; the target was
/// that call's callee when the transferor called it (`target_was_callee`).
fn joined_context(
    context: &CallContext,
    other: &CallContext,
    target_was_callee: bool,
) -> CallContext {
    let mut context = context.clone();
    if target_was_callee {
        context.callee_user_id = other.callee_user_id;
        context.callee_tenant.clone_from(&other.callee_tenant);
    } else {
        // The target called the transferor: one of our users when it called from a device
        // of the same tenant.
        context.callee_user_id = other
            .device_id
            .filter(|_| other.tenant_id == context.tenant_id)
            .map(|_| other.user_id);
        context.callee_tenant = None;
    }
    context
}

#[cfg(test)]
mod tests {
    use pbx_domain::{DeviceId, TenantId, UserId};

    use super::*;
    use crate::calls::CalleeTenant;

    fn tenant(n: u8) -> TenantId {
        TenantId::from_parts(1, &[n; 10])
    }

    fn user(n: u8) -> UserId {
        UserId::from_parts(1, &[n; 10])
    }

    fn context(tenant: TenantId, user: UserId, device: bool) -> CallContext {
        CallContext {
            tenant_id: tenant,
            user_id: user,
            device_id: device.then(|| DeviceId::from_parts(1, &[9; 10])),
            callee_user_id: None,
            callee_tenant: None,
        }
    }

    #[test]
    fn the_transferor_is_the_same_party_on_both_calls_as_caller_or_callee() {
        let (tenant, alice, bob) = (tenant(1), user(1), user(2));
        // Call 1: Alice calls Bob; call 2: Bob calls Carol.
        let mut call_1 = context(tenant, alice, true);
        call_1.callee_user_id = Some(bob);
        let call_2 = context(tenant, bob, true);
        assert_eq!(party(&call_1, false), party(&call_2, true));
        assert_ne!(party(&call_1, true), party(&call_2, true));
        // Bob as the callee of another tenant's call is that tenant's user.
        let other_tenant = self::tenant(2);
        call_1.callee_tenant = Some(CalleeTenant {
            tenant_id: other_tenant,
            user_id: bob,
            caller: "+31201234567".into(),
        });
        assert_eq!(party(&call_1, false), Some((other_tenant, bob)));
        // A call from a trunk to no user has no callee party.
        let mut inbound = context(tenant, alice, false);
        inbound.callee_user_id = None;
        assert_eq!(party(&inbound, false), None);
    }

    #[test]
    fn the_joined_record_names_the_target_as_the_other_call_knew_it() {
        let (tenant, alice, bob, carol) = (tenant(1), user(1), user(2), user(3));
        let mut call_1 = context(tenant, alice, true);
        call_1.callee_user_id = Some(bob);
        // Bob called Carol.
        let mut call_2 = context(tenant, bob, true);
        call_2.callee_user_id = Some(carol);
        let joined = joined_context(&call_1, &call_2, true);
        assert_eq!(joined.user_id, alice);
        assert_eq!(joined.callee_user_id, Some(carol));
        // Carol called Bob from her phone.
        let call_2 = context(tenant, carol, true);
        assert_eq!(
            joined_context(&call_1, &call_2, false).callee_user_id,
            Some(carol)
        );
        // Carol called from a trunk, or from another tenant: no called user.
        let from_trunk = context(tenant, bob, false);
        assert_eq!(
            joined_context(&call_1, &from_trunk, false).callee_user_id,
            None
        );
        let elsewhere = context(self::tenant(2), carol, true);
        assert_eq!(
            joined_context(&call_1, &elsewhere, false).callee_user_id,
            None
        );
    }
}
