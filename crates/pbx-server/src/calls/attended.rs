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
            let context = joined_context(request);
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

/// The joined call's record context (see the module doc).
fn joined_context(request: &TransferRequest<CallContext>) -> CallContext {
    let mut context = request.context.clone();
    let Some(replaced) = &request.replaces else {
        return context;
    };
    let other = &replaced.context;
    if replaced.side_is_caller {
        // The transferor called the target: the target is that call's callee.
        context.callee_user_id = other.callee_user_id;
        context.callee_tenant.clone_from(&other.callee_tenant);
    } else {
        // The target called the transferor.
        context.callee_user_id = other
            .device_id
            .filter(|_| other.tenant_id == context.tenant_id)
            .map(|_| other.user_id);
        context.callee_tenant = None;
    }
    context
}
