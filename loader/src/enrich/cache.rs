//! The lookup cache of the enrichers: what was looked up lately, shared by every object of a
//! process.
//!
//! Two generations of hash maps instead of a least-recently-used list: a hit only reads (an
//! LRU list moves its node, writing three entries scattered in memory, on every hit), and when
//! the newer generation is full the older one is dropped. What was used since the last turn
//! moves up and stays, so the cache holds between half and all of its capacity of the most
//! recent keys.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub struct Recent<K, V> {
    generations: Mutex<(Map<K, V>, Map<K, V>)>,
    /// Entries of one generation.
    half: usize,
}

impl<K, V> std::fmt::Debug for Recent<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recent").field("half", &self.half).finish()
    }
}

impl<K: Hash + Eq, V: Clone> Recent<K, V> {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            generations: Mutex::new((Map::default(), Map::default())),
            half: (capacity / 2).max(1),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut generations = self.generations.lock().ok()?;
        let (newer, older) = &mut *generations;
        if let Some(value) = newer.get(key) {
            return Some(value.clone());
        }
        let (key, value) = older.remove_entry(key)?;
        let found = value.clone();
        self.insert(newer, older, key, value);
        Some(found)
    }

    pub fn put(&self, key: K, value: V) {
        if let Ok(mut generations) = self.generations.lock() {
            let (newer, older) = &mut *generations;
            self.insert(newer, older, key, value);
        }
    }

    fn insert(&self, newer: &mut Map<K, V>, older: &mut Map<K, V>, key: K, value: V) {
        if newer.len() >= self.half {
            *older = std::mem::take(newer);
            newer.reserve(self.half);
        }
        newer.insert(key, value);
    }

    pub fn len(&self) -> usize {
        self.generations.lock().map_or(0, |g| g.0.len() + g.1.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_was_used_since_the_last_turn() {
        let cache = Recent::new(4);
        cache.put(1, "one");
        cache.put(2, "two");
        // The newer generation is full: 1 and 2 become the older one.
        cache.put(3, "three");
        // A hit in the older generation moves 1 up (and turns again: 3 and 1 are kept).
        assert_eq!(cache.get(&1), Some("one"));
        cache.put(4, "four");
        assert_eq!(cache.get(&2), None, "unused since the turn: dropped");
        assert_eq!(cache.get(&1), Some("one"));
        assert_eq!(cache.get(&4), Some("four"));
        assert!(cache.len() <= 4);
    }

    #[test]
    fn borrowed_keys_find_owned_ones() {
        let cache: Recent<String, usize> = Recent::new(8);
        cache.put("curl/8.0".to_owned(), 1);
        assert_eq!(cache.get("curl/8.0"), Some(1));
        assert_eq!(cache.get("wget"), None);
    }
}
