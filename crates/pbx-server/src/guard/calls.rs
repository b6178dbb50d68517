//! The guard's API for the call engine: outbound destination control, usage limits and
//! the account baseline.
//!
//! How the call module drives it, for every outbound call attempt of an authenticated
//! account:
//!
//! 0. After the INVITE's digest check: [`SecurityGuard::invite_source_allowed`] (IP
//!    whitelist with the per-device mobile exemption, which requires TLS; `false` →
//!    `403`).
//! 1. [`SecurityGuard::check_call`] with the tenant, the calling user, the user's class of
//!    service and what was dialled (plus the already normalised E.164 form if the call
//!    module has one). On [`CallVerdict::Block`], answer `403` with the verdict's
//!    `Reason` header value and write a CDR; the guard has recorded the security event
//!    (blocked destination, threshold breach, or baseline anomaly/account block).
//! 2. On [`CallVerdict::Allow`], place the call and keep the returned [`CallHandle`];
//!    call [`SecurityGuard::call_answered`] on the 200 OK and [`SecurityGuard::call_ended`]
//!    when the call ends for whatever reason (failure, CANCEL, BYE). Emergency calls are
//!    never blocked or limited and carry no handle.
//! 3. Register a [`CallTerminator`] with [`SecurityGuard::set_call_terminator`]: the
//!    guard's housekeeping accrues the minutes and cost of running calls every second and
//!    asks it to end calls on a critical breach (a daily limit far exceeded, a critical
//!    baseline anomaly, an open line longer than 8 hours).
//!
//! Operators and customer admins block an account by hand with
//! [`SecurityGuard::block_account`] and lift blocks with [`SecurityGuard::lift_block`];
//! per-tenant and per-account limits (from the store, changed through the API) are set
//! with [`SecurityGuard::set_tenant_limits`] / [`SecurityGuard::set_account_limits`].

use std::net::IpAddr;
use std::sync::{Arc, PoisonError};

use pbx_domain::{ClassOfService, DirectorySnapshot, SipCredential, TenantId, UserId};
use pbx_policy::limits::{BreachEvent, Limits};
use pbx_policy::{
    BlockReason, CallHandle, DestinationClass, OutboundPolicy, PolicyDefaults, SecurityEvent,
    Verdict, classify,
};

use super::{SecurityGuard, unix_ms};

/// One outbound call attempt, as [`SecurityGuard::check_call`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct CallCheck<'a> {
    /// The calling account's tenant.
    pub tenant: TenantId,
    /// The calling account.
    pub user: UserId,
    /// The account's class of service.
    pub class_of_service: ClassOfService,
    /// What the user dialled (Request-URI user part), e.g. `0900 1234567`, `+4420…`, `112`.
    pub dialled: &'a str,
    /// The E.164 form (`+31…`) when the call module normalised it already; classified
    /// instead of `dialled` when present.
    pub normalised: Option<&'a str>,
}

/// The guard's answer for an outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallVerdict {
    /// Place the call; report its life with the handle (`None` for emergency calls, which
    /// are not counted).
    Allow {
        /// The destination class.
        class: DestinationClass,
        /// The number in E.164, where it is a public number.
        e164: Option<String>,
        /// The handle for `call_answered` / `call_ended`.
        handle: Option<CallHandle>,
    },
    /// Refuse the call.
    Block {
        /// SIP status (403).
        status: u16,
        /// Value of the `Reason` header (`Q.850;cause=21;text="…"`).
        reason: String,
        /// Why, typed.
        why: BlockReason,
        /// The destination class.
        class: DestinationClass,
    },
}

impl CallVerdict {
    /// Whether the call may go on.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

/// Ends running calls when the guard asks (implemented by the call module).
pub trait CallTerminator: Send + Sync + 'static {
    /// End these calls now (send BYE / CANCEL), with this reason (`Reason` header value).
    fn end_calls(&self, calls: &[CallHandle], reason: &str);
}

