//! Brute-force and scanning guard.
//!
//! Feed it one [`Observation`] per relevant SIP event with [`Guard::record`]; ask
//! [`Guard::is_banned`] at the transport before parsing (O(1), `&self`). Bans escalate
//! (×4 by default, capped at 24 h) and decay after the ban-history window. Sources in a
//! tenant's IP whitelist and sources that authenticated recently are never banned: the
//! failing user name is throttled instead ([`Guard::is_user_throttled`]).
//!
//! Every map keyed by attacker-controlled data is an LRU-capped [`BoundedMap`].

mod config;
mod scanner;
mod state;

use std::net::IpAddr;

use pbx_domain::TenantId;
use serde::{Deserialize, Serialize};

pub use config::GuardConfig;
pub use scanner::{SCANNER_USER_AGENTS, scanner_user_agent};
pub use state::{BanInfo, GuardState};

use crate::bounded::BoundedMap;
use crate::event::{BanReason, LiftedBy, SecurityEvent};
use crate::source::SourceKey;
use crate::window::{SlidingWindow, TokenBucket};

/// Events the guard emits (the security events it can produce).
pub type GuardEvent = SecurityEvent;

/// Longest user name kept as a key; longer names are truncated (bounds memory per entry).
pub const MAX_USER_NAME: usize = 128;

/// What happened, as seen by the SIP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ObservationKind {
    /// A digest response with a wrong password.
    AuthFailed,
    /// A request for a user name that does not exist.
    UnknownUser,
    /// A 401/407 challenge never answered.
    ChallengeUnanswered,
    /// A request carrying a known scanner User-Agent.
    ScannerUserAgent,
    /// Any request (counts towards the flood rate only).
    Request,
}

