//! `LastPair`: what the extension worked out for a pair of Python objects the last
//! time, found again by their identity.
//!
//! Programs pass the same objects call after call (mpi4py's OSU demos the same spec
//! list: its count and datatype; a reduction its op and datatype), and working out
//! what they mean reads attributes and parses strings that cost more than the rest of
//! a small call. Both objects are held, so neither address can become another
//! object's; a cache is only for values that never change for the same objects.

use std::cell::RefCell;

use pyo3::prelude::*;

/// The last pair of objects and their value (a `thread_local!`, one per kind).
pub(crate) struct LastPair<V: Copy>(RefCell<Option<Entry<V>>>);

struct Entry<V> {
    a: Py<PyAny>,
    b: Py<PyAny>,
    value: V,
}

impl<V: Copy> LastPair<V> {
    pub(crate) const fn new() -> Self {
        LastPair(RefCell::new(None))
    }

    /// The value of `(a, b)` if they are the last pair.
    pub(crate) fn get(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> Option<V> {
        match &*self.0.borrow() {
            Some(e) if e.a.is(a) && e.b.is(b) => Some(e.value),
            _ => None,
        }
    }

    /// Makes `(a, b)` the last pair, with `v`.
    pub(crate) fn set(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, v: V) {
        let old = self.0.replace(Some(Entry {
            a: a.clone().unbind(),
            b: b.clone().unbind(),
            value: v,
        }));
        // Dropped outside the borrow: a decref may run Python code, which may call in.
        drop(old);
    }
}
