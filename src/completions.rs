//! Request ids and the results of finished requests: a slot table, not a hash map.
//!
//! Every non-blocking operation gets a slot for its lifetime. Its id is the slot's
//! index in the low 32 bits and the slot's generation (bumped each time the slot is
//! reused) in the high 32, so an id names one request only and a stale one is
//! recognized, not confused with the slot's next owner. Finishing, testing and taking
//! a result are an index and a comparison, where a hash map of ids costs a hash and a
//! probe for each.
//!
//! A slot moves `Pending -> Done -> (taken) free`, or, when its request handle is
//! dropped before the operation finishes, `Pending -> Orphan -> (finished) free`: the
//! result of an orphan is dropped as it arrives.

use rkyv::util::AlignedVec;

use crate::codec::PodVec;
use crate::envelope::Envelope;
use crate::error::Error;

/// A finished non-blocking operation, waiting for `wait`/`test` to collect it.
pub(crate) enum Done {
    Recv {
        env: Envelope,
        data: RecvData,
    },
    Sent(Option<PodVec>),
    /// A receive cancelled before it matched a message (`MPI_Cancel`), with its
    /// buffer back for a receive of plain data.
    Cancelled(Option<PodVec>),
    Failed(Error),
}

pub(crate) enum RecvData {
    Pod(PodVec),
    Object(AlignedVec),
}

enum State {
    Free,
    Pending,
    /// The handle was dropped; the operation goes on and its result is discarded.
    Orphan,
    Done(Done),
}

struct Slot {
    generation: u32,
    state: State,
}

/// The slot table.
#[derive(Default)]
pub(crate) struct Completions {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// The slot index and generation an id names (the MPI backend's request table uses
/// the same scheme).
pub(crate) fn split(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

/// The id of slot `idx` in its generation `generation`.
pub(crate) fn slot_id(idx: usize, generation: u32) -> u64 {
    u64::from(generation) << 32 | idx as u64
}

impl Completions {
    /// Opens a slot for a new request and returns its id (never 0).
    #[inline]
    pub(crate) fn open(&mut self) -> u64 {
        let idx = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: State::Free,
                });
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[idx];
        // Generation 0 is never handed out, so no id is 0.
        s.generation = s.generation.wrapping_add(1).max(1);
        // A free slot holds no result: forgetting it skips the drop of one.
        std::mem::forget(std::mem::replace(&mut s.state, State::Pending));
        slot_id(idx, s.generation)
    }

    /// The slot of `id` if `id` names its current owner.
    fn slot(&mut self, id: u64) -> Option<(usize, &mut Slot)> {
        let (idx, generation) = split(id);
        let s = self.slots.get_mut(idx)?;
        (s.generation == generation && !matches!(s.state, State::Free)).then_some((idx, s))
    }

    fn release(&mut self, idx: usize) {
        self.slots[idx].state = State::Free;
        self.free.push(idx as u32);
    }

    /// Records the result of request `id` (dropped at once if its handle is gone).
    pub(crate) fn finish(&mut self, id: u64, done: Done) {
        let Some((idx, s)) = self.slot(id) else {
            debug_assert!(false, "finish of unknown request {id:#x}");
            return;
        };
        match s.state {
            State::Pending => s.state = State::Done(done),
            State::Orphan => self.release(idx),
            State::Done(_) | State::Free => debug_assert!(false, "request {id:#x} finished twice"),
        }
    }

    /// Whether request `id`'s operation is still under way (its handle held or
    /// dropped): not finished, and not closed or taken.
    pub(crate) fn is_under_way(&self, id: u64) -> bool {
        let (idx, generation) = split(id);
        self.slots.get(idx).is_some_and(|s| {
            s.generation == generation && matches!(s.state, State::Pending | State::Orphan)
        })
    }

    /// Whether request `id` has a result waiting.
    pub(crate) fn is_done(&self, id: u64) -> bool {
        let (idx, generation) = split(id);
        self.slots
            .get(idx)
            .is_some_and(|s| s.generation == generation && matches!(s.state, State::Done(_)))
    }

    /// The result of request `id`, if it has one, left in place (`MPI_Request_get_status`).
    pub(crate) fn peek(&self, id: u64) -> Option<&Done> {
        let (idx, generation) = split(id);
        match self.slots.get(idx) {
            Some(Slot {
                generation: g,
                state: State::Done(d),
            }) if *g == generation => Some(d),
            _ => None,
        }
    }