impl SecurityGuard {
    /// Decides on an outbound call and, when it is allowed, counts it as started (see the
    /// module documentation). Records a security event for every refusal.
    pub fn check_call(&self, call: &CallCheck<'_>) -> CallVerdict {
        let now = unix_ms();
        let dialled = call.normalised.unwrap_or(call.dialled);
        let destination = classify(
            dialled,
            &self.settings.default_country,
            self.settings.extension_len,
        );
        let mut inner = self.lock();
        inner.account_tenants.insert(call.user, call.tenant);
        let exceptions = inner
            .exceptions
            .get(&call.tenant)
            .cloned()
            .unwrap_or_default();
        let policy = OutboundPolicy::check(
            call.class_of_service,
            &destination,
            &exceptions,
            &PolicyDefaults::default(),
        );
        let verdict = match policy {
            Verdict::Allow => {
                inner
                    .usage
                    .check_setup(call.user, call.tenant, now, &destination.class)
            }
            Verdict::Block { reason } => {
                let event = SecurityEvent::DestinationBlocked {
                    tenant: Some(call.tenant),
                    account: Some(call.user),
                    number: destination
                        .e164
                        .clone()
                        .unwrap_or_else(|| dialled.chars().take(32).collect()),
                    class: destination.class.clone(),
                    reason: reason.q850().1.to_owned(),
                };
                self.publish(&mut inner, now, Some(call.tenant), event);
                Verdict::Block { reason }
            }
        };
        let result = match verdict {
            Verdict::Allow => {
                let handle = (destination.class != DestinationClass::Emergency).then(|| {
                    inner
                        .usage
                        .call_started(call.user, call.tenant, now, &destination.class)
                });
                CallVerdict::Allow {
                    class: destination.class,
                    e164: destination.e164,
                    handle,
                }
            }
            Verdict::Block { reason } => CallVerdict::Block {
                status: 403,
                reason: reason.reason_header(),
                why: reason,
                class: destination.class,
            },
        };
        for event in inner.usage.take_events() {
            self.publish(&mut inner, now, Some(call.tenant), event);
        }
        result
    }

    /// The IP whitelist check for an authenticated INVITE, honouring the per-device mobile
    /// exemption: `true` when the tenant's and user's whitelists allow `source`, or when the
    /// credential's device is whitelist-exempt and the INVITE came over TLS (`transport`).
    /// `false` — answer `403` whatever the password was — records a `whitelist_rejected`
    /// event. Same rule as the registrar applies to REGISTER
    /// ([`DirectorySnapshot::source_permitted`]).
    pub fn invite_source_allowed(
        &self,
        directory: &DirectorySnapshot,
        credential: &SipCredential,
        source: IpAddr,
        transport: pbx_sip_net::Transport,
    ) -> bool {
        let tls = transport == pbx_sip_net::Transport::Tls;
        if directory.source_permitted(credential, source, tls) {
            return true;
        }
        let now = unix_ms();
        let event = SecurityEvent::WhitelistRejected {
            tenant: credential.tenant_id,
            source: self.source_key(source),
        };
        let mut inner = self.lock();
        self.publish(&mut inner, now, Some(credential.tenant_id), event);
        false
    }

    /// The call was answered: minutes and cost accrue from now.
    pub fn call_answered(&self, handle: CallHandle) {
        self.lock().usage.call_answered(handle, unix_ms());
    }

    /// The call ended (any reason): releases its concurrency slot, accrues its minutes.
    pub fn call_ended(&self, handle: CallHandle) {
        let mut inner = self.lock();
        inner.usage.call_ended(handle, unix_ms());
        inner.dirty = true;
    }

    /// Installs the call module's terminator (see [`CallTerminator`]).
    pub fn set_call_terminator(&self, terminator: Arc<dyn CallTerminator>) {
        *self
            .terminator
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(terminator);
    }

    /// Accounts whose outbound calls are blocked, with their tenant.
    pub fn blocked_accounts(&self) -> Vec<(UserId, TenantId)> {
        self.lock().usage.blocked_accounts()
    }

