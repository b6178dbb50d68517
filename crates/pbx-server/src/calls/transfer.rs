//! Blind transfer (REFER) on the running server: the engine reports the transfer a REFER asks
//! for ([`pbx_call::TransferRequest`]) and the target is resolved here with the rules of a
//! call the transferor would dial: an extension of the transferor's tenant, in one of our
//! domains (the tenant's SIP domain, the realm, or our own address), forks to all its
//! registered bindings. Nothing else is forwarded anywhere (never an open relay): a foreign
//! domain or a non-SIP URI is refused 403, an unknown extension 404. Numbers through the
//! tenant's outbound routes are not transfer targets yet (404).
//!
//! The transferee–target call gets a CDR of its own (the engine opens it with a new key when
//! the target is invited): the original call's context with the target as the callee.

use std::net::IpAddr;

use pbx_call::{NewTransfer, Side, TransferRequest};
use pbx_sip::Host;

use super::{CallContext, Calls, Services, name_addr, now_pair, trunk};
use pbx_sip_net::Context;

impl Calls {
    /// Resolves every transfer the engine asked for during this request (a REFER), and
    /// starts or refuses it.
    pub(super) fn resolve_transfers(&mut self, ctx: &mut Context<'_>, services: &Services<'_>) {
        let local = ctx.flow().map(|flow| flow.local.ip());
        while let Some(request) = self.engine.poll_transfer() {
            let now = now_pair(ctx);
            let key = request.key;
            let outcome = match resolve(&request, services, local) {
                Ok(new) => {
                    tracing::info!(
                        call = key.0,
                        target = %new.callee_normalised,
                        bindings = new.targets.len(),
                        "blind transfer"
                    );
                    self.engine.start_transfer(ctx.engine(), now, key, new)
                }
                Err(status) => {
                    tracing::info!(call = key.0, status, "transfer refused");
                    self.engine.refuse_transfer(ctx.engine(), now, key, status)
                }
            };
            if let Err(error) = outcome {
                tracing::warn!(call = key.0, %error, "transfer not resolved");
            }
        }
    }
}

/// The target's bindings and the new record's context, or the status refusing the REFER.
fn resolve(
    request: &TransferRequest<CallContext>,
    services: &Services<'_>,
    local: Option<IpAddr>,
) -> Result<NewTransfer<CallContext>, u16> {
    let context = &request.context;
    // The transferor's tenant: the called tenant when a callee of another tenant transfers.
    let callee_tenant = match (request.transferor, &context.callee_tenant) {
        (Side::B, Some(callee)) => Some(callee.tenant_id),
        _ => None,
    };
    let directory = services.directory;
    let tenant = directory
        .tenant(callee_tenant.unwrap_or(context.tenant_id))
        .ok_or(403u16)?;
    let sip = request.target.as_sip().ok_or(403u16)?;
    let ours = match &sip.host {
        Host::Domain(name) => {
            let name = String::from_utf8_lossy(name);
            name.eq_ignore_ascii_case(tenant.sip_domain.as_str())
                || name.eq_ignore_ascii_case(services.verifier.realm())
        }
        Host::Ipv4(ip) => Some(IpAddr::V4(*ip)) == local,
        Host::Ipv6(ip) => Some(IpAddr::V6(*ip)) == local,
    };
    if !ours {
        return Err(403);
    }
    let dialled = sip
        .user_unescaped()
        .map(|user| String::from_utf8_lossy(&user).into_owned())
        .unwrap_or_default();
    let user = directory
        .user_by_extension(tenant.id, &dialled)
        .ok_or(404u16)?;
    let extension = user.extension.as_str().to_owned();
    let to =
        name_addr(&format!("<sip:{extension}@{}>", tenant.sip_domain.as_str())).ok_or(500u16)?;
    let targets = trunk::binding_targets(services.registrar, user.id, &to);
    let mut context = context.clone();
    match (callee_tenant, context.callee_tenant.as_mut()) {
        (Some(_), Some(callee)) => callee.user_id = user.id,
        _ => context.callee_user_id = Some(user.id),
    }
    Ok(NewTransfer {
        context,
        callee_dialled: dialled,
        callee_normalised: extension,
        targets,
    })
}
