//! The fraud and abuse guard, wired into the running server (issue 5).
//!
//! [`SecurityGuard`] owns the sans-IO policy state of `pbx-policy` (the brute-force
//! [`Guard`], the outbound [`UsageTracker`]) behind one short-held mutex, plus a read-mostly
//! copy of the active bans that the transports consult for every datagram and connection
//! before anything is parsed ([`GuardFilter`], a [`pbx_sip_net::SourceFilter`]):
//!
//! - **Transport** ([`SecurityGuard::admit`]): a banned source is dropped (UDP silently,
//!   TCP/TLS closed on accept and at the next frame). Other sources spend a token of their
//!   flood bucket; a source over its rate is banned for flooding. Sources where an account
//!   authenticated recently are exempt from the flood ban (their requests always pass).
//! - **SIP path** ([`SecurityGuard::inspect`], [`SecurityGuard::register_throttled`],
//!   [`SecurityGuard::after_register`]): scanner User-Agents, failed authentications (wrong
//!   password and unknown user are told apart here, from the directory, never in the
//!   answer), whitelist refusals, challenges never answered (a 401 without a follow-up
//!   within `challenge_timeout`), and successes (which exempt the source). Sources in the
//!   tenant's IP whitelist and sources that authenticated recently are not banned for
//!   another account's failures: the failing user name is throttled instead, and a
//!   throttled user name is challenged again as if its password were wrong.
//! - **Calls** ([`SecurityGuard::check_call`] and the `call_*` methods in `guard/calls.rs`):
//!   destination classes, class of service, tenant exceptions, usage limits and the
//!   account baseline, for the call engine.
//! - **Events**: every ban, unban, throttle, whitelist refusal, blocked destination, limit
//!   breach and baseline anomaly is a [`Recorded`] event on a bounded queue, which
//!   [`sink::run`] writes to the store (`security_events`; bans and unbans also to the audit
//!   log), counts for `/metrics` and posts to the webhook.
//! - **Persistence**: [`SecurityGuard::export_state`] / [`SecurityGuard::import_state`] (bans
//!   with their escalation history, counters, throttles, baselines, account blocks),
//!   saved by [`sink::persist_loop`] whenever something changed and at shutdown.

mod calls;
mod config;
mod control;
pub mod kernel;
mod metrics;
pub mod sink;
mod webhook;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use pbx_domain::{DirectorySnapshot, TenantId};
use pbx_policy::guard::{BanInfo, GuardState};
use pbx_policy::{
    BanReason, BoundedMap, Guard, Observation, ObservationKind, SecurityEvent, SourceKey,
    TenantExceptions, UsageTracker, scanner_user_agent,
};
use pbx_registrar::{AuthFailure, Effect, RegistrationEvent};
use pbx_sip::{HeaderName, Request, StatusCode};
use pbx_sip_auth::Credentials;
use pbx_sip_net::{SourceFilter, Transport};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use calls::{CallCheck, CallTerminator, CallVerdict};
pub use config::{LimitsSection, SecuritySection, SecuritySettings, WebhookSettings};
pub use control::GuardControl;
pub use metrics::GuardMetrics;

/// Events queued for the store/webhook task at most; beyond, events are dropped and counted.
const EVENT_QUEUE: usize = 65_536;
/// Sources remembered as recently authenticated / with pending challenges at most.
const MAX_TRACKED_SOURCES: usize = 100_000;

/// One security event with its time and tenant (when one is concerned).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    /// Unix ms.
    pub at_ms: u64,
    /// The tenant the event concerns, when known.
    pub tenant: Option<TenantId>,
    /// The event.
    pub event: SecurityEvent,
}

impl Recorded {
    /// The event's type name (`source_banned`, `whitelist_rejected`, ...).
    pub fn kind(&self) -> &'static str {
        event_kind(&self.event)
    }
}