    /// Lifts an account's outbound block (operator or customer admin). `false` when it was
    /// not blocked.
    pub fn lift_block(&self, account: UserId) -> bool {
        let now = unix_ms();
        let mut inner = self.lock();
        let tenant = inner
            .usage
            .blocked_accounts()
            .into_iter()
            .find(|(a, _)| *a == account)
            .map(|(_, t)| t);
        let lifted = inner.usage.lift(account, now).is_some();
        for event in inner.usage.take_events() {
            self.publish(&mut inner, now, tenant, event);
        }
        lifted
    }

    /// Blocks an account's outbound calls by hand (operator or customer admin), as a
    /// threshold breach does: an `account_blocked` event, every new outbound call but
    /// emergency calls refused until [`Self::lift_block`], persisted with the guard's state.
    /// Its outbound calls in progress are ended through the [`CallTerminator`]. `false` when
    /// it was blocked already.
    pub fn block_account(&self, tenant: TenantId, account: UserId) -> bool {
        let now = unix_ms();
        let mut inner = self.lock();
        let blocked = inner.usage.block(account, tenant).is_some();
        for event in inner.usage.take_events() {
            self.publish(&mut inner, now, Some(tenant), event);
        }
        let calls = if blocked {
            inner.usage.account_calls(account)
        } else {
            Vec::new()
        };
        drop(inner);
        if !calls.is_empty() {
            self.end_calls(&calls, &BlockReason::AccountBlocked);
        }
        blocked
    }

    /// Sets an account's own usage limits (`None`: the defaults apply again). In force for
    /// its next call; not persisted here (the store's `user_usage_limits` is their truth).
    pub fn set_account_limits(&self, account: UserId, limits: Option<Limits>) {
        let mut inner = self.lock();
        match limits {
            Some(limits) => inner.usage.set_account_limits(account, limits),
            None => {
                inner.usage.remove_account_limits(account);
            }
        }
    }

    /// Sets a tenant's own usage limits (`None`: the defaults apply again).
    pub fn set_tenant_limits(&self, tenant: TenantId, limits: Option<Limits>) {
        let mut inner = self.lock();
        match limits {
            Some(limits) => inner.usage.set_tenant_limits(tenant, limits),
            None => {
                inner.usage.remove_tenant_limits(tenant);
            }
        }
    }

    /// The usage limits in force for an account.
    pub fn account_limits(&self, account: UserId) -> Limits {
        self.lock().usage.account_limits(&account)
    }

    /// The usage limits in force for a tenant.
    pub fn tenant_limits(&self, tenant: TenantId) -> Limits {
        self.lock().usage.tenant_limits(&tenant)
    }

    /// Asks the call module to end `calls` (a warning when none is installed).
    fn end_calls(&self, calls: &[CallHandle], reason: &BlockReason) {
        let terminator = self
            .terminator
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match terminator {
            Some(t) => t.end_calls(calls, &reason.reason_header()),
            None => tracing::warn!(
                calls = calls.len(),
                "calls to end but no call module to end them"
            ),
        }
    }

    /// Calls in progress known to the guard.
    pub fn running_calls(&self) -> usize {
        self.lock().usage.running_calls()
    }

    /// The running-call checks of the housekeeping round.
    pub(super) fn check_running_calls(&self, now: u64) {
        let mut inner = self.lock();
        let breaches = inner.usage.check_running(now);
        let events = inner.usage.take_events();
        for event in events {
            let tenant = super::event_tenant(&event).or_else(|| {
                super::event_account(&event)
                    .and_then(|account| inner.account_tenants.peek(&account).copied())
            });
            self.publish(&mut inner, now, tenant, event);
        }
        inner.usage.forget_idle(now);
        drop(inner);
        for breach in breaches {
            if let BreachEvent::EndCalls { calls, reason } = breach {
                self.end_calls(&calls, &reason);
            }
        }
    }
}
