//! The bindings of one AOR and the RFC 3261 §10.3 step 6-7 update rules, applied to a
//! working copy so a failed request changes nothing.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use pbx_domain::BindingRecord;
use pbx_sip::Uri;

use crate::request::ContactRequest;
use crate::types::FlowInfo;
use crate::uri_eq::uri_equivalent;

/// A timer's slot in the registrar's queue.
pub(crate) type TimerSlot = (Instant, u64);

/// One binding in memory.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Unique for the registrar's life; survives refreshes (the key may change).
    pub(crate) id: u64,
    pub(crate) record: BindingRecord,
    pub(crate) contact: Uri,
    pub(crate) flow: FlowInfo,
    pub(crate) expires_at: Instant,
    pub(crate) refreshed_at: Instant,
    pub(crate) behind_nat: bool,
    /// The expiry timer (set when committed).
    pub(crate) timer: Option<TimerSlot>,
    /// Retransmission key of the REGISTER that last set this binding (0 after a restore).
    pub(crate) request_key: u64,
    /// The expiry (Unix ms) the store holds for this binding, as last written by an effect.
    pub(crate) stored_expires_at_ms: i64,
}

impl Entry {
    /// Whole seconds left, rounded up.
    pub(crate) fn remaining_secs(&self, now: Instant) -> u32 {
        let left = self.expires_at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// Whether a Contact of a REGISTER names this binding: same instance (and reg-id) under
    /// RFC 5626/5627, equivalent URI otherwise (RFC 3261 §10.3 step 7).
    pub(crate) fn matches(&self, contact: &ContactRequest) -> bool {
        match (&contact.instance, &self.record.instance_id) {
            (Some(instance), Some(mine)) => {
                instance == mine && contact.reg_id == self.record.reg_id
            }
            (None, None) => uri_equivalent(&contact.uri, &self.contact),
            _ => false,
        }
    }
}

/// The result of applying a REGISTER's Contacts to an AOR.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The AOR's bindings afterwards.
    pub(crate) entries: Vec<Entry>,
    /// Bindings removed by the request (`expires=0`), before the change.
    pub(crate) unregistered: Vec<Entry>,
    /// Bindings evicted to respect the contact limit.
    pub(crate) evicted: Vec<Entry>,
}

/// Why a plan cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanError {
    /// Same Call-ID and a CSeq not above the binding's (RFC 3261 §10.3 step 7).
    OutOfOrder,
    /// Same Call-ID, CSeq and retransmission key as a binding's: the request that made it,
    /// again (a UDP retransmission; REGISTER is answered statelessly, so no transaction
    /// absorbs it). The same CSeq with another key is out of order.
    Retransmission,
    /// The request alone names more bindings than the user may have.
    TooManyContacts,
}

/// What a new or refreshed binding gets.
pub(crate) struct Grant<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) cseq: u32,
    pub(crate) now: Instant,
    pub(crate) max_contacts: usize,
    /// Builds the record for a Contact granted `secs` seconds.
    pub(crate) make: &'a dyn Fn(&ContactRequest, u32) -> (BindingRecord, bool),
    pub(crate) flow: FlowInfo,
    pub(crate) next_id: &'a mut u64,
    /// Retransmission key of the request (see `Entry::request_key`).
    pub(crate) request_key: u64,
}

/// Applies `contacts` (each with its granted seconds, 0 = remove) to `current`.
pub(crate) fn plan(
    current: &[Entry],
    contacts: &[(ContactRequest, u32)],
    grant: &mut Grant<'_>,
) -> Result<Plan, PlanError> {
    // Borrowed until kept: a binding the request replaces (a refresh, the common case) is
    // never copied; only the ones kept as they are become owned at the end.
    let mut entries: Vec<Cow<'_, Entry>> = current.iter().map(Cow::Borrowed).collect();
    let mut touched: Vec<u64> = Vec::new();
    let mut unregistered = Vec::new();
    for (contact, secs) in contacts {
        let found = entries.iter().position(|entry| entry.matches(contact));
        if let Some(index) = found {
            let entry = &entries[index];
            if entry.record.call_id == grant.call_id
                && grant.cseq == entry.record.cseq
                && grant.request_key != 0
                && grant.request_key == entry.request_key
                && !touched.contains(&entry.id)
            {
                return Err(PlanError::Retransmission);
            }
            let ordered = entry.record.call_id != grant.call_id || grant.cseq > entry.record.cseq;
            if !ordered && !touched.contains(&entry.id) {
                return Err(PlanError::OutOfOrder);
            }
        }
        match (found, *secs) {
            (Some(index), 0) => {
                let removed = entries.remove(index);
                touched.retain(|id| *id != removed.id);
                if current.iter().any(|old| old.id == removed.id) {
                    unregistered.push(removed.into_owned());
                }
            }
            (None, 0) => {}
            (found, secs) => {
                let (record, behind_nat) = (grant.make)(contact, secs);
                let id = match found {
                    Some(index) => entries.remove(index).id,
                    None => {
                        *grant.next_id += 1;
                        *grant.next_id
                    }
                };
                touched.push(id);
                entries.push(Cow::Owned(Entry {
                    id,
                    record,
                    contact: contact.uri.clone(),
                    flow: grant.flow,
                    expires_at: grant.now + Duration::from_secs(u64::from(secs)),
                    refreshed_at: grant.now,
                    behind_nat,
                    timer: None,
                    request_key: grant.request_key,
                    // Set when the change is committed (persisted or written back).
                    stored_expires_at_ms: 0,
                }));
            }
        }
    }
    if touched.len() > grant.max_contacts {
        return Err(PlanError::TooManyContacts);
    }
    let mut evicted = Vec::new();
    while entries.len() > grant.max_contacts {
        let oldest = entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| !touched.contains(&entry.id))
            .min_by_key(|(_, entry)| (entry.refreshed_at, entry.id))
            .map(|(index, _)| index);
        let Some(index) = oldest else { break };
        evicted.push(entries.remove(index).into_owned());
    }
    Ok(Plan {
        entries: entries.into_iter().map(Cow::into_owned).collect(),
        unregistered,
        evicted,
    })
}
