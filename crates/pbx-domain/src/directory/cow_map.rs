//! A hash map whose clone is cheap and whose writes copy only a small part: the directory
//! snapshot is cloned and patched after every configuration change, so that must not cost
//! a copy of every user on the platform.
//!
//! The map is split into [`SHARDS`] ordinary `HashMap`s by a hash of the key, each behind an
//! `Arc`. Cloning the map clones one `Arc`; the first write to a shard of a clone copies
//! that shard only (`Arc::make_mut`), about `len / SHARDS` entries. Reads cost one extra
//! hash to pick the shard.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Arc;

/// Shards per map. 64 keeps a write to a 100,000-entry map at ~1,600 copied entries while
/// an empty map stays a few hundred bytes.
pub(crate) const SHARDS: usize = 64;

/// A copy-on-write sharded hash map (see the module doc).
#[derive(Clone)]
pub(crate) struct CowMap<K, V> {
    /// Picks the shard; kept with the map so every clone agrees.
    hasher: RandomState,
    shards: Arc<[Arc<HashMap<K, V>>; SHARDS]>,
    len: usize,
}

impl<K, V> CowMap<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// The value for `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].get(key)
    }

    /// Inserts or replaces; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard(&key);
        let previous = self.shard_mut(shard).insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key);
        // Only copy the shard when the key is there.
        if !self.shards[shard].contains_key(key) {
            return None;
        }
        let removed = self.shard_mut(shard).remove(key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Removes `key` only while it maps to a value for which `owned` holds (an index entry
    /// that another row has taken over in the meantime is left alone).
    pub(crate) fn remove_if<Q>(&mut self, key: &Q, owned: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.get(key).is_some_and(owned) {
            self.remove(key)
        } else {
            None
        }
    }

    /// The value for `key`, inserting `V::default()` first if it is missing.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let shard = self.shard(&key);
        if !self.shards[shard].contains_key(&key) {
            self.len += 1;
        }
        self.shard_mut(shard).entry(key).or_default()
    }

    /// A mutable reference to the value for `key` (copies its shard if shared).
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key);
        if !self.shards[shard].contains_key(key) {
            return None;
        }
        self.shard_mut(shard).get_mut(key)
    }

    /// Number of entries.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    /// Whether both maps hold the same entries.
    pub(crate) fn same_entries(&self, other: &Self) -> bool
    where
        V: PartialEq,
    {
        self.len == other.len
            && self
                .iter()
                .all(|(key, value)| other.get(key) == Some(value))
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The remainder is below SHARDS, so the conversion cannot fail.
        usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0)
    }

    fn shard_mut(&mut self, shard: usize) -> &mut HashMap<K, V> {
        Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[shard])
    }
}

impl<K, V> Default for CowMap<K, V> {
    fn default() -> Self {
        let empty = Arc::new(HashMap::new());
        Self {
            hasher: RandomState::new(),
            shards: Arc::new(std::array::from_fn(|_| Arc::clone(&empty))),
            len: 0,
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for CowMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.shards.iter().flat_map(|shard| shard.iter()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_and_clones_are_independent() {
        let mut map: CowMap<String, u32> = CowMap::default();
        assert_eq!(map.len(), 0);
        for index in 0..1_000_u32 {
            assert_eq!(map.insert(index.to_string(), index), None);
        }
        assert_eq!(map.len(), 1_000);
        assert_eq!(map.insert("7".to_owned(), 70), Some(7));
        assert_eq!(map.len(), 1_000);
        let before = map.clone();
        assert_eq!(map.remove("8"), Some(8));
        assert_eq!(map.remove("8"), None);
        assert_eq!(map.remove_if("9", |value| *value == 0), None);
        assert_eq!(map.remove_if("9", |value| *value == 9), Some(9));
        *map.get_mut("10").unwrap() = 100;
        *map.get_or_default("new".to_owned()) += 1;
        assert_eq!(map.len(), 999);
        assert_eq!(map.get("10"), Some(&100));
        assert_eq!(map.get("new"), Some(&1));
        assert_eq!(map.get("8"), None);
        assert_eq!(map.iter().count(), 999);
        // The clone taken before the writes still sees the old values.
        assert_eq!(before.len(), 1_000);
        assert_eq!(before.get("7"), Some(&70));
        assert_eq!(before.get("8"), Some(&8));
        assert_eq!(before.get("10"), Some(&10));
        assert_eq!(before.get("new"), None);
    }

    #[test]
    fn a_write_to_a_clone_copies_one_shard() {
        let mut map: CowMap<u32, u32> = CowMap::default();
        for index in 0..6_400 {
            map.insert(index, index);
        }
        let mut copy = map.clone();
        copy.insert(1, 2);
        let shared = map
            .shards
            .iter()
            .zip(copy.shards.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, SHARDS - 1);
    }
}
