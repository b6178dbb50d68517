//! Calls to and from the public network through SIP trunks.
//!
//! - **Outbound** ([`Calls::route_outbound`]): an authenticated user dialled something that
//!   is not one of the tenant's extensions and the fraud guard let it through. The dialled
//!   text is normalised with the tenant's numbering plan (NL by default: `0...` → `+31...`,
//!   `00...` → `+...`), the longest matching route gives the ordered trunks, the caller ID
//!   is the user's own DID or the tenant's main number (anonymous when the caller asked with
//!   `Privacy` or an anonymous `From`; the real number then only in `P-Asserted-Identity`),
//!   and the engine tries the trunks one at a time (carrier digest answered, failover on
//!   5xx/408/timeout). A trunk whose host resolved to several targets (RFC 3263 SRV, or
//!   several A/AAAA records) is one attempt per target, in resolution order, so a failing
//!   target moves on to the trunk's next target before the next trunk.
//! - **Inbound** ([`Calls::inbound_from_trunk`]): an INVITE without credentials from a
//!   trunk's source network (IP authentication by the trunk's CIDRs) for one of our numbers
//!   goes to every binding of the user the number is assigned to; a number of ours that is
//!   not assigned gets 404. Anything else (a number that is not ours, or any INVITE from
//!   another source) takes the user path: a 407 challenge, then only the caller's own
//!   tenant, so nothing is forwarded without authentication.

use std::sync::Arc;

use pbx_call::{TrunkAttempt, TrunkCredentials};
use pbx_domain::Transport as DomainTransport;
use pbx_routing::{Dialled, InboundDecision, NormaliseError, wants_privacy};

use super::*;
use crate::trunks::LiveRouting;

/// Longest caller number taken from a carrier (E.164 has at most 15 digits).
const MAX_NUMBER_LEN: usize = 20;

impl Calls {
    /// Routes calls to numbers through the trunks of `routing` and takes calls from them;
    /// without it numbers get 404 and trunks are challenged like any other source.
    #[must_use]
    pub fn with_routing(mut self, routing: Arc<LiveRouting>) -> Calls {
        self.routing = Some(routing);
        self
    }

    /// An outbound call the fraud guard admitted: normalise, route, present the caller ID,
    /// and start it through the route's trunks in order. Refusals are filed as CDRs.
    pub(super) fn route_outbound(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        outbound: Outbound,
        services: &Services<'_>,
    ) {
        let Some(routing) = self.routing.clone() else {
            return self.refuse_outbound(ctx, incoming, &outbound, 404, "no route", None);
        };
        let snapshot = routing.snapshot();
        let tenant = outbound.context.tenant_id;
        let number = match snapshot.normalise(tenant, &outbound.dialled) {
            Ok(Dialled::Internal(_)) => {
                return self.refuse_outbound(
                    ctx,
                    incoming,
                    &outbound,
                    404,
                    "no such extension",
                    None,
                );
            }
            Ok(number) => number,
            Err(NormaliseError::Invalid(_)) => {
                return self.refuse_outbound(ctx, incoming, &outbound, 484, "invalid number", None);
            }
            Err(_) => {
                return self.refuse_outbound(ctx, incoming, &outbound, 404, "not a number", None);
            }
        };
        let normalised = number.as_str().to_owned();
        if let Dialled::External(e164) = &number
            && let Some((tenant_id, user_id)) = snapshot.local_number(e164)
        {
            return self.hairpin(
                ctx, incoming, outbound, services, normalised, tenant_id, user_id,
            );
        }
        let Some(digits) = number.route_digits() else {
            return self.refuse_outbound(ctx, incoming, &outbound, 404, "not a number", None);
        };
        let trunks = match snapshot.outbound(tenant, digits) {
            Ok(trunks) => trunks,
            Err(no_route) => {
                let status = no_route.status();
                let cause = no_route.to_string();
                return self.refuse_outbound(
                    ctx,
                    incoming,
                    &outbound,
                    status,
                    &cause,
                    Some(&normalised),
                );
            }
        };
        let Some(flow) = ctx.flow() else {
            self.release_guard(&outbound);
            ctx.engine().ignore(incoming);
            return;
        };
        let request = incoming.request().clone();
        let anonymous = caller_wants_privacy(&request);
        let caller_id = snapshot.caller_id(tenant, Some(outbound.context.user_id), None, anonymous);
        let attempts: Vec<TrunkAttempt> = trunks
            .flat_map(|trunk| attempts(ctx, &routing, &flow, &caller_id, trunk))
            .collect();
        if attempts.is_empty() {
            return self.refuse_outbound(
                ctx,
                incoming,
                &outbound,
                503,
                "no reachable trunk",
                Some(&normalised),
            );
        }
        let now = now_pair(ctx);
        let Ok(AcceptedTransaction::Invite(invite)) = ctx.engine().accept(now.instant, incoming)
        else {
            self.release_guard(&outbound);
            return;
        };
        let presented = caller_id.number.as_ref().map_or_else(
            || outbound.caller.clone(),
            |number| number.as_str().to_owned(),
        );
        let from = attempts[0].from.clone();
        let new = NewCall {
            context: outbound.context.clone(),
            direction: Direction::Outbound,
            caller: presented,
            callee_dialled: outbound.dialled.clone(),
            callee_normalised: normalised,
            from,
            a_target: caller_target(&flow),
            a_local: flow.local,
            targets: Vec::new(),
            trunk: None,
        };
        let mut media = RelayAllocator(&self.relay);
        match self.engine.start_trunk_call(
            ctx.engine(),
            now,
            invite,
            request,
            new,
            attempts,
            &mut media,
        ) {
            Ok(key) => self.track_guarded(key, &outbound),
            Err(error) => {
                tracing::debug!(%error, "outbound call not started");
                self.release_guard(&outbound);
            }
        }
    }