/// The stable type name of an event (the `type` field of its JSON form).
pub fn event_kind(event: &SecurityEvent) -> &'static str {
    match event {
        SecurityEvent::SourceBanned { .. } => "source_banned",
        SecurityEvent::SourceUnbanned { .. } => "source_unbanned",
        SecurityEvent::UserThrottled { .. } => "user_throttled",
        SecurityEvent::TenantUnderAttack { .. } => "tenant_under_attack",
        SecurityEvent::WhitelistRejected { .. } => "whitelist_rejected",
        SecurityEvent::DestinationBlocked { .. } => "destination_blocked",
        SecurityEvent::ThresholdBreached { .. } => "threshold_breached",
        SecurityEvent::BaselineAnomaly { .. } => "baseline_anomaly",
        SecurityEvent::AccountBlocked { .. } => "account_blocked",
        SecurityEvent::AccountUnblocked { .. } => "account_unblocked",
        _ => "security_event",
    }
}

/// Unanswered challenges of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    count: u32,
    since: u64,
}

/// What is persisted (JSON in `security_state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    guard: GuardState,
    usage: pbx_policy::limits::UsageState,
    #[serde(default)]
    exceptions: Vec<(TenantId, TenantExceptions)>,
}

struct Inner {
    guard: Guard,
    usage: UsageTracker,
    /// Source → last successful authentication (Unix ms).
    authenticated: BoundedMap<SourceKey, u64>,
    /// Source → challenges sent without a follow-up yet.
    challenges: BoundedMap<SourceKey, Pending>,
    /// Account → its tenant, learnt at call set-up, so that account-scoped events raised
    /// while calls run (threshold breaches, baseline anomalies) reach the tenant's list.
    account_tenants: BoundedMap<pbx_domain::UserId, TenantId>,
    exceptions: HashMap<TenantId, TenantExceptions>,
    /// Sources never rate-limited or banned (SIP trunks, the platform's own peers).
    trusted: std::collections::HashSet<SourceKey>,
    /// Something worth persisting changed since the last export.
    dirty: bool,
}

/// The guard of one server. Cheap to share (`Arc`).
pub struct SecurityGuard {
    settings: SecuritySettings,
    /// Active bans (source → until, Unix ms), mirrored from the guard for the transports.
    bans: RwLock<HashMap<SourceKey, u64>>,
    /// Woken whenever `bans` changes (the kernel drop set follows, [`kernel::run`]).
    bans_changed: tokio::sync::Notify,
    /// Bans installed in the kernel drop set now.
    kernel_entries: std::sync::atomic::AtomicUsize,
    /// The SIP transports whose kernel drop set follows the bans (set by [`kernel::run`]).
    kernel_transports: std::sync::OnceLock<pbx_sip_net::TransportHandle>,
    inner: Mutex<Inner>,
    events: mpsc::Sender<Recorded>,
    metrics: GuardMetrics,
    terminator: RwLock<Option<Arc<dyn CallTerminator>>>,
}

impl std::fmt::Debug for SecurityGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityGuard")
            .field("enabled", &self.settings.enabled)
            .field("bans", &self.read_bans().len())
            .finish_non_exhaustive()
    }
}

