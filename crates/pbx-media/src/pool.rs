//! The pool of RTP/RTCP port pairs (even RTP port, RTCP on RTP + 1).
//!
//! Freed pairs go to the back of the queue, so a port is reused as late as possible and stray
//! packets of an ended call rarely reach the next call on the same port. A pair that cannot be
//! bound (another program holds it) is moved to the back and the next one is tried.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

#[derive(Debug)]
pub(crate) struct PortPool {
    free: VecDeque<u16>,
    total: usize,
}

impl PortPool {
    /// Every even port `p` in `range` with `p + 1` also in `range`.
    pub(crate) fn new(range: &RangeInclusive<u16>) -> Self {
        let start = *range.start();
        let first = start.saturating_add(start % 2);
        let end = *range.end();
        let free: VecDeque<u16> = (u32::from(first)..u32::from(end))
            .step_by(2)
            .filter_map(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .collect();
        let total = free.len();
        Self { free, total }
    }

    pub(crate) fn pop(&mut self) -> Option<u16> {
        self.free.pop_front()
    }

    pub(crate) fn push(&mut self, rtp_port: u16) {
        self.free.push_back(rtp_port);
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
        let pool = PortPool::new(&(30001..=30010));
        assert_eq!(
            pool.free.iter().copied().collect::<Vec<_>>(),
            vec![30002, 30004, 30006, 30008]
        );
        let pool = PortPool::new(&(30000..=30001));
        assert_eq!(pool.total(), 1);
        let pool = PortPool::new(&(30000..=30000));
        assert_eq!(pool.total(), 0);
        let pool = PortPool::new(&(65534..=65535));
        assert_eq!(pool.total(), 1);
    }

    #[test]
    fn freed_pairs_are_reused_last() {
        let mut pool = PortPool::new(&(40000..=40005));
        let a = pool.pop();
        assert_eq!(a, Some(40000));
        pool.push(40000);
        assert_eq!(pool.pop(), Some(40002));
        assert_eq!(pool.pop(), Some(40004));
        assert_eq!(pool.pop(), Some(40000));
        assert_eq!(pool.pop(), None);
        assert_eq!(pool.available(), 0);
    }
}