    /// A user dialled one of the platform's own numbers: connected internally, never out
    /// through a carrier and back. The number's user (of this tenant or another) gets the
    /// call on every binding, like a call to its extension. Within a tenant one CDR, direction
    /// internal; between tenants two: the caller tenant's outbound without a trunk and the
    /// called tenant's inbound (`CalleeTenant`). An unassigned number of ours is 404.
    #[allow(clippy::too_many_arguments)]
    fn hairpin(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        outbound: Outbound,
        services: &Services<'_>,
        normalised: String,
        tenant_id: TenantId,
        user_id: Option<UserId>,
    ) {
        let directory = services.directory;
        let callee = user_id.and_then(|user| directory.user(user));
        let tenant = directory.tenant(tenant_id);
        let (Some(callee), Some(tenant)) = (callee, tenant) else {
            return self.refuse_outbound(
                ctx,
                incoming,
                &outbound,
                404,
                "unassigned number of ours",
                Some(&normalised),
            );
        };
        let Some(flow) = ctx.flow() else {
            self.release_guard(&outbound);
            ctx.engine().ignore(incoming);
            return;
        };
        let same_tenant = tenant_id == outbound.context.tenant_id;
        let domain = tenant.sip_domain.as_str();
        let request = incoming.request().clone();
        let anonymous = caller_wants_privacy(&request);
        let snapshot = self.routing.as_ref().map(|routing| routing.snapshot());
        // The callee sees the caller's extension within a tenant, else the caller's number.
        let presented = if same_tenant {
            Some(outbound.caller.clone())
        } else {
            snapshot
                .as_ref()
                .map(|snapshot| {
                    snapshot.caller_id(
                        outbound.context.tenant_id,
                        Some(outbound.context.user_id),
                        None,
                        anonymous,
                    )
                })
                .and_then(|id| id.number.map(|number| number.as_str().to_owned()))
        };
        let from = match (&presented, anonymous) {
            (Some(number), false) => name_addr(&format!("\"{number}\" <sip:{number}@{domain}>")),
            _ => name_addr(&format!("\"Anonymous\" <{}>", pbx_routing::ANONYMOUS_URI)),
        };
        let to = name_addr(&format!("<sip:{}@{domain}>", callee.extension.as_str()));
        let (Some(from), Some(to)) = (from, to) else {
            return self.refuse_outbound(ctx, incoming, &outbound, 500, "hairpin", None);
        };
        let targets = binding_targets(services.registrar, callee.id, &to);
        let now = now_pair(ctx);
        let Ok(AcceptedTransaction::Invite(invite)) = ctx.engine().accept(now.instant, incoming)
        else {
            self.release_guard(&outbound);
            return;
        };
        let mut context = outbound.context.clone();
        let direction = if same_tenant {
            context.callee_user_id = Some(callee.id);
            Direction::Internal
        } else {
            context.callee_tenant = Some(crate::calls::CalleeTenant {
                tenant_id,
                user_id: callee.id,
                caller: match (&presented, anonymous) {
                    (Some(number), false) => number.clone(),
                    _ => "anonymous".to_owned(),
                },
            });
            Direction::Outbound
        };
        let new = NewCall {
            context,
            direction,
            caller: outbound.caller.clone(),
            callee_dialled: outbound.dialled.clone(),
            callee_normalised: normalised,
            from,
            a_target: caller_target(&flow),
            a_local: flow.local,
            targets,
            trunk: None,
        };
        tracing::info!(tenant = %tenant_id, callee = %callee.id, "call to one of our numbers connected internally");
        let mut media = RelayAllocator(&self.relay);
        match self
            .engine
            .start_call(ctx.engine(), now, invite, request, new, &mut media)
        {
            Ok(key) => self.track_guarded(key, &outbound),
            Err(error) => {
                tracing::debug!(%error, "hairpin call not started");
                self.release_guard(&outbound);
            }
        }
    }

