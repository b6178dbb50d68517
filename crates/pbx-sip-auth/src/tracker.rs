//! Nonce-count replay protection (RFC 7616 §3.3: the server remembers the highest `nc` seen
//! per nonce and rejects anything not greater).
//!
//! The tracker is bounded: it holds at most `capacity` nonces, each until it expires. When it
//! is full the oldest entry is evicted and its issue time becomes a watermark: a nonce issued
//! at or before the watermark that the tracker does not know is treated as a replay (the
//! client gets `stale=true` and a fresh nonce), so eviction never reopens a replay window.
//! Entries are only added after a response verified, so a flood of forged or wrong credentials
//! cannot fill the table.
//!
//! Size it above the number of nonces in use during one nonce lifetime (about one per
//! registering device per lifetime): while it evicts, nonces issued in the watermark's second
//! are refused too, so clients may see a few `stale=true` round trips. [`NonceCountTracker::evictions`]
//! counts evictions for telemetry.

use std::collections::{HashMap, VecDeque};

use crate::nonce::NonceInfo;

/// Remembers the highest nonce count per nonce. Kept by the caller (one per registrar
/// process, behind a mutex if shared) and passed to [`crate::Verifier::verify`].
#[derive(Debug, Clone)]
pub struct NonceCountTracker {
    entries: HashMap<[u8; 16], Entry>,
    order: VecDeque<[u8; 16]>,
    capacity: usize,
    watermark: Option<u64>,
    evictions: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    highest: u32,
    /// The retransmission key of the request that used `highest` (0: none).
    key: u64,
    issued_at: u64,
    expires_at: u64,
}

/// The nonce count was not greater than one already accepted for the nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replayed;

impl NonceCountTracker {
    /// A tracker holding at most `capacity` nonces (at least 1). About 80 bytes per entry.
    pub fn new(capacity: usize) -> NonceCountTracker {
        let capacity = capacity.max(1);
        NonceCountTracker {
            entries: HashMap::with_capacity(capacity.min(4096)),
            order: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
            watermark: None,
            evictions: 0,
        }
    }

    /// Number of nonces tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no nonce is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many live entries were evicted because the tracker was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The highest count accepted for a nonce, if tracked.
    pub fn highest(&self, nonce: &NonceInfo) -> Option<u32> {
        self.entries.get(&nonce.tag).map(|entry| entry.highest)
    }

    /// Drops entries whose nonce expired (at the front of the queue; entries behind a
    /// younger one go when they reach the front or on eviction).
    pub fn purge_expired(&mut self, now: u64) {
        while let Some(tag) = self.order.front().copied() {
            match self.entries.get(&tag) {
                Some(entry) if entry.expires_at > now => break,
                _ => {
                    self.entries.remove(&tag);
                    self.order.pop_front();
                }
            }
        }
    }

    /// Accepts `nc` for `nonce` if it is greater than every count accepted before, and records
    /// it; or if it equals the highest and `retransmission` names the same request that used
    /// it (a retransmission of that request, answered again by a stateless server).
    pub(crate) fn observe(
        &mut self,
        nonce: &NonceInfo,
        nc: u32,
        now: u64,
        retransmission: Option<u64>,
    ) -> Result<(), Replayed> {
        // 0 is "no key"; a real key that hashes to 0 just loses the retransmission pass.
        let key = retransmission.unwrap_or(0);
        if let Some(entry) = self.entries.get_mut(&nonce.tag) {
            if nc == entry.highest && key != 0 && key == entry.key {
                return Ok(());
            }
            if nc <= entry.highest {
                return Err(Replayed);
            }
            entry.highest = nc;
            entry.key = key;
            return Ok(());
        }
        if nc == 0 || self.watermark.is_some_and(|mark| nonce.issued_at <= mark) {
            return Err(Replayed);
        }
        self.purge_expired(now);
        while self.entries.len() >= self.capacity {
            let Some(tag) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.entries.remove(&tag)
                && evicted.expires_at > now
            {
                self.evictions += 1;
                let mark = self.watermark.unwrap_or(0).max(evicted.issued_at);
                self.watermark = Some(mark);
            }
        }
        self.entries.insert(
            nonce.tag,
            Entry {
                highest: nc,
                key,
                issued_at: nonce.issued_at,
                expires_at: nonce.expires_at,
            },
        );
        self.order.push_back(nonce.tag);
        Ok(())
    }
}