/// The current Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl SecurityGuard {
    /// A guard with no history, and the receiving end of its event queue (give it to
    /// [`sink::run`]).
    pub fn new(settings: SecuritySettings) -> (Arc<Self>, mpsc::Receiver<Recorded>) {
        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        let usage = UsageTracker::new(pbx_policy::limits::UsageConfig {
            account: settings.account_limits.clone(),
            tenant: settings.tenant_limits.clone(),
            ..pbx_policy::limits::UsageConfig::default()
        });
        let guard = Arc::new(Self {
            bans: RwLock::new(HashMap::new()),
            bans_changed: tokio::sync::Notify::new(),
            kernel_entries: std::sync::atomic::AtomicUsize::new(0),
            kernel_transports: std::sync::OnceLock::new(),
            inner: Mutex::new(Inner {
                guard: Guard::new(settings.guard.clone()),
                usage,
                authenticated: BoundedMap::new(MAX_TRACKED_SOURCES),
                challenges: BoundedMap::new(MAX_TRACKED_SOURCES),
                account_tenants: BoundedMap::new(MAX_TRACKED_SOURCES),
                exceptions: HashMap::new(),
                trusted: std::collections::HashSet::new(),
                dirty: false,
            }),
            settings,
            events,
            metrics: GuardMetrics::default(),
            terminator: RwLock::new(None),
        });
        (guard, receiver)
    }

    /// The settings.
    pub fn settings(&self) -> &SecuritySettings {
        &self.settings
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &GuardMetrics {
        &self.metrics
    }

    /// The transport hook to install with `Transports::with_source_filter`.
    pub fn filter(self: &Arc<Self>) -> GuardFilter {
        GuardFilter(Arc::clone(self))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_bans(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SourceKey, u64>> {
        self.bans.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key `ip` is counted and banned under (IPv6 aggregated by prefix).
    pub fn source_key(&self, ip: IpAddr) -> SourceKey {
        SourceKey::from_ip(ip, self.settings.guard.ipv6_prefix_len)
    }

    /// Whether `ip` is banned now (the check the transports make).
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        let key = self.source_key(ip);
        let now = unix_ms();
        self.read_bans().get(&key).is_some_and(|until| *until > now)
    }

    /// The transport check, before parsing: `false` drops the datagram or closes the
    /// connection. Cost for a banned source: one read lock and one hash lookup.
    pub fn admit(&self, ip: IpAddr) -> bool {
        if !self.settings.enabled {
            return true;
        }
        let key = self.source_key(ip);
        let now = unix_ms();
        if self.read_bans().get(&key).is_some_and(|until| *until > now) {
            self.metrics.count_dropped();
            return false;
        }
        let recent_ms = duration_ms(self.settings.recent_auth);
        let mut inner = self.lock();
        if inner.trusted.contains(&key)
            || inner
                .authenticated
                .peek(&key)
                .is_some_and(|at| now.saturating_sub(*at) < recent_ms)
        {
            return true;
        }
        let (decision, event) = inner.guard.admit_request(now, ip, false);
        if let Some(event) = event {
            self.publish(&mut inner, now, None, event);
        }
        if decision == pbx_policy::Decision::Allow {
            true
        } else {
            self.metrics.count_dropped();
            false
        }
    }

    /// The TU hook for every new request (after parsing, before any work): known scanner
    /// User-Agents are reported (and banned at once by default). `false`: drop the request
    /// without an answer.
    pub fn inspect(&self, source: SocketAddr, request: &Request) -> bool {
        if !self.settings.enabled {
            return true;
        }
        let scanner = request
            .headers()
            .get(&HeaderName::UserAgent)
            .is_some_and(scanner_user_agent);
        if !scanner {
            return true;
        }
        let now = unix_ms();
        let mut inner = self.lock();
        let obs = Observation {
            source: source.ip(),
            user_name: None,
            tenant: None,
            kind: ObservationKind::ScannerUserAgent,
            exempt_source: false,
            recently_authenticated_source: false,
        };
        self.observe(&mut inner, now, obs);
        !inner.guard.is_banned(source.ip(), now)
    }

    /// Before the registrar sees a REGISTER: whether its user name is throttled (counted when
    /// it is). The caller then strips its credentials, so the registrar challenges again
    /// exactly as for a wrong password (the phone cannot tell a throttle from a typo); only
    /// that rare case needs a copy of the request.
    pub fn register_throttled(&self, request: &Request) -> bool {
        if !self.settings.enabled {
            return false;
        }
        if !request.headers().contains(&HeaderName::Authorization) {
            return false;
        }
        let now = unix_ms();
        let inner = self.lock();
        // Nobody throttled (the usual case): the credentials need not be read.
        if !inner.guard.any_user_throttled(now) {
            return false;
        }
        let Some(user) = auth_user_name(request) else {
            return false;
        };
        let throttled = inner.guard.is_user_throttled(&user, now);
        drop(inner);
        if throttled {
            self.metrics.count_throttled();
        }
        throttled
    }

    /// After the registrar answered a REGISTER from `source` with `status`: learns the
    /// authentication result from the answer and the registrar's events. `throttled` is what
    /// [`Self::register_throttled`] returned (a stripped request is not a new challenge).
    pub fn after_register(
        &self,
        source: SocketAddr,
        request: &Request,
        status: StatusCode,
        effects: &[Effect],
        directory: &DirectorySnapshot,
        throttled: bool,
    ) {
        if !self.settings.enabled {
            return;
        }
        let now = unix_ms();
        let key = self.source_key(source.ip());
        let has_credentials = throttled || request.headers().contains(&HeaderName::Authorization);
        let failure = effects.iter().find_map(|effect| match effect {
            Effect::Event(RegistrationEvent::AuthFailed {
                reason, tenant_id, ..
            }) => Some((*reason, *tenant_id)),
            _ => None,
        });
        let mut inner = self.lock();
        if has_credentials {
            // The challenge was answered (rightly or wrongly).
            inner.challenges.remove(&key);
        } else if status == StatusCode::UNAUTHORIZED {
            let pending = inner.challenges.get_or_insert_with(key, || Pending {
                count: 0,
                since: now,
            });
            pending.count = pending.count.saturating_add(1);
            return;
        }
        let Some((reason, tenant)) = failure else {
            if has_credentials && status.is_success() {
                inner.authenticated.insert(key, now);
                inner.dirty = true;
            }
            return;
        };
        let user = auth_user_name(request);
        let credential = user
            .as_deref()
            .and_then(|name| directory.usable_credential(name));
        let tenant = tenant.or(credential.map(|c| c.tenant_id));
        let kind = match reason {
            AuthFailure::InvalidCredentials if credential.is_none() => ObservationKind::UnknownUser,
            _ => ObservationKind::AuthFailed,
        };
        if reason == AuthFailure::NotWhitelisted
            && let Some(tenant) = tenant
        {
            let event = SecurityEvent::WhitelistRejected {
                tenant,
                source: key,
            };
            self.publish(&mut inner, now, Some(tenant), event);
        }
        // Exempt: the source is on the account's tenant whitelist, or someone authenticated
        // from it recently (an office behind one NAT).
        let exempt_source = match (tenant, credential) {
            (Some(tenant), _) => directory
                .tenant_whitelist(tenant)
                .is_some_and(|list| list.allows(source.ip())),
            _ => false,
        };
        let recent_ms = duration_ms(self.settings.recent_auth);
        let recently_authenticated_source = inner
            .authenticated
            .peek(&key)
            .is_some_and(|at| now.saturating_sub(*at) < recent_ms);
        let obs = Observation {
            source: source.ip(),
            user_name: user.as_deref(),
            tenant,
            kind,
            exempt_source,
            recently_authenticated_source,
        };
        self.metrics.count_auth_failure();
        self.observe(&mut inner, now, obs);
        inner.dirty = true;
    }

    /// A refused provisioning fetch (TFTP/HTTPS) from `source`, e.g. from outside the
    /// tenant's whitelist: one failure of the source, as a failed authentication.
    /// `whitelisted`: the source is on that tenant's whitelist (counted for the tenant, never
    /// banned for it); a source that authenticated recently is not banned either.
    pub fn provisioning_refused(
        &self,
        source: IpAddr,
        tenant: Option<TenantId>,
        whitelisted: bool,
    ) {
        if !self.settings.enabled {
            return;
        }
        let now = unix_ms();
        let key = self.source_key(source);
        let recent_ms = duration_ms(self.settings.recent_auth);
        let mut inner = self.lock();
        let recently_authenticated_source = inner
            .authenticated
            .peek(&key)
            .is_some_and(|at| now.saturating_sub(*at) < recent_ms);
        let obs = Observation {
            source,
            user_name: None,
            tenant,
            kind: ObservationKind::AuthFailed,
            exempt_source: whitelisted,
            recently_authenticated_source,
        };
        self.observe(&mut inner, now, obs);
        inner.dirty = true;
    }

    /// Housekeeping, every second or so: expired bans (audit events), unanswered
    /// challenges, running-call checks (limits, baselines; critical breaches end calls
    /// through the [`CallTerminator`]).
    pub fn housekeeping(&self, now: u64) {
        if !self.settings.enabled {
            return;
        }
        let timeout = duration_ms(self.settings.challenge_timeout);
        let recent_ms = duration_ms(self.settings.recent_auth);
        let mut inner = self.lock();
        for event in inner.guard.expire(now) {
            self.publish(&mut inner, now, None, event);
        }
        let overdue: Vec<(SourceKey, Pending)> = inner
            .challenges
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.since) >= timeout)
            .map(|(k, p)| (*k, *p))
            .collect();
        for (key, pending) in overdue {
            inner.challenges.remove(&key);
            let Some(ip) = key_ip(key) else { continue };
            let recently_authenticated_source = inner
                .authenticated
                .peek(&key)
                .is_some_and(|at| now.saturating_sub(*at) < recent_ms);
            // At most the ban threshold per round: more cannot change the outcome.
            let count = pending.count.min(self.settings.guard.source_failures);
            for _ in 0..count {
                let obs = Observation {
                    source: ip,
                    user_name: None,
                    tenant: None,
                    kind: ObservationKind::ChallengeUnanswered,
                    exempt_source: false,
                    recently_authenticated_source,
                };
                self.observe(&mut inner, now, obs);
            }
            inner.dirty = true;
        }
        inner
            .authenticated
            .retain(|_, at| now.saturating_sub(*at) < recent_ms);
        drop(inner);
        self.check_running_calls(now);
    }

    /// Records one observation with the policy and publishes what it caused. Failures of a
    /// source that is not banned yet are counted (`failures_before_ban`).
    fn observe(&self, inner: &mut Inner, now: u64, obs: Observation<'_>) {
        if inner.trusted.contains(&self.source_key(obs.source)) {
            return;
        }
        if obs.kind != ObservationKind::Request && !inner.guard.is_banned(obs.source, now) {
            self.metrics.count_failure();
        }
        let tenant = obs.tenant;
        for event in inner.guard.record(now, obs) {
            self.publish(inner, now, tenant, event);
        }
    }

    /// Publishes an event: mirrors bans for the transports, counts it, queues it for the
    /// store and the webhook.
    fn publish(&self, inner: &mut Inner, now: u64, tenant: Option<TenantId>, event: SecurityEvent) {
        match &event {
            SecurityEvent::SourceBanned { source, until, .. } => {
                self.bans
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(*source, *until);
                self.bans_changed.notify_one();
                tracing::warn!(%source, until, "source banned");
            }
            SecurityEvent::SourceUnbanned { source, .. } => {
                self.bans
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(source);
                self.bans_changed.notify_one();
                tracing::info!(%source, "source unbanned");
            }
            _ => {}
        }
        inner.dirty = true;
        let tenant = tenant.or_else(|| event_tenant(&event));
        self.metrics.count_event(event_kind(&event));
        let recorded = Recorded {
            at_ms: now,
            tenant,
            event,
        };
        if self.events.try_send(recorded).is_err() {
            self.metrics.count_event_dropped();
        }
    }

    fn resync_bans(&self, inner: &Inner, now: u64) {
        let mut bans = self.bans.write().unwrap_or_else(PoisonError::into_inner);
        bans.clear();
        for ban in inner.guard.ban_list(now) {
            bans.insert(ban.source, ban.until);
        }
        self.bans_changed.notify_one();
    }

    /// Active bans, longest remaining first.
    pub fn bans(&self) -> Vec<BanInfo> {
        self.lock().guard.ban_list(unix_ms())
    }

    /// Bans `ip`'s source by hand (operator). Returns the ban.
    pub fn ban(&self, ip: IpAddr) -> Option<BanInfo> {
        let now = unix_ms();
        let key = self.source_key(ip);
        let mut inner = self.lock();
        let event = inner.guard.ban(key, now, BanReason::Manual);
        self.publish(&mut inner, now, None, event);
        inner
            .guard
            .ban_list(now)
            .into_iter()
            .find(|b| b.source == key)
    }

    /// Lifts the ban of `source` (and forgets its escalation history). `false` when it had
    /// none.
    pub fn unban(&self, source: SourceKey) -> bool {
        let now = unix_ms();
        let mut inner = self.lock();
        match inner.guard.unban(source, now) {
            Some(event) => {
                self.publish(&mut inner, now, None, event);
                true
            }
            None => false,
        }
    }

    /// Throttled user names with the end of their throttle (Unix ms).
    pub fn throttled_users(&self) -> Vec<(String, u64)> {
        self.lock().guard.throttled_users(unix_ms())
    }

    /// Lifts a user-name throttle. `false` when it was not throttled.
    pub fn unthrottle_user(&self, user: &str) -> bool {
        let mut inner = self.lock();
        let lifted = inner.guard.unthrottle_user(user);
        inner.dirty |= lifted;
        lifted
    }

    /// Trusts `ip`'s source for good: never rate-limited, counted or banned (a SIP trunk's
    /// signalling address, which sends many requests without ever registering). Not
    /// persisted: the call module declares its trunks at every start.
    pub fn trust_source(&self, ip: IpAddr) {
        let key = self.source_key(ip);
        self.lock().trusted.insert(key);
    }

    /// Sets a tenant's destination exceptions (allow/block prefixes).
    pub fn set_tenant_exceptions(&self, tenant: TenantId, exceptions: TenantExceptions) {
        let mut inner = self.lock();
        inner.exceptions.insert(tenant, exceptions);
        inner.dirty = true;
    }

    /// Replaces every tenant's destination exceptions (at start, from the store).
    pub fn replace_tenant_exceptions(
        &self,
        all: impl IntoIterator<Item = (TenantId, TenantExceptions)>,
    ) {
        let mut inner = self.lock();
        inner.exceptions = all.into_iter().collect();
        inner.dirty = true;
    }

    /// A tenant's destination exceptions.
    pub fn tenant_exceptions(&self, tenant: TenantId) -> TenantExceptions {
        self.lock()
            .exceptions
            .get(&tenant)
            .cloned()
            .unwrap_or_default()
    }

    /// Guard sizes for `/metrics`.
    pub fn stats(&self) -> pbx_policy::guard::GuardStats {
        self.lock().guard.stats()
    }

    /// The state to persist when it changed since the last call (`force`: always).
    pub fn export_state(&self, force: bool) -> Option<String> {
        let mut inner = self.lock();
        if !force && !inner.dirty {
            return None;
        }
        inner.dirty = false;
        let snapshot = Snapshot {
            guard: inner.guard.export(),
            usage: inner.usage.export(),
            exceptions: inner
                .exceptions
                .iter()
                .map(|(t, e)| (*t, e.clone()))
                .collect(),
        };
        drop(inner);
        serde_json::to_string(&snapshot).ok()
    }

    /// Restores a persisted state (at start). Bans still running are enforced at once.
    pub fn import_state(&self, json: &str, now: u64) -> Result<usize, serde_json::Error> {
        let snapshot: Snapshot = serde_json::from_str(json)?;
        let mut inner = self.lock();
        inner.guard.import(snapshot.guard, now);
        inner.usage.import(snapshot.usage);
        inner.exceptions = snapshot.exceptions.into_iter().collect();
        self.resync_bans(&inner, now);
        Ok(inner.guard.ban_list(now).len())
    }
}