    /// An INVITE without credentials from a trunk's source network: a call to one of our
    /// numbers (IP authentication, no digest). Gives the INVITE back when it is not a trunk
    /// call, for the user path (digest challenge).
    pub(super) fn inbound_from_trunk(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        flow: &Flow,
        services: &Services<'_>,
    ) -> Option<Incoming> {
        let Some(routing) = self.routing.clone() else {
            return Some(incoming);
        };
        let snapshot = routing.snapshot();
        let source = flow.remote.ip();
        let request = incoming.request();
        let has_credentials = request.headers().contains(&HeaderName::ProxyAuthorization)
            || request.headers().contains(&HeaderName::Authorization);
        if has_credentials || snapshot.trunk_for_source(source).is_none() {
            return Some(incoming);
        }
        let now = now_pair(ctx);
        let called = request
            .uri()
            .as_sip()
            .and_then(|sip| sip.user_unescaped())
            .map(|user| String::from_utf8_lossy(&user).into_owned())
            .unwrap_or_default();
        let (trunk_id, tenant_id, user_id, number) = match snapshot.inbound(source, &called) {
            InboundDecision::User {
                trunk_id,
                tenant_id,
                user_id,
                number,
            } => (trunk_id, tenant_id, user_id, number),
            // Not a number of ours at all: maybe a phone that shares the carrier's network
            // (its first INVITE carries no credentials). The user path challenges it, and
            // nothing is forwarded without authentication.
            InboundDecision::UnknownNumber { .. } => return Some(incoming),
            InboundDecision::Unassigned {
                trunk_id,
                tenant_id,
                number,
            } => {
                let domain = services
                    .directory
                    .tenant(tenant_id)
                    .map(|tenant| tenant.sip_domain.as_str().to_owned())
                    .unwrap_or_default();
                let (caller, _) = presented_caller(request, &domain);
                let inbound = Unassigned {
                    trunk_id,
                    tenant_id,
                    caller,
                    called,
                    number,
                };
                self.refuse_unassigned(ctx, incoming, inbound);
                return None;
            }
            decision => {
                let status = decision.refusal().unwrap_or(404);
                tracing::info!(%source, called, status, "inbound trunk call refused");
                ctx.engine()
                    .reject(now.instant, incoming, StatusCode(status));
                return None;
            }
        };
        let directory = services.directory;
        let (Some(tenant), Some(user)) = (directory.tenant(tenant_id), directory.user(user_id))
        else {
            ctx.engine()
                .reject(now.instant, incoming, StatusCode::NOT_FOUND);
            return None;
        };
        let domain = tenant.sip_domain.as_str();
        let (caller, from) = presented_caller(request, domain);
        let (Some(from), Some(to)) = (
            from,
            name_addr(&format!("<sip:{}@{domain}>", user.extension.as_str())),
        ) else {
            ctx.engine().reject(now.instant, incoming, StatusCode(500));
            return None;
        };
        let targets = binding_targets(services.registrar, user_id, &to);
        let request = request.clone();
        let Ok(AcceptedTransaction::Invite(invite)) = ctx.engine().accept(now.instant, incoming)
        else {
            return None;
        };
        let new = NewCall {
            context: CallContext {
                tenant_id,
                user_id,
                device_id: None,
                callee_user_id: Some(user_id),
                callee_tenant: None,
            },
            direction: Direction::Inbound,
            caller,
            callee_dialled: called,
            callee_normalised: number.as_str().to_owned(),
            from,
            a_target: caller_target(flow),
            a_local: flow.local,
            targets,
            trunk: Some(trunk_id.to_string()),
        };
        let mut media = RelayAllocator(&self.relay);
        if let Err(error) =
            self.engine
                .start_call(ctx.engine(), now, invite, request, new, &mut media)
        {
            tracing::debug!(%error, "inbound call not started");
        }
        None
    }

