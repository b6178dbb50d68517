//! Blind transfer (REFER) on the running server: the engine reports the transfer a REFER asks
//! for ([`pbx_call::TransferRequest`]) and the target is resolved here exactly as a call the
//! transferor would dial (an attended transfer, whose `Refer-To` carries `Replaces`, is
//! checked in `attended.rs` instead):
//!
//! - an extension of the transferor's tenant, in one of our domains (the tenant's SIP
//!   domain, the realm, or our own address), forks to all its registered bindings;
//! - anything else in our domains (`sip:0612345678@<domain>`, `sip:+31...;user=phone`) or a
//!   `tel:` URI is a number: normalised with the tenant's plan, checked by the fraud guard
//!   with the transferor's class of service (a block refuses the REFER with the guard's
//!   status, nothing is sent anywhere), one of the platform's own numbers is connected
//!   internally (hairpin), others go out through the route's trunks with the transferor's
//!   caller ID ([`pbx_call::CallEngine::start_trunk_transfer`]: failover and carrier digest
//!   as for calls). No route is 404 (or the route's status), an invalid number 484.
//!
//! Nothing is forwarded anywhere else (never an open relay): a foreign domain or another URI
//! scheme is refused 403, an unknown extension 404.
//!
//! The transferee–target call gets a CDR of its own (the engine opens it with a new key when
//! the target is invited): the original call's context with the target as the callee; to a
//! number, the transferor's account as the calling user, with the trunk and the number. The
//! guard counts a transfer to a number as a call of the transferor's until that CDR ends.

use std::net::IpAddr;

use pbx_call::{NewTransfer, Side, TransferRequest, TrunkAttempt};
use pbx_domain::{TenantId, UserId};
use pbx_policy::CallHandle;
use pbx_routing::{Dialled, NormaliseError};
use pbx_sip::{Host, Uri};

use super::{CallCheck, CallContext, CallVerdict, Calls, Services, name_addr, now_pair, trunk};
use pbx_sip_net::Context;

/// A transfer target resolved.
enum Resolved {
    /// Bindings of one of our users (an extension, or one of our numbers).
    Bindings(NewTransfer<CallContext>),
    /// A number through trunks.
    Trunks(NewTransfer<CallContext>, Vec<TrunkAttempt>),
}

impl Calls {
    /// Resolves every transfer the engine asked for during this request (a REFER), and
    /// starts or refuses it.
    pub(super) fn resolve_transfers(&mut self, ctx: &mut Context<'_>, services: &Services<'_>) {
        let local = ctx.flow().map(|flow| flow.local.ip());
        while let Some(request) = self.engine.poll_transfer() {
            let now = now_pair(ctx);
            let key = request.key;
            if request.replaces.is_some() {
                self.start_attended(ctx, &request);
                continue;
            }
            let mut handle = None;
            let outcome = match self.resolve(ctx, &request, services, local, &mut handle) {
                Ok(Resolved::Bindings(new)) => {
                    tracing::info!(
                        call = key.0,
                        target = %new.callee_normalised,
                        bindings = new.targets.len(),
                        "blind transfer"
                    );
                    self.engine.start_transfer(ctx.engine(), now, key, new)
                }
                Ok(Resolved::Trunks(new, trunks)) => {
                    tracing::info!(
                        call = key.0,
                        target = %new.callee_normalised,
                        trunks = trunks.len(),
                        "blind transfer to a number"
                    );
                    self.engine
                        .start_trunk_transfer(ctx.engine(), now, key, new, trunks)
                }
                Err(status) => {
                    tracing::info!(call = key.0, status, "transfer refused");
                    self.release_handle(handle.take());
                    self.engine.refuse_transfer(ctx.engine(), now, key, status)
                }
            };
            match outcome {
                Ok(()) => {
                    if let Some(handle) = handle {
                        self.transfer_pending.insert(key.0, handle);
                    }
                }
                Err(error) => {
                    self.release_handle(handle);
                    tracing::warn!(call = key.0, %error, "transfer not resolved");
                }
            }
        }
    }

    /// The target's bindings or trunks and the new record's context, or the status
    /// refusing the REFER. `handle` gets the guard's count of a transfer to a number.
    fn resolve(
        &self,
        ctx: &Context<'_>,
        request: &TransferRequest<CallContext>,
        services: &Services<'_>,
        local: Option<IpAddr>,
        handle: &mut Option<CallHandle>,
    ) -> Result<Resolved, u16> {
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
        let dialled = match &request.target {
            Uri::Sip(sip) => {
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
                sip.user_unescaped()
                    .map(|user| String::from_utf8_lossy(&user).into_owned())
                    .unwrap_or_default()
            }
            Uri::Tel(tel) => String::from_utf8_lossy(&tel.number).into_owned(),
            Uri::Absolute(_) => return Err(403),
        };
        let Some(user) = directory.user_by_extension(tenant.id, &dialled) else {
            return self.resolve_number(ctx, request, services, dialled, handle);
        };
        let extension = user.extension.as_str().to_owned();
        let to = name_addr(&format!("<sip:{extension}@{}>", tenant.sip_domain.as_str()))
            .ok_or(500u16)?;
        let targets = trunk::binding_targets(services.registrar, user.id, &to);
        let mut context = context.clone();
        match (callee_tenant, context.callee_tenant.as_mut()) {
            (Some(_), Some(callee)) => callee.user_id = user.id,
            _ => context.callee_user_id = Some(user.id),
        }
        Ok(Resolved::Bindings(NewTransfer {
            context,
            callee_dialled: dialled,
            callee_normalised: extension,
            targets,
        }))
    }

