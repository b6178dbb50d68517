//! A map with a hard capacity that evicts its least recently used entry.
//!
//! Used for everything keyed by attacker-controlled values (source addresses, user names), so
//! a flood of spoofed sources cannot grow memory without bound: at capacity, each insert
//! evicts the entry touched longest ago (O(log n)) and counts the eviction.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// An LRU-capped map.
#[derive(Debug, Clone)]
pub struct BoundedMap<K, V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
    evictions: u64,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            evictions: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries evicted to stay within the capacity since creation.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Reads an entry without marking it used.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Changes an entry without marking it used.
    pub fn peek_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|(v, _)| v)
    }

    /// The entry for `key`, marked most recently used, created with `make` if absent
    /// (evicting the least recently used entry when full).
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.touch_or_make_room(&key);
        let tick = self.tick;
        &mut self.entries.entry(key).or_insert_with(|| (make(), tick)).0
    }

    /// Inserts or replaces an entry (marked most recently used).
    pub fn insert(&mut self, key: K, value: V) {
        self.touch_or_make_room(&key);
        let tick = self.tick;
        self.entries.insert(key, (value, tick));
    }

    /// Advances the clock and marks `key` used at the new tick: an existing entry moves in
    /// the recency order; for a new one, room is made (evicting the least recently used
    /// entry when full) and its order slot reserved. The caller then stores the entry.
    fn touch_or_make_room(&mut self, key: &K) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, used)) = self.entries.get_mut(key) {
            self.order.remove(used);
            *used = tick;
        } else if self.entries.len() >= self.capacity
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
            self.evictions += 1;
        }
        self.order.insert(tick, key.clone());
    }

    /// Removes an entry.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (v, used) = self.entries.remove(key)?;
        self.order.remove(&used);
        Some(v)
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let order = &mut self.order;
        self.entries.retain(|k, (v, used)| {
            let kept = keep(k, v);
            if !kept {
                order.remove(used);
            }
            kept
        });
    }

    /// Iterates over the entries in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, (v, _))| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut m = BoundedMap::new(2);
        m.insert(1, "a");
        m.insert(2, "b");
        let _ = m.get_or_insert_with(1, || "x"); // touch 1
        m.insert(3, "c");
        assert_eq!(m.len(), 2);
        assert_eq!(m.peek(&1), Some(&"a"));
        assert_eq!(m.peek(&2), None);
        assert_eq!(m.evictions(), 1);
        m.retain(|k, _| *k != 1);
        assert_eq!(m.len(), 1);
        m.insert(4, "d");
        m.insert(5, "e");
        assert_eq!(m.len(), 2);
        assert_eq!(m.remove(&5), Some("e"));
    }
}
