//! A generational table for the objects a layer keeps in its base (bufferevents,
//! listeners): handles are (index, generation) pairs, so a handle to a freed object gets an
//! error instead of reaching the object that reused its slot. Freed slots are reused (LIFO);
//! a slot whose generation would wrap is retired.

use std::io;

struct Entry<T> {
    gen: u32,
    value: Option<T>,
}

/// Objects by (index, generation).
pub(crate) struct Table<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Table<T> {
    /// Stores `value`, returning its (index, generation).
    pub(crate) fn insert(&mut self, value: T) -> (u32, u32) {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let e = &mut self.entries[i as usize];
            e.value = Some(value);
            return (i, e.gen);
        }
        // (A slot is a few hundred bytes per connection: grown by a quarter, not doubled.)
        crate::reactor::reserve_quarter(&mut self.entries);
        self.entries.push(Entry {
            gen: 0,
            value: Some(value),
        });
        ((self.entries.len() - 1) as u32, 0)
    }

    /// The object of a handle, if it is still the same one.
    pub(crate) fn get(&self, idx: u32, gen: u32) -> Option<&T> {
        let e = self.entries.get(idx as usize)?;
        if e.gen == gen {
            e.value.as_ref()
        } else {
            None
        }
    }

    /// The object of a handle, if it is still the same one.
    pub(crate) fn get_mut(&mut self, idx: u32, gen: u32) -> Option<&mut T> {
        let e = self.entries.get_mut(idx as usize)?;
        if e.gen == gen {
            e.value.as_mut()
        } else {
            None
        }
    }

    /// Removes the object of a handle (its slot's generation moves on: the handle, and
    /// every copy of it, goes stale).
    pub(crate) fn remove(&mut self, idx: u32, gen: u32) -> Option<T> {
        let e = self.entries.get_mut(idx as usize)?;
        if e.gen != gen {
            return None;
        }
        let v = e.value.take()?;
        self.len -= 1;
        // Otherwise retired: a wrapped generation would make an ancient handle valid again.
        if let Some(g) = e.gen.checked_add(1) {
            e.gen = g;
            self.free.push(idx);
        }
        Some(v)
    }

    /// Objects stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every stored object's handle.
    pub(crate) fn handles(&self) -> Vec<(u32, u32)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.value.is_some())
            .map(|(i, e)| (i as u32, e.gen))
            .collect()
    }
}

/// The error for a handle whose object is gone.
pub(crate) fn stale(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("stale {what} handle: it was freed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handles_miss_and_slots_are_reused() {
        let mut t = Table::default();
        let a = t.insert("a");
        assert_eq!(t.get(a.0, a.1), Some(&"a"));
        assert_eq!(t.remove(a.0, a.1), Some("a"));
        assert_eq!(t.get(a.0, a.1), None, "a removed object is not found");
        assert_eq!(t.remove(a.0, a.1), None);
        let b = t.insert("b");
        assert_eq!(b.0, a.0, "the slot is reused");
        assert_ne!(b.1, a.1, "with a new generation");
        assert_eq!(t.get(a.0, a.1), None, "the old handle stays stale");
        assert_eq!(t.get_mut(b.0, b.1).map(|s| *s), Some("b"));
        assert_eq!(t.len(), 1);
        assert_eq!(t.handles(), vec![b]);
    }

    #[test]
    fn a_slot_whose_generation_would_wrap_is_retired() {
        let mut t = Table::default();
        let a = t.insert(1);
        t.entries[a.0 as usize].gen = u32::MAX;
        assert_eq!(t.remove(a.0, u32::MAX), Some(1));
        let b = t.insert(2);
        assert_ne!(b.0, a.0, "a retired slot is not handed out again");
    }

    #[test]
    fn the_array_grows_by_a_quarter() {
        let mut t = Table::default();
        for i in 0..10_000 {
            t.insert(i);
        }
        let cap = t.entries.capacity();
        assert!(
            (10_000..=12_500).contains(&cap),
            "capacity {cap} for 10,000 slots"
        );
    }
}