    /// A carrier's call to one of `tenant`'s numbers that rings nobody: 404, filed as that
    /// tenant's inbound CDR (no user, disposition `failed`, cause `unassigned number`) so the
    /// tenant sees calls it is missing. Numbers that are not ours get no CDR.
    fn refuse_unassigned(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        inbound: Unassigned,
    ) {
        use pbx_domain::{CallEnd, CallStart, CdrId};
        let Unassigned {
            trunk_id,
            tenant_id,
            caller,
            called,
            number,
        } = inbound;
        let now = now_pair(ctx);
        let request = incoming.request();
        let call_id = request
            .call_id()
            .map(|id| String::from_utf8_lossy(&id).into_owned())
            .unwrap_or_default();
        let random: [u8; 10] = rand::random();
        let mut record = pbx_domain::CallRecord::open(CallStart {
            id: CdrId::from_parts(u64::try_from(now.unix_ms).unwrap_or(0), &random),
            tenant_id,
            user_id: None,
            device_id: None,
            direction: pbx_domain::CallDirection::Inbound,
            caller,
            callee_dialled: called.clone(),
            callee: number.as_str().to_owned(),
            trunk_id: Some(trunk_id),
            sip_call_id: call_id,
            node_id: self.book.node_id.clone(),
            start_ms: now.unix_ms,
        });
        record.close(CallEnd {
            end_ms: now.unix_ms,
            disposition: pbx_domain::Disposition::Failed,
            sip_status: Some(404),
            hangup_cause: Some("unassigned number".to_owned()),
            hangup_side: pbx_domain::HangupSide::System,
        });
        tracing::info!(cdr = %record.id, tenant = %tenant_id, called, "inbound call to an unassigned number refused");
        self.cdrs.call_ended(&record);
        ctx.engine()
            .reject(now.instant, incoming, StatusCode::NOT_FOUND);
    }

    /// Refuses an outbound attempt with `status` (filed as a CDR) and releases the guard's
    /// count of it.
    fn refuse_outbound(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        outbound: &Outbound,
        status: u16,
        cause: &str,
        normalised: Option<&str>,
    ) {
        self.release_guard(outbound);
        let disposition = match status {
            404 | 484 => pbx_domain::Disposition::Unavailable,
            _ => pbx_domain::Disposition::Failed,
        };
        self.refuse(
            ctx,
            incoming,
            &Refused {
                context: &outbound.context,
                caller: &outbound.caller,
                dialled: &outbound.dialled,
                normalised: normalised.or(outbound.e164.as_deref()),
                call_id: &outbound.call_id,
                direction: pbx_domain::CallDirection::Outbound,
                status,
                disposition,
                cause: cause.to_owned(),
            },
            None,
        );
    }

    fn release_guard(&self, outbound: &Outbound) {
        if let (Some(guard), Some(handle)) = (&self.guard, outbound.guard) {
            guard.call_ended(handle);
        }
    }
}

/// A carrier's call to a tenant's number that is assigned to nobody.
struct Unassigned {
    trunk_id: pbx_domain::TrunkId,
    tenant_id: TenantId,
    caller: String,
    called: String,
    number: pbx_domain::E164,
}