    /// A transfer to something that is not an extension: a number, dialled by the
    /// transferor (see the module doc).
    fn resolve_number(
        &self,
        ctx: &Context<'_>,
        request: &TransferRequest<CallContext>,
        services: &Services<'_>,
        dialled: String,
        handle: &mut Option<CallHandle>,
    ) -> Result<Resolved, u16> {
        let routing = self.routing.as_ref().ok_or(404u16)?;
        let (tenant_id, user_id) = transferor(request).ok_or(403u16)?;
        let directory = services.directory;
        let account = directory.user(user_id).ok_or(403u16)?;
        let snapshot = routing.snapshot();
        let number = match snapshot.normalise(tenant_id, &dialled) {
            Ok(Dialled::Internal(_)) => return Err(404),
            Ok(number) => number,
            Err(NormaliseError::Invalid(_)) => return Err(484),
            Err(_) => return Err(404),
        };
        let normalised = number.as_str().to_owned();
        // The guard decides before anything is sent, with the transferor's class of service.
        if let Some(guard) = &self.guard {
            let check = CallCheck {
                tenant: tenant_id,
                user: user_id,
                class_of_service: account.class_of_service,
                dialled: &dialled,
                normalised: Some(&normalised),
            };
            match guard.check_call(&check) {
                CallVerdict::Block { status, why, .. } => {
                    tracing::info!(?why, number = %normalised, "transfer blocked by the fraud guard");
                    return Err(status);
                }
                CallVerdict::Allow {
                    handle: counted, ..
                } => *handle = counted,
            }
        }
        let anonymous = trunk::caller_wants_privacy(&request.refer);
        let mut context = CallContext {
            tenant_id,
            user_id,
            device_id: request
                .context
                .device_id
                .filter(|_| request.transferor_is_caller),
            callee_user_id: None,
            callee_tenant: None,
        };
        if let Dialled::External(e164) = &number
            && let Some((owner, assigned)) = snapshot.local_number(e164)
        {
            // One of our numbers: its user's bindings, never out through a carrier.
            let callee = assigned
                .and_then(|user| directory.user(user))
                .ok_or(404u16)?;
            let domain = directory
                .tenant(owner)
                .ok_or(404u16)?
                .sip_domain
                .as_str()
                .to_owned();
            let to = name_addr(&format!("<sip:{}@{domain}>", callee.extension.as_str()))
                .ok_or(500u16)?;
            if owner == tenant_id {
                context.callee_user_id = Some(callee.id);
            } else {
                let presented = snapshot
                    .caller_id(tenant_id, Some(user_id), None, anonymous)
                    .number
                    .filter(|_| !anonymous)
                    .map_or_else(|| "anonymous".to_owned(), |n| n.as_str().to_owned());
                context.callee_tenant = Some(super::CalleeTenant {
                    tenant_id: owner,
                    user_id: callee.id,
                    caller: presented,
                });
            }
            return Ok(Resolved::Bindings(NewTransfer {
                context,
                callee_dialled: dialled,
                callee_normalised: normalised,
                targets: trunk::binding_targets(services.registrar, callee.id, &to),
            }));
        }
        let digits = number.route_digits().ok_or(404u16)?;
        let trunks = snapshot
            .outbound(tenant_id, digits)
            .map_err(|no_route| no_route.status())?;
        let flow = ctx.flow().ok_or(500u16)?;
        let caller_id = snapshot.caller_id(tenant_id, Some(user_id), None, anonymous);
        let attempts: Vec<TrunkAttempt> = trunks
            .flat_map(|trunk| trunk::attempts(ctx, routing, &flow, &caller_id, trunk))
            .collect();
        if attempts.is_empty() {
            return Err(503);
        }
        Ok(Resolved::Trunks(
            NewTransfer {
                context,
                callee_dialled: dialled,
                callee_normalised: normalised,
                targets: Vec::new(),
            },
            attempts,
        ))
    }

    /// Gives the guard back a count taken for a transfer that did not start.
    fn release_handle(&self, handle: Option<CallHandle>) {
        if let (Some(guard), Some(handle)) = (&self.guard, handle) {
            guard.call_ended(handle);
        }
    }
}

/// The transferor's tenant and user: the current record's caller, or its callee (of the
/// called tenant for a call between tenants). `None` when it is not one of our users.
fn transferor(request: &TransferRequest<CallContext>) -> Option<(TenantId, UserId)> {
    super::attended::party(&request.context, request.transferor_is_caller)
}