/// One observation for [`Guard::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation<'a> {
    /// The packet's source address.
    pub source: IpAddr,
    /// The auth user name involved, if any.
    pub user_name: Option<&'a str>,
    /// The tenant involved, if known.
    pub tenant: Option<TenantId>,
    /// What happened.
    pub kind: ObservationKind,
    /// The source is in the tenant's IP whitelist.
    pub exempt_source: bool,
    /// Some user authenticated successfully from this source recently.
    pub recently_authenticated_source: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceCounters {
    pub(crate) failures: SlidingWindow,
    #[serde(skip)]
    pub(crate) bucket: Option<TokenBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BanRecord {
    pub(crate) since: u64,
    pub(crate) until: u64,
    pub(crate) level: u32,
    pub(crate) reason: BanReason,
    /// The expiry has been reported as an unban event.
    pub(crate) expiry_reported: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserCounters {
    pub(crate) failures: SlidingWindow,
    pub(crate) throttled_until: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TenantCounters {
    pub(crate) failures: SlidingWindow,
    pub(crate) alerted_until: u64,
}

/// Sizes and eviction counts, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardStats {
    /// Sources with live counters.
    pub sources: usize,
    /// Ban records (active bans and histories).
    pub bans: usize,
    /// User names with live counters.
    pub users: usize,
    /// Tenants with live counters.
    pub tenants: usize,
    /// Evictions from the source map.
    pub source_evictions: u64,
    /// Evictions from the ban map.
    pub ban_evictions: u64,
    /// Evictions from the user map.
    pub user_evictions: u64,
}

/// The brute-force guard. Sans-IO: every method takes `now` in Unix milliseconds.
#[derive(Debug, Clone)]
pub struct Guard {
    config: GuardConfig,
    sources: BoundedMap<SourceKey, SourceCounters>,
    bans: BoundedMap<SourceKey, BanRecord>,
    users: BoundedMap<String, UserCounters>,
    tenants: BoundedMap<TenantId, TenantCounters>,
    /// The latest `throttled_until` ever set: past it no user name is throttled, which
    /// spares the caller reading the credentials of every REGISTER.
    throttle_horizon: u64,
}

impl Guard {
    /// A guard with no history.
    pub fn new(config: GuardConfig) -> Self {
        Self {
            sources: BoundedMap::new(config.max_sources),
            bans: BoundedMap::new(config.max_bans),
            users: BoundedMap::new(config.max_users),
            tenants: BoundedMap::new(config.max_tenants),
            config,
            throttle_horizon: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// The key `ip` is counted under.
    pub fn source_key(&self, ip: IpAddr) -> SourceKey {
        SourceKey::from_ip(ip, self.config.ipv6_prefix_len)
    }

    /// Whether packets from `ip` are to be dropped at the transport (UDP: silently;
    /// TCP/TLS: close the connection). O(1).
    pub fn is_banned(&self, ip: IpAddr, now: u64) -> bool {
        self.bans
            .peek(&self.source_key(ip))
            .is_some_and(|b| b.until > now)
    }

    /// Whether any user name may be throttled at `now` (false: none is, whatever its name).
    pub fn any_user_throttled(&self, now: u64) -> bool {
        self.throttle_horizon > now
    }

    /// Whether authentications for `user` are refused for now.
    pub fn is_user_throttled(&self, user: &str, now: u64) -> bool {
        self.users
            .peek(&user_key(user))
            .is_some_and(|u| u.throttled_until > now)
    }

    /// Records one observation and returns the events it caused.
    pub fn record(&mut self, now: u64, obs: Observation<'_>) -> Vec<GuardEvent> {
        let key = self.source_key(obs.source);
        let mut events = Vec::new();
        if self.bans.peek(&key).is_some_and(|b| b.until > now) {
            return events;
        }
        let exempt = obs.exempt_source || obs.recently_authenticated_source;
        match obs.kind {
            ObservationKind::Request => {
                if !self.take_token(key, now) && !exempt {
                    events.push(self.ban(key, now, BanReason::Flood));
                }
            }
            ObservationKind::ScannerUserAgent
                if self.config.scanner_immediate_ban && !obs.exempt_source =>
            {
                events.push(self.ban(key, now, BanReason::Scanner));
            }
            ObservationKind::ScannerUserAgent
            | ObservationKind::AuthFailed
            | ObservationKind::UnknownUser
            | ObservationKind::ChallengeUnanswered => {
                self.count_failure(now, key, &obs, exempt, &mut events);
            }
        }
        events
    }

    fn take_token(&mut self, key: SourceKey, now: u64) -> bool {
        let (burst, rate) = (self.config.flood_burst, self.config.flood_rate_per_second);
        let counters = self
            .sources
            .get_or_insert_with(key, || new_source(&self.config));
        let bucket = counters
            .bucket
            .get_or_insert_with(|| TokenBucket::full(burst, now));
        bucket.take(now, burst, rate)
    }

    /// The transport hook for every received request, combining the ban check and the flood
    /// rate: `Drop` when the source is banned, or is over its rate (a non-exempt source is
    /// then banned, the event is returned; an exempt source — whitelisted office — only has
    /// its excess dropped). `Allow` otherwise.
    pub fn admit_request(
        &mut self,
        now: u64,
        ip: IpAddr,
        exempt: bool,
    ) -> (crate::decision::Decision, Option<GuardEvent>) {
        use crate::decision::Decision;
        let key = self.source_key(ip);
        if self.bans.peek(&key).is_some_and(|b| b.until > now) {
            return (Decision::Drop, None);
        }
        if self.take_token(key, now) {
            return (Decision::Allow, None);
        }
        if exempt {
            (Decision::Drop, None)
        } else {
            (Decision::Drop, Some(self.ban(key, now, BanReason::Flood)))
        }
    }

    fn count_failure(
        &mut self,
        now: u64,
        key: SourceKey,
        obs: &Observation<'_>,
        exempt: bool,
        events: &mut Vec<GuardEvent>,
    ) {
        let window = self.config.failure_window_ms;
        if let Some(tenant) = obs.tenant {
            let t = self.tenants.get_or_insert_with(tenant, || TenantCounters {
                failures: SlidingWindow::new(window),
                alerted_until: 0,
            });
            let failures = t.failures.add(now, 1);
            if failures >= self.config.tenant_failures && t.alerted_until <= now {
                t.alerted_until = now.saturating_add(window);
                events.push(SecurityEvent::TenantUnderAttack { tenant, failures });
            }
        }
        if let Some(user) = obs.user_name {
            let name = user_key(user);
            let u = self
                .users
                .get_or_insert_with(name.clone(), || UserCounters {
                    failures: SlidingWindow::new(window),
                    throttled_until: 0,
                });
            let failures = u.failures.add(now, 1);
            if failures >= self.config.user_failures && u.throttled_until <= now {
                u.throttled_until = now.saturating_add(self.config.user_throttle_ms);
                self.throttle_horizon = self.throttle_horizon.max(u.throttled_until);
                u.failures.clear();
                events.push(SecurityEvent::UserThrottled {
                    user: name,
                    until: u.throttled_until,
                });
            }
        }
        if exempt {
            return;
        }
        let counters = self
            .sources
            .get_or_insert_with(key, || new_source(&self.config));
        if counters.failures.add(now, 1) >= self.config.source_failures {
            counters.failures.clear();
            events.push(self.ban(key, now, BanReason::AuthFailures));
        }
    }

    /// Bans `source` now with the next escalation level (also the operator's manual ban).
    pub fn ban(&mut self, source: SourceKey, now: u64, reason: BanReason) -> GuardEvent {
        let level = match self.bans.peek(&source) {
            Some(prev) if prev.until.saturating_add(self.config.ban_history_ms) > now => {
                prev.level.saturating_add(1)
            }
            _ => 0,
        };
        let until = now.saturating_add(self.config.ban_length(level));
        self.bans.insert(
            source,
            BanRecord {
                since: now,
                until,
                level,
                reason,
                expiry_reported: false,
            },
        );
        SecurityEvent::SourceBanned {
            source,
            until,
            level,
            reason,
        }
    }

    /// Lifts a ban and forgets the source's history (the operator forgives it). Returns the
    /// audit event, or `None` when the source had no ban record.
    pub fn unban(&mut self, source: SourceKey, _now: u64) -> Option<GuardEvent> {
        self.sources.remove(&source);
        self.bans
            .remove(&source)
            .map(|_| SecurityEvent::SourceUnbanned {
                source,
                by: LiftedBy::Admin,
            })
    }

    /// User names throttled at `now`, with the end of their throttle (Unix ms), sorted by
    /// name.
    pub fn throttled_users(&self, now: u64) -> Vec<(String, u64)> {
        let mut list: Vec<(String, u64)> = self
            .users
            .iter()
            .filter(|(_, u)| u.throttled_until > now)
            .map(|(name, u)| (name.clone(), u.throttled_until))
            .collect();
        list.sort();
        list
    }

    /// Lifts a user-name throttle.
    pub fn unthrottle_user(&mut self, user: &str) -> bool {
        self.users.remove(&user_key(user)).is_some()
    }

    /// Active bans at `now`, longest-remaining first.
    pub fn ban_list(&self, now: u64) -> Vec<BanInfo> {
        let mut list: Vec<BanInfo> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(source, b)| BanInfo {
                source: *source,
                since: b.since,
                until: b.until,
                level: b.level,
                reason: b.reason,
            })
            .collect();
        list.sort_by(|a, b| b.until.cmp(&a.until).then(a.source.cmp(&b.source)));
        list
    }

    /// Housekeeping, to call every few seconds: reports bans that ran out (audit events)
    /// and forgets ban histories older than the history window.
    pub fn expire(&mut self, now: u64) -> Vec<GuardEvent> {
        let mut events = Vec::new();
        let history = self.config.ban_history_ms;
        self.bans
            .retain(|_, b| b.until.saturating_add(history) > now);
        let ended: Vec<SourceKey> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until <= now && !b.expiry_reported)
            .map(|(k, _)| *k)
            .collect();
        for source in ended {
            if let Some(b) = self.bans.peek_mut(&source) {
                b.expiry_reported = true;
            }
            events.push(SecurityEvent::SourceUnbanned {
                source,
                by: LiftedBy::Expired,
            });
        }
        events.sort_by_key(|e| match e {
            SecurityEvent::SourceUnbanned { source, .. } => Some(*source),
            _ => None,
        });
        events
    }

    /// Sizes and eviction counters.
    pub fn stats(&self) -> GuardStats {
        GuardStats {
            sources: self.sources.len(),
            bans: self.bans.len(),
            users: self.users.len(),
            tenants: self.tenants.len(),
            source_evictions: self.sources.evictions(),
            ban_evictions: self.bans.evictions(),
            user_evictions: self.users.evictions(),
        }
    }
}

fn new_source(config: &GuardConfig) -> SourceCounters {
    SourceCounters {
        failures: SlidingWindow::new(config.failure_window_ms),
        bucket: None,
    }
}

/// The map key for a user name: at most [`MAX_USER_NAME`] bytes (cut at a char boundary).
fn user_key(user: &str) -> String {
    let mut end = user.len().min(MAX_USER_NAME);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_owned()
}
