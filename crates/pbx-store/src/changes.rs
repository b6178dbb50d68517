//! What a configuration write changed, so followers patch their in-memory state instead of
//! reloading every row.
//!
//! Every committed configuration write records one or more [`ConfigChange`]s under the next
//! store generation ([`Store::generation`]). The store keeps the last
//! [`CHANGE_LOG_CAPACITY`] of them; [`Store::changes_since`] tells a follower that is at
//! generation `from` what changed up to `to`, or `None` when it cannot say (a change made
//! elsewhere whose content is unknown, or a follower so far behind that the log has moved
//! on), in which case the follower reloads in full. Changes made by other nodes arrive with
//! their content in the PostgreSQL notification payload ([`encode_payload`]).

use std::collections::VecDeque;
use std::fmt::Write as _;

use pbx_domain::{NumberId, TenantId, UserId};

/// How many recorded changes the store keeps for followers that are behind.
pub const CHANGE_LOG_CAPACITY: usize = 4096;

/// The longest notification payload we send (PostgreSQL's limit is 8,000 bytes); a longer
/// list of changes is announced as [`ConfigChange::Unknown`].
const MAX_PAYLOAD_BYTES: usize = 7_000;

/// One thing a configuration write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConfigChange {
    /// A tenant row or its tenant-wide whitelist (created, changed or deleted; a deleted
    /// tenant takes its users, devices, credentials and whitelists with it).
    Tenant(TenantId),
    /// A user of a tenant or anything that hangs off it: the user row, its devices, their
    /// credentials, the user's whitelist entries.
    User(TenantId, UserId),
    /// A phone number's assignment (tenant and user).
    Number(NumberId),
    /// Trunks, routes or a tenant's call settings (nothing the directory holds).
    Routing,
    /// Something, but it is not known what (a change made by another process): reload all.
    Unknown,
}

impl ConfigChange {
    fn encode(self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = match self {
            Self::Tenant(tenant) => write!(out, "t:{tenant}"),
            Self::User(tenant, user) => write!(out, "u:{tenant}:{user}"),
            Self::Number(number) => write!(out, "n:{number}"),
            Self::Routing => write!(out, "r"),
            Self::Unknown => write!(out, "*"),
        };
    }

    fn decode(text: &str) -> Option<Self> {
        let mut fields = text.split(':');
        let change = match (fields.next()?, fields.next(), fields.next()) {
            ("t", Some(tenant), None) => Self::Tenant(tenant.parse().ok()?),
            ("u", Some(tenant), Some(user)) => Self::User(tenant.parse().ok()?, user.parse().ok()?),
            ("n", Some(number), None) => Self::Number(number.parse().ok()?),
            ("r", None, None) => Self::Routing,
            ("*", None, None) => Self::Unknown,
            _ => return None,
        };
        fields.next().is_none().then_some(change)
    }
}

/// The notification payload for `changes` written by store instance `instance`:
/// `<instance> <change> <change> ...`.
pub(crate) fn encode_payload(instance: &str, changes: &[ConfigChange]) -> String {
    let mut payload = String::from(instance);
    for change in changes {
        payload.push(' ');
        change.encode(&mut payload);
        if payload.len() > MAX_PAYLOAD_BYTES {
            payload.truncate(instance.len());
            payload.push_str(" *");
            break;
        }
    }
    payload
}

/// Splits a payload into the sending instance and its changes. A payload without changes
/// (an older node) or with one that does not parse gives [`ConfigChange::Unknown`].
pub(crate) fn decode_payload(payload: &str) -> (&str, Vec<ConfigChange>) {
    let mut words = payload.split(' ');
    let instance = words.next().unwrap_or_default();
    let changes: Option<Vec<ConfigChange>> = words.map(ConfigChange::decode).collect();
    match changes {
        Some(changes) if !changes.is_empty() => (instance, changes),
        _ => (instance, vec![ConfigChange::Unknown]),
    }
}

/// The recent changes, by the generation that recorded them.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    /// The current generation.
    generation: u64,
    entries: VecDeque<(u64, ConfigChange)>,
    /// Changes of generations up to this one have been dropped from `entries`.
    forgotten: u64,
}