/// One trunk of the route as the engine tries it: one attempt per resolved target of its
/// host, in order; none when the host has no target or no listener can reach it.
pub(super) fn attempts(
    ctx: &Context<'_>,
    routing: &LiveRouting,
    flow: &Flow,
    caller_id: &pbx_routing::CallerId,
    trunk: pbx_routing::TrunkTarget,
) -> Vec<TrunkAttempt> {
    let targets = routing.trunk_targets(&trunk.host, trunk.port, trunk.transport);
    if targets.is_empty() {
        tracing::warn!(trunk = %trunk.trunk_id, host = trunk.host, "trunk host unresolved; skipped");
        return Vec::new();
    }
    let (transport, listener) = match trunk.transport {
        DomainTransport::Tcp => (pbx_sip::Transport::Tcp, Transport::Tcp),
        DomainTransport::Tls => (pbx_sip::Transport::Tls, Transport::Tls),
        DomainTransport::Udp => (pbx_sip::Transport::Udp, Transport::Udp),
        _ => return Vec::new(),
    };
    let Ok(request_uri) = trunk.request_uri.parse::<pbx_sip::Uri>() else {
        return Vec::new();
    };
    let host = if trunk.host.contains(':') && !trunk.host.starts_with('[') {
        format!("[{}]", trunk.host)
    } else {
        trunk.host.clone()
    };
    let (Some(from), Some(to)) = (
        name_addr(&caller_id.from_header(&host)),
        name_addr(&format!("<{}>", trunk.request_uri)),
    ) else {
        return Vec::new();
    };
    let headers = identity_headers(caller_id, &host, trunk.caller_identity);
    let credentials = trunk.auth.map(|auth| TrunkCredentials {
        username: auth.username,
        password: auth.password,
        realm: trunk.auth_realm.clone(),
    });
    targets
        .iter()
        .filter_map(|resolved| {
            let address = resolved.address;
            let local = ctx
                .transports()
                .local_addr(listener, address.is_ipv6())
                .or_else(|| (flow.local.is_ipv6() == address.is_ipv6()).then_some(flow.local))?;
            Some(TrunkAttempt {
                target: ForkTarget {
                    request_uri: request_uri.clone(),
                    target: Target {
                        transport: transport.clone(),
                        address,
                        flow: None,
                    },
                    local: crate::trunks::contact_addr(local, address),
                    route: Vec::new(),
                    to: to.clone(),
                    label: trunk.name.clone(),
                },
                from: from.clone(),
                headers: headers.clone(),
                credentials: credentials.clone(),
                trunk: trunk.trunk_id.to_string(),
            })
        })
        .collect()
}

/// The caller-identity headers towards a carrier whose trunk sends identity as `mode` (the
/// `From` header is the same in every mode: the number, or `Anonymous`).
fn identity_headers(
    caller_id: &pbx_routing::CallerId,
    host: &str,
    mode: pbx_domain::CallerIdentity,
) -> Vec<(HeaderName, Bytes)> {
    let mut headers = Vec::new();
    let privacy = caller_id
        .privacy()
        .map(|privacy| (HeaderName::Privacy, Bytes::from_static(privacy.as_bytes())));
    match mode {
        pbx_domain::CallerIdentity::From => headers.extend(privacy),
        pbx_domain::CallerIdentity::Rpid => {
            if let Some(identity) = caller_id.remote_party_id(host) {
                headers.push((
                    HeaderName::Other(Bytes::from_static(b"Remote-Party-ID")),
                    Bytes::from(identity),
                ));
            }
        }
        // `Pai` (the default) and any mode added later without its own rule.
        _ => {
            if let Some(identity) = caller_id.p_asserted_identity(host) {
                headers.push((HeaderName::PAssertedIdentity, Bytes::from(identity)));
            }
            headers.extend(privacy);
        }
    }
    headers
}

/// Whether the caller asked not to be identified (`Privacy: id/header/user`, or an
/// anonymous `From`).
pub(super) fn caller_wants_privacy(request: &Request) -> bool {
    let privacy = request
        .headers()
        .get(&HeaderName::Privacy)
        .map(|value| String::from_utf8_lossy(value).into_owned());
    let from = request.from().ok();
    let sip = from.as_ref().and_then(|from| from.uri.as_sip());
    let user = sip
        .and_then(|sip| sip.user_unescaped())
        .map(|user| String::from_utf8_lossy(&user).into_owned());
    let host = sip.map(|sip| sip.host.to_string());
    let display = from
        .as_ref()
        .and_then(|from| from.display_name.as_ref())
        .map(|name| String::from_utf8_lossy(name).into_owned());
    wants_privacy(
        privacy.as_deref(),
        user.as_deref(),
        host.as_deref(),
        display.as_deref(),
    )
}

