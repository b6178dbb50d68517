//! Snapshot and restore of the guard (bans and counters survive a restart).

use pbx_domain::TenantId;
use serde::{Deserialize, Serialize};

use super::{BanRecord, Guard, SourceCounters, TenantCounters, UserCounters};
use crate::event::BanReason;
use crate::source::SourceKey;

/// One active ban, as listed by the management API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    /// The banned source.
    pub source: SourceKey,
    /// Start of the ban, Unix ms.
    pub since: u64,
    /// End of the ban, Unix ms.
    pub until: u64,
    /// Escalation level (0 = first ban).
    pub level: u32,
    /// Why.
    pub reason: BanReason,
}

/// Everything the guard knows, in a serde-serialisable form (flood buckets excluded: they
/// refill within seconds anyway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    pub(crate) bans: Vec<(SourceKey, BanRecord)>,
    pub(crate) sources: Vec<(SourceKey, SourceCounters)>,
    pub(crate) users: Vec<(String, UserCounters)>,
    pub(crate) tenants: Vec<(TenantId, TenantCounters)>,
}

impl GuardState {
    /// Number of ban records (active bans and histories) in the snapshot.
    pub fn ban_records(&self) -> usize {
        self.bans.len()
    }
}

impl Guard {
    /// A snapshot to persist.
    pub fn export(&self) -> GuardState {
        GuardState {
            bans: self.bans.iter().map(|(k, v)| (*k, v.clone())).collect(),
            sources: self.sources.iter().map(|(k, v)| (*k, v.clone())).collect(),
            users: self
                .users
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            tenants: self.tenants.iter().map(|(k, v)| (*k, v.clone())).collect(),
        }
    }

    /// Replaces the guard's memory with a snapshot, dropping ban histories that are older
    /// than the history window at `now`. Capacities still apply.
    pub fn import(&mut self, state: GuardState, now: u64) {
        let fresh = Guard::new(self.config.clone());
        *self = fresh;
        let history = self.config.ban_history_ms;
        for (k, v) in state.bans {
            if v.until.saturating_add(history) > now {
                self.bans.insert(k, v);
            }
        }
        for (k, v) in state.sources {
            self.sources.insert(k, v);
        }
        for (k, v) in state.users {
            self.users.insert(k, v);
        }
        for (k, v) in state.tenants {
            self.tenants.insert(k, v);
        }
    }
}
