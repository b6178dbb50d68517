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
//! A refused target leaves one closed CDR of the attempted transferee–target call
//! ([`pbx_call::CallEngine::refuse_transfer_target`]), filed as a refused call of the
//! transferor's would be: a number (and a user part that is not an extension) as an
//! outbound attempt of the transferor's account with the cause and disposition
//! `refuse_outbound` uses (404/484 `unavailable`, the fraud guard's `blocked`, others
//! `failed`); a foreign domain or URI scheme as the call's own direction and context,
//! `failed` 403 `not our domain`, the `Refer-To` URI as the callee. Hangup side `system`,
//! no trunk; the original call and its CDR go on unchanged.
//!
//! The transferee–target call gets a CDR of its own (the engine opens it with a new key when
//! the target is invited): the original call's context with the target as the callee; to a
//! number, the transferor's account as the calling user, with the trunk and the number. The
//! guard counts a transfer to a number as a call of the transferor's until that CDR ends.

use std::net::IpAddr;

use pbx_call::{
    Direction, Disposition, NewTransfer, RefusedTransfer, Side, TransferRequest, TrunkAttempt,
};
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
                Err(refused) => {
                    tracing::info!(
                        call = key.0,
                        status = refused.status,
                        cause = %refused.cause,
                        target = %refused.callee_normalised,
                        "transfer refused"
                    );
                    self.release_handle(handle.take());
                    self.engine
                        .refuse_transfer_target(ctx.engine(), now, key, *refused)
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

    /// The target's bindings or trunks and the new record's context, or the refusal of
    /// the REFER (and how its attempt is filed). `handle` gets the guard's count of a
    /// transfer to a number.
    fn resolve(
        &self,
        ctx: &Context<'_>,
        request: &TransferRequest<CallContext>,
        services: &Services<'_>,
        local: Option<IpAddr>,
        handle: &mut Option<CallHandle>,
    ) -> Result<Resolved, Box<RefusedTransfer<CallContext>>> {
        let context = &request.context;
        // Not ours at all: the attempt keeps the call's context and direction.
        let foreign = |cause: &str| {
            let target = request.target.to_string();
            refusal(
                untargeted(context),
                403,
                cause,
                target.clone(),
                target,
                None,
            )
        };
        // The transferor's tenant: the called tenant when a callee of another tenant transfers.
        let callee_tenant = match (request.transferor, &context.callee_tenant) {
            (Side::B, Some(callee)) => Some(callee.tenant_id),
            _ => None,
        };
        let directory = services.directory;
        let tenant = directory
            .tenant(callee_tenant.unwrap_or(context.tenant_id))
            .ok_or_else(|| foreign("transferor's tenant unknown"))?;
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
                    return Err(foreign(NOT_OURS));
                }
                sip.user_unescaped()
                    .map(|user| String::from_utf8_lossy(&user).into_owned())
                    .unwrap_or_default()
            }
            Uri::Tel(tel) => String::from_utf8_lossy(&tel.number).into_owned(),
            Uri::Absolute(_) => return Err(foreign(NOT_OURS)),
        };
        let Some(user) = directory.user_by_extension(tenant.id, &dialled) else {
            return self.resolve_number(ctx, request, services, dialled, handle);
        };
        let extension = user.extension.as_str().to_owned();
        let to = name_addr(&format!("<sip:{extension}@{}>", tenant.sip_domain.as_str()))
            .ok_or_else(|| {
                let dialled = dialled.clone();
                refusal(
                    untargeted(context),
                    500,
                    "target URI",
                    dialled.clone(),
                    dialled,
                    None,
                )
            })?;
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
    ) -> Result<Resolved, Box<RefusedTransfer<CallContext>>> {
        let Some((tenant_id, user_id)) = transferor(request) else {
            let context = untargeted(&request.context);
            let cause = "transferor is not a user";
            return Err(refusal(context, 403, cause, dialled.clone(), dialled, None));
        };
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
        // A refused attempt is an outbound call of the transferor's, as when it dials it.
        let refuse = |status: u16, cause: &str, normalised: Option<&str>| {
            let normalised = normalised.unwrap_or(&dialled).to_owned();
            let (context, dialled) = (context.clone(), dialled.clone());
            let outbound = Some(Direction::Outbound);
            refusal(context, status, cause, dialled, normalised, outbound)
        };
        let Some(routing) = self.routing.as_ref() else {
            return Err(refuse(404, "no route", None));
        };
        let directory = services.directory;
        let account = directory
            .user(user_id)
            .ok_or_else(|| refuse(403, "transferor is not a user", None))?;
        let snapshot = routing.snapshot();
        let number = match snapshot.normalise(tenant_id, &dialled) {
            Ok(Dialled::Internal(_)) => return Err(refuse(404, "no such extension", None)),
            Ok(number) => number,
            Err(NormaliseError::Invalid(_)) => return Err(refuse(484, "invalid number", None)),
            Err(_) => return Err(refuse(404, "not a number", None)),
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
                CallVerdict::Block {
                    status, why, class, ..
                } => {
                    tracing::info!(?why, number = %normalised, "transfer blocked by the fraud guard");
                    let cause = format!("blocked by the fraud guard: {why:?} ({class:?})");
                    let mut refused = refuse(status, &cause, Some(&normalised));
                    refused.disposition = Disposition::Blocked;
                    return Err(refused);
                }
                CallVerdict::Allow {
                    handle: counted, ..
                } => *handle = counted,
            }
        }
        if let Dialled::External(e164) = &number
            && let Some((owner, assigned)) = snapshot.local_number(e164)
        {
            // One of our numbers: its user's bindings, never out through a carrier.
            let unassigned = || refuse(404, "unassigned number of ours", Some(&normalised));
            let callee = assigned
                .and_then(|user| directory.user(user))
                .ok_or_else(unassigned)?;
            let domain = directory
                .tenant(owner)
                .ok_or_else(unassigned)?
                .sip_domain
                .as_str()
                .to_owned();
            let to = name_addr(&format!("<sip:{}@{domain}>", callee.extension.as_str()))
                .ok_or_else(|| refuse(500, "hairpin", Some(&normalised)))?;
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
        let digits = number
            .route_digits()
            .ok_or_else(|| refuse(404, "not a number", Some(&normalised)))?;
        let trunks = snapshot.outbound(tenant_id, digits).map_err(|no_route| {
            refuse(no_route.status(), &no_route.to_string(), Some(&normalised))
        })?;
        let flow = ctx
            .flow()
            .ok_or_else(|| refuse(500, "no flow", Some(&normalised)))?;
        let caller_id = snapshot.caller_id(tenant_id, Some(user_id), None, anonymous);
        let attempts: Vec<TrunkAttempt> = trunks
            .flat_map(|trunk| trunk::attempts(ctx, routing, &flow, &caller_id, trunk))
            .collect();
        if attempts.is_empty() {
            return Err(refuse(503, "no reachable trunk", Some(&normalised)));
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

/// The cause of a refusal of a target outside our domains.
const NOT_OURS: &str = "not our domain";

/// A refused attempt, filed as `refuse_outbound` files a refused call: 404 and 484
/// unavailable, anything else failed (the fraud guard's refusals are set to blocked).
fn refusal(
    context: CallContext,
    status: u16,
    cause: &str,
    callee_dialled: String,
    callee_normalised: String,
    direction: Option<Direction>,
) -> Box<RefusedTransfer<CallContext>> {
    let disposition = match status {
        404 | 484 => Disposition::Unavailable,
        _ => Disposition::Failed,
    };
    Box::new(RefusedTransfer {
        context,
        status,
        disposition,
        cause: cause.to_owned(),
        callee_dialled,
        callee_normalised,
        direction,
        trunk: None,
    })
}

/// The call's context with no callee user: the refused attempt of a target that is none of
/// our users.
fn untargeted(context: &CallContext) -> CallContext {
    let mut context = context.clone();
    context.callee_user_id = None;
    context
}

/// The transferor's tenant and user: the current record's caller, or its callee (of the
/// called tenant for a call between tenants). `None` when it is not one of our users.
fn transferor(request: &TransferRequest<CallContext>) -> Option<(TenantId, UserId)> {
    super::attended::party(&request.context, request.transferor_is_caller)
}