/// The caller of an inbound call as our user sees it: the number the carrier asserted
/// (`P-Asserted-Identity`, else `From`), digits and `+` only, or anonymous when the carrier
/// marked it private or sent nothing usable. Returns the CDR caller and the B-leg `From`.
fn presented_caller(request: &Request, domain: &str) -> (String, Option<NameAddr>) {
    let asserted = request
        .headers()
        .get(&HeaderName::PAssertedIdentity)
        .and_then(|value| NameAddr::parse(value).ok());
    let identity = asserted.or_else(|| request.from().ok());
    let number: String = identity
        .as_ref()
        .and_then(|identity| identity.uri.as_sip())
        .and_then(|sip| sip.user_unescaped())
        .map(|user| {
            String::from_utf8_lossy(&user)
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .take(MAX_NUMBER_LEN)
                .collect()
        })
        .unwrap_or_default();
    let private = caller_wants_privacy(request);
    if private || number.trim_start_matches('+').is_empty() {
        let from = name_addr(&format!("\"Anonymous\" <{}>", pbx_routing::ANONYMOUS_URI));
        return ("anonymous".to_owned(), from);
    }
    let from = name_addr(&format!("\"{number}\" <sip:{number}@{domain}>"));
    (number, from)
}

/// Every binding of `user`, as fork targets with `to` (the same mapping internal calls use).
pub(super) fn binding_targets(
    registrar: &Registrar,
    user: UserId,
    to: &NameAddr,
) -> Vec<ForkTarget> {
    registrar
        .lookup(user)
        .into_iter()
        .map(|binding| ForkTarget {
            request_uri: binding.request_uri.clone(),
            target: Target {
                transport: match binding.flow.transport {
                    pbx_domain::Transport::Tcp => pbx_sip::Transport::Tcp,
                    pbx_domain::Transport::Tls => pbx_sip::Transport::Tls,
                    _ => pbx_sip::Transport::Udp,
                },
                address: binding.flow.source,
                flow: binding.flow.connection.map(FlowId),
            },
            local: binding.flow.local,
            route: binding
                .route
                .iter()
                .filter_map(|r| NameAddr::parse(r.as_bytes()).ok())
                .collect(),
            to: to.clone(),
            label: binding.key.key.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use pbx_domain::{CallerIdentity, E164};
    use pbx_routing::CallerId;

    use super::*;

    fn texts(caller_id: &CallerId, mode: CallerIdentity) -> Vec<(String, String)> {
        identity_headers(caller_id, "carrier.example", mode)
            .into_iter()
            .map(|(name, value)| {
                (
                    String::from_utf8_lossy(name.as_bytes()).to_ascii_lowercase(),
                    String::from_utf8_lossy(&value).into_owned(),
                )
            })
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn each_identity_mode_sends_its_headers() {
        let mut id = CallerId {
            number: Some(E164::parse("+31201234567").unwrap()),
            display_name: None,
            anonymous: false,
        };
        let asserted = "<sip:+31201234567@carrier.example>";
        assert_eq!(
            texts(&id, CallerIdentity::Pai),
            [pair("p-asserted-identity", asserted)]
        );
        assert_eq!(texts(&id, CallerIdentity::From), []);
        assert_eq!(
            texts(&id, CallerIdentity::Rpid),
            [pair(
                "remote-party-id",
                "<sip:+31201234567@carrier.example>;party=calling;screen=yes;privacy=off"
            )]
        );
        // Anonymous: From is anonymous in every mode (`CallerId::from_header`); the number
        // goes only where the mode asserts it to the carrier.
        id.anonymous = true;
        assert!(
            id.from_header("carrier.example")
                .contains("anonymous.invalid")
        );
        assert_eq!(
            texts(&id, CallerIdentity::Pai),
            [pair("p-asserted-identity", asserted), pair("privacy", "id")]
        );
        assert_eq!(texts(&id, CallerIdentity::From), [pair("privacy", "id")]);
        assert_eq!(
            texts(&id, CallerIdentity::Rpid),
            [pair(
                "remote-party-id",
                "<sip:+31201234567@carrier.example>;party=calling;screen=yes;privacy=full"
            )]
        );
        // No number at all: nothing to assert in any mode.
        id.number = None;
        id.anonymous = false;
        for mode in CallerIdentity::ALL {
            assert_eq!(texts(&id, *mode), [], "{mode}");
        }
    }
}
