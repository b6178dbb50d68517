//! A relay thread's pool of RTP/RTCP port pairs (even RTP port, RTCP on RTP + 1).
//!
//! Freed pairs go to the back of the queue, so a port is reused as late as possible and stray
//! packets of an ended call rarely reach the next call on the same port. A pair that cannot be
//! bound (another program holds it) is moved to the back and the next one is tried.
//!
//! A pair's sockets are bound the first time it is used on an address and then stay open,
//! watched by the relay thread that owns the pair, for the life of the relay: a call costs no
//! `socket`/`bind`/`close` and no epoll registration. The pool remembers which pairs are bound
//! on which of the relay's addresses (`bound`); the sockets themselves live in the thread.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

/// The relay's addresses: `bind_ip` and the alternate family's.
pub(crate) const ADDRESSES: usize = 2;
/// Address index of `RelayConfig::bind_ip`.
pub(crate) const PRIMARY: usize = 0;
/// Address index of `RelayConfig::alternate`.
pub(crate) const ALTERNATE: usize = 1;

#[derive(Debug)]
pub(crate) struct PortPool {
    free: VecDeque<u16>,
    total: usize,
    /// The lowest RTP port of the range (pair index = (port - first) / 2).
    first: u16,
    /// Per pair index: whether the owning thread holds the pair's sockets on each address.
    bound: Vec<[bool; ADDRESSES]>,
}

impl PortPool {
    /// Every even port `p` in `range` with `p + 1` also in `range`, taking one pair in
    /// `workers` starting with the `index`-th (so the threads' pools partition the range).
    pub(crate) fn new(range: &RangeInclusive<u16>, index: usize, workers: usize) -> Self {
        let start = *range.start();
        let first = start.saturating_add(start % 2);
        let end = *range.end();
        let free: VecDeque<u16> = (u32::from(first)..u32::from(end))
            .step_by(2)
            .filter_map(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .enumerate()
            .filter(|(i, _)| i % workers.max(1) == index)
            .map(|(_, p)| p)
            .collect();
        let total = free.len();
        let pairs = usize::from(end.saturating_sub(first)) / 2 + 1;
        Self {
            free,
            total,
            first,
            bound: vec![[false; ADDRESSES]; pairs],
        }
    }

    pub(crate) fn pop(&mut self) -> Option<u16> {
        self.free.pop_front()
    }

    pub(crate) fn push(&mut self, rtp_port: u16) {
        self.free.push_back(rtp_port);
    }

    /// Whether the thread holds `rtp_port`'s sockets on address `address`.
    pub(crate) fn is_bound(&self, rtp_port: u16, address: usize) -> bool {
        self.flag(rtp_port, address).is_some_and(|bound| *bound)
    }

    /// Records that the thread now holds (or no longer holds) the pair's sockets.
    pub(crate) fn set_bound(&mut self, rtp_port: u16, address: usize, bound: bool) {
        if let Some(flag) = self.flag_mut(rtp_port, address) {
            *flag = bound;
        }
    }

    fn flag(&self, rtp_port: u16, address: usize) -> Option<&bool> {
        let index = usize::from(rtp_port.checked_sub(self.first)?) / 2;
        self.bound.get(index)?.get(address)
    }

    fn flag_mut(&mut self, rtp_port: u16, address: usize) -> Option<&mut bool> {
        let index = usize::from(rtp_port.checked_sub(self.first)?) / 2;
        self.bound.get_mut(index)?.get_mut(address)
    }

    pub(crate) fn available(&self) -> usize {
        self.free.len()
    }

    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_start_even_and_fit_the_range() {
        let pool = PortPool::new(&(30001..=30010), 0, 1);
        assert_eq!(
            pool.free.iter().copied().collect::<Vec<_>>(),
            vec![30002, 30004, 30006, 30008]
        );
        let pool = PortPool::new(&(30000..=30001), 0, 1);
        assert_eq!(pool.total(), 1);
        let pool = PortPool::new(&(30000..=30000), 0, 1);
        assert_eq!(pool.total(), 0);
        let pool = PortPool::new(&(65534..=65535), 0, 1);
        assert_eq!(pool.total(), 1);
    }

    #[test]
    fn threads_share_the_range_without_overlap() {
        let a = PortPool::new(&(30000..=30011), 0, 2);
        let b = PortPool::new(&(30000..=30011), 1, 2);
        assert_eq!(
            a.free.iter().copied().collect::<Vec<_>>(),
            vec![30000, 30004, 30008]
        );
        assert_eq!(
            b.free.iter().copied().collect::<Vec<_>>(),
            vec![30002, 30006, 30010]
        );
    }

    #[test]
    fn freed_pairs_are_reused_last() {
        let mut pool = PortPool::new(&(40000..=40005), 0, 1);
        let a = pool.pop();
        assert_eq!(a, Some(40000));
        pool.push(40000);
        assert_eq!(pool.pop(), Some(40002));
        assert_eq!(pool.pop(), Some(40004));
        assert_eq!(pool.pop(), Some(40000));
        assert_eq!(pool.pop(), None);
        assert_eq!(pool.available(), 0);
    }

    #[test]
    fn bound_flags_are_per_pair_and_address() {
        let mut pool = PortPool::new(&(40000..=40005), 0, 1);
        assert!(!pool.is_bound(40002, 0));
        pool.set_bound(40002, 0, true);
        assert!(pool.is_bound(40002, 0));
        assert!(!pool.is_bound(40002, 1));
        assert!(!pool.is_bound(40000, 0));
        pool.set_bound(40002, 0, false);
        assert!(!pool.is_bound(40002, 0));
        // Outside the range: never bound, and setting is ignored.
        pool.set_bound(39998, 0, true);
        assert!(!pool.is_bound(39998, 0));
        pool.set_bound(50000, 1, true);
        assert!(!pool.is_bound(50000, 1));
    }
}