/// The auth user name of a request's first Authorization header, if it parses.
fn auth_user_name(request: &Request) -> Option<String> {
    let value = request.headers().get(&HeaderName::Authorization)?;
    Credentials::parse(value)
        .ok()
        .map(|c| c.username.into_owned())
}

/// The address a source key stands for (its network address for an IPv6 prefix).
fn key_ip(key: SourceKey) -> Option<IpAddr> {
    match key {
        SourceKey::V4 { addr } => Some(IpAddr::V4(addr)),
        SourceKey::V6 { prefix, .. } => Some(IpAddr::V6(prefix)),
    }
}

/// The account an event concerns, when it names one.
fn event_account(event: &SecurityEvent) -> Option<pbx_domain::UserId> {
    match event {
        SecurityEvent::ThresholdBreached {
            scope: pbx_policy::Scope::Account { account },
            ..
        }
        | SecurityEvent::BaselineAnomaly { account, .. }
        | SecurityEvent::AccountUnblocked { account, .. } => Some(*account),
        _ => None,
    }
}

fn event_tenant(event: &SecurityEvent) -> Option<TenantId> {
    match event {
        SecurityEvent::TenantUnderAttack { tenant, .. }
        | SecurityEvent::WhitelistRejected { tenant, .. }
        | SecurityEvent::AccountBlocked { tenant, .. } => Some(*tenant),
        SecurityEvent::DestinationBlocked { tenant, .. } => *tenant,
        SecurityEvent::ThresholdBreached {
            scope: pbx_policy::Scope::Tenant { tenant },
            ..
        } => Some(*tenant),
        _ => None,
    }
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The [`SourceFilter`] of a [`SecurityGuard`].
#[derive(Debug, Clone)]
pub struct GuardFilter(Arc<SecurityGuard>);

impl SourceFilter for GuardFilter {
    fn admit(&self, remote: SocketAddr, _transport: Transport) -> bool {
        self.0.admit(remote.ip())
    }
}

#[cfg(test)]
mod tests;