    /// Takes the result of request `id` if it has one, freeing its slot.
    #[inline]
    pub(crate) fn take(&mut self, id: u64) -> Option<Done> {
        let (idx, s) = self.slot(id)?;
        if !matches!(s.state, State::Done(_)) {
            return None;
        }
        let State::Done(d) = std::mem::replace(&mut s.state, State::Free) else {
            unreachable!("checked above")
        };
        self.free.push(idx as u32);
        Some(d)
    }

    /// Frees the slot of pending request `id`, whose waiter takes its result straight
    /// (a posted receive filled in its wait): no state to drop, nothing to look up.
    #[inline]
    pub(crate) fn close_pending(&mut self, id: u64) {
        let (idx, generation) = split(id);
        let s = &mut self.slots[idx];
        debug_assert!(s.generation == generation && matches!(s.state, State::Pending));
        // A pending slot holds no result: forgetting it skips the drop of one.
        std::mem::forget(std::mem::replace(&mut s.state, State::Free));
        self.free.push(idx as u32);
    }

    /// Frees the slot of a request that will never finish (a cancelled receive).
    pub(crate) fn close(&mut self, id: u64) {
        if let Some((idx, _)) = self.slot(id) {
            self.release(idx);
        }
    }

    /// The handle of request `id` was dropped. Returns true if the request had
    /// finished (its result is dropped now and the slot freed); otherwise the slot
    /// becomes an orphan, freed when the operation finishes, unless the caller cancels
    /// the operation and calls [`close`](Self::close).
    pub(crate) fn orphan(&mut self, id: u64) -> bool {
        let Some((idx, s)) = self.slot(id) else {
            return true;
        };
        match s.state {
            State::Done(_) => {
                self.release(idx);
                true
            }
            _ => {
                s.state = State::Orphan;
                false
            }
        }
    }

    /// Requests whose slots are in use (for tests).
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> Done {
        Done::Sent(None)
    }

    #[test]
    fn a_result_is_taken_once_and_its_slot_reused_under_a_new_id() {
        let mut c = Completions::default();
        let a = c.open();
        assert_ne!(a, 0);
        assert!(!c.is_done(a));
        assert!(c.take(a).is_none(), "nothing before it finishes");
        c.finish(a, sent());
        assert!(c.is_done(a));
        assert!(
            matches!(c.peek(a), Some(Done::Sent(None))),
            "peeking leaves it"
        );
        assert!(matches!(c.take(a), Some(Done::Sent(None))));
        assert!(c.peek(a).is_none());
        assert!(c.take(a).is_none(), "taken once");
        let b = c.open();
        assert_eq!(b & 0xffff_ffff, a & 0xffff_ffff, "the slot is reused");
        assert_ne!(a, b, "under another id");
        assert!(!c.is_done(a) && !c.is_done(b));
        c.finish(b, sent());
        assert!(
            !c.is_done(a),
            "the old id does not see the new owner's result"
        );
        assert!(c.take(a).is_none());
        assert!(c.take(b).is_some());
        assert_eq!(c.in_use(), 0);
    }

    #[test]
    fn orphans_are_freed_when_they_finish_and_closed_slots_at_once() {
        let mut c = Completions::default();
        let (a, b, d) = (c.open(), c.open(), c.open());
        assert!(!c.orphan(a), "pending: becomes an orphan");
        assert_eq!(c.in_use(), 3);
        c.finish(a, sent());
        assert_eq!(
            c.in_use(),
            2,
            "the orphan's result is dropped, its slot freed"
        );
        assert!(!c.is_done(a));
        c.finish(b, sent());
        assert!(c.orphan(b), "finished: dropped now");
        assert_eq!(c.in_use(), 1);
        c.close(d);
        assert_eq!(c.in_use(), 0);
        // Unknown and stale ids are harmless.
        assert!(c.orphan(d));
        c.close(d);
        assert!(c.take(0).is_none() && !c.is_done(u64::MAX));
    }

    #[test]
    fn many_requests_in_flight_keep_their_own_results() {
        let mut c = Completions::default();
        for round in 0..3 {
            let ids: Vec<u64> = (0..100).map(|_| c.open()).collect();
            for (i, &id) in ids.iter().enumerate().rev() {
                let v = crate::codec::PodVec::new(vec![i as u32 + round]);
                c.finish(id, Done::Sent(Some(v)));
            }
            for (i, &id) in ids.iter().enumerate() {
                let Some(Done::Sent(Some(v))) = c.take(id) else {
                    panic!("request {i} lost its result")
                };
                assert_eq!(v.into_vec::<u32>().ok(), Some(vec![i as u32 + round]));
            }
            assert_eq!(c.in_use(), 0);
        }
        assert_eq!(c.slots.len(), 100, "slots are reused, not grown");
    }
}