impl ChangeLog {
    /// An empty log at generation 0.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records `changes` under the next generation and returns it.
    pub(crate) fn record(&mut self, changes: impl IntoIterator<Item = ConfigChange>) -> u64 {
        self.generation += 1;
        let generation = self.generation;
        let mut recorded = false;
        for change in changes {
            self.entries.push_back((generation, change));
            recorded = true;
        }
        if !recorded {
            self.entries.push_back((generation, ConfigChange::Unknown));
        }
        while self.entries.len() > CHANGE_LOG_CAPACITY {
            if let Some((dropped, _)) = self.entries.pop_front() {
                self.forgotten = self.forgotten.max(dropped);
            }
        }
        generation
    }

    /// The distinct changes recorded after generation `from` up to and including `to`,
    /// or `None` if the log cannot tell (see the module doc).
    pub(crate) fn since(&self, from: u64, to: u64) -> Option<Vec<ConfigChange>> {
        if from < self.forgotten {
            return None;
        }
        let mut changes: Vec<ConfigChange> = self
            .entries
            .iter()
            .skip_while(|(generation, _)| *generation <= from)
            .take_while(|(generation, _)| *generation <= to)
            .map(|(_, change)| *change)
            .collect();
        if changes.contains(&ConfigChange::Unknown) {
            return None;
        }
        changes.sort_unstable();
        changes.dedup();
        Some(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(seed: u8) -> TenantId {
        TenantId::from_parts(1, &[seed; 10])
    }

    #[test]
    fn since_deduplicates_and_bounds_by_generation() {
        let mut log = ChangeLog::new();
        let (a, b) = (tenant(1), tenant(2));
        let user = UserId::from_parts(1, &[3; 10]);
        assert_eq!(log.record([ConfigChange::Tenant(a)]), 1);
        assert_eq!(log.record([ConfigChange::User(a, user)]), 2);
        assert_eq!(
            log.record([ConfigChange::User(a, user), ConfigChange::Tenant(b)]),
            3
        );
        assert_eq!(log.since(3, 3), Some(vec![]));
        let mut expected = vec![ConfigChange::Tenant(b), ConfigChange::User(a, user)];
        expected.sort_unstable();
        assert_eq!(log.since(1, 3), Some(expected));
        assert_eq!(log.since(0, 1), Some(vec![ConfigChange::Tenant(a)]));
        // An unknown change makes the answer unknown from then on.
        log.record([ConfigChange::Unknown]);
        assert_eq!(log.since(3, 4), None);
        assert_eq!(log.since(0, 3).map(|c| c.len()), Some(3));
        assert_eq!(
            log.record([]),
            5,
            "a write without details counts as unknown"
        );
        assert_eq!(log.since(4, 5), None);
    }

    #[test]
    fn a_follower_behind_the_log_is_told_to_reload() {
        let mut log = ChangeLog::new();
        for _ in 0..CHANGE_LOG_CAPACITY + 10 {
            log.record([ConfigChange::Routing]);
        }
        assert_eq!(log.since(0, 20), None);
        assert_eq!(log.since(20, 30), Some(vec![ConfigChange::Routing]));
    }

    #[test]
    fn payloads_round_trip_and_fall_back_to_unknown() {
        let (a, user) = (tenant(1), UserId::from_parts(1, &[3; 10]));
        let number = NumberId::from_parts(1, &[4; 10]);
        let changes = vec![
            ConfigChange::Tenant(a),
            ConfigChange::User(a, user),
            ConfigChange::Number(number),
            ConfigChange::Routing,
        ];
        let payload = encode_payload("abcd", &changes);
        assert_eq!(decode_payload(&payload), ("abcd", changes));
        assert_eq!(
            decode_payload("abcd"),
            ("abcd", vec![ConfigChange::Unknown])
        );
        assert_eq!(
            decode_payload("abcd t:nonsense"),
            ("abcd", vec![ConfigChange::Unknown])
        );
        let many = vec![ConfigChange::Tenant(a); 1_000];
        let payload = encode_payload("abcd", &many);
        assert!(payload.len() < 8_000);
        assert_eq!(
            decode_payload(&payload),
            ("abcd", vec![ConfigChange::Unknown])
        );
    }
}
