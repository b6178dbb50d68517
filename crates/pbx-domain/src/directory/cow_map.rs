//! A hash map whose clone is cheap and whose writes copy only a small part: the directory
//! snapshot is cloned and patched after every configuration change, so that must not cost
//! a copy of every user on the platform.
//!
//! The map is split into [`SHARDS`] hash tables by a hash of the key, each behind an `Arc`.
//! Cloning the map clones one `Arc`; the first write to a shard of a clone copies that shard
//! only (`Arc::make_mut`), about `len / SHARDS` entries. The key is hashed once per
//! operation: middle bits of the hash pick the shard, and the shard's table (a
//! `hashbrown::HashTable`, which takes the hash from its caller) uses the same hash for its
//! bucket (low bits) and tag (top bits). Keys are configuration (credential names, domains,
//! numbers), never inserted from the network, so a fast seeded hash (foldhash) is enough.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

/// Shards per map. 64 keeps a write to a 100,000-entry map at ~1,600 copied entries while
/// an empty map stays a few hundred bytes.
pub(crate) const SHARDS: usize = 64;

/// Bits of the hash that pick the shard: clear of the table's bucket index (low bits, up to
/// 2^40 buckets) and of its 7-bit tag (top bits).
const SHARD_SHIFT: u32 = 40;

/// One shard: entries with their keys, hashed by the map.
type Shard<K, V> = Arc<HashTable<(K, V)>>;

/// A copy-on-write sharded hash map (see the module doc).
#[derive(Clone)]
pub(crate) struct CowMap<K, V> {
    /// Hashes keys; kept with the map so every clone agrees.
    hasher: RandomState,
    shards: Arc<[Shard<K, V>; SHARDS]>,
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
        let hash = self.hasher.hash_one(key);
        self.shards[shard(hash)]
            .find(hash, |(k, _)| k.borrow() == key)
            .map(|(_, value)| value)
    }

    /// Inserts or replaces; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        let hasher = self.hasher.clone();
        let previous = match self.shard_mut(shard(hash)).entry(
            hash,
            |(k, _)| *k == key,
            |(k, _)| hasher.hash_one(k),
        ) {
            Entry::Occupied(mut entry) => Some(std::mem::replace(&mut entry.get_mut().1, value)),
            Entry::Vacant(entry) => {
                entry.insert((key, value));
                None
            }
        };
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
        let hash = self.hasher.hash_one(key);
        let shard = shard(hash);
        // Only copy the shard when the key is there.
        self.shards[shard].find(hash, |(k, _)| k.borrow() == key)?;
        let removed = self
            .shard_mut(shard)
            .find_entry(hash, |(k, _)| k.borrow() == key)
            .ok()
            .map(|entry| entry.remove().0.1);
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
        let hash = self.hasher.hash_one(&key);
        let shard = shard(hash);
        if self.shards[shard].find(hash, |(k, _)| *k == key).is_none() {
            self.len += 1;
        }
        let hasher = self.hasher.clone();
        let entry = self
            .shard_mut(shard)
            .entry(hash, |(k, _)| *k == key, |(k, _)| hasher.hash_one(k))
            .or_insert_with(|| (key, V::default()));
        &mut entry.into_mut().1
    }

    /// A mutable reference to the value for `key` (copies its shard if shared).
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let shard = shard(hash);
        self.shards[shard].find(hash, |(k, _)| k.borrow() == key)?;
        self.shard_mut(shard)
            .find_mut(hash, |(k, _)| k.borrow() == key)
            .map(|(_, value)| value)
    }

    /// Number of entries.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter().map(|(key, value)| (key, value)))
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

    fn shard_mut(&mut self, shard: usize) -> &mut HashTable<(K, V)> {
        Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[shard])
    }
}

/// The shard a hash falls in.
fn shard(hash: u64) -> usize {
    // Masked below SHARDS, so the conversion cannot fail.
    usize::try_from((hash >> SHARD_SHIFT) % SHARDS as u64).unwrap_or(0)
}

impl<K, V> Default for CowMap<K, V> {
    fn default() -> Self {
        let empty = Arc::new(HashTable::new());
        Self {
            hasher: RandomState::default(),
            shards: Arc::new(std::array::from_fn(|_| Arc::clone(&empty))),
            len: 0,
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for CowMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.shards
                    .iter()
                    .flat_map(|shard| shard.iter().map(|(key, value)| (key, value))),
            )
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

    #[test]
    fn keys_spread_over_every_shard() {
        let mut map: CowMap<String, u32> = CowMap::default();
        for index in 0..6_400_u32 {
            map.insert(format!("user{index}"), index);
        }
        let sizes: Vec<usize> = map.shards.iter().map(|shard| shard.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 6_400);
        // 100 per shard on average; a shard below 40 or above 200 means the shard bits are
        // not independent of the key.
        assert!(sizes.iter().all(|&n| (40..=200).contains(&n)), "{sizes:?}");
        for index in 0..6_400_u32 {
            assert_eq!(map.get(format!("user{index}").as_str()), Some(&index));
        }
    }
}
