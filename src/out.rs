//! Write-once places for results: a function given a [`Slot`] writes its result
//! where the caller keeps it (the next element of a vector, a local), so that a
//! result is not built in one place and copied to another.
//!
//! Why: a result returned by value is written field by field and then copied whole
//! into the caller's vector, and the copy's wide loads cannot take their data from
//! the narrow stores still in flight (a failed store-to-load forward); the profile
//! and figures are in docs/performance.md, "Results made where they are kept".
//!
//! Soundness: [`Filled`] can only be made by [`Slot::fill`], and its lifetime is the
//! slot's, invariant and chosen by the caller for each call (`for<'a>`), so a
//! function that returns `Ok(Filled<'a>)` has written the slot it was given, not
//! another.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// A place a `T` must be written to, once.
pub(crate) struct Slot<'a, T> {
    place: &'a mut MaybeUninit<T>,
    brand: PhantomData<fn(&'a ()) -> &'a ()>,
}

/// The proof that the slot of lifetime `'a` was written.
pub(crate) struct Filled<'a> {
    brand: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a, T> Slot<'a, T> {
    /// Writes `v` into the slot.
    #[inline]
    pub(crate) fn fill(self, v: T) -> Filled<'a> {
        self.place.write(v);
        Filled { brand: PhantomData }
    }
}

/// Pushes onto `v` the value `f` writes into its slot; nothing when `f` fails.
#[inline]
pub(crate) fn push_with<T, E>(
    v: &mut Vec<T>,
    f: impl for<'a> FnOnce(Slot<'a, T>) -> Result<Filled<'a>, E>,
) -> Result<(), E> {
    v.reserve(1);
    let len = v.len();
    let place = &mut v.spare_capacity_mut()[0];
    f(Slot {
        place,
        brand: PhantomData,
    })?;
    // SAFETY: `f` returned a `Filled` of the slot's own lifetime, which only
    // `Slot::fill` of that slot makes (see the module's soundness), so the element at
    // `len`, within the capacity reserved above, is initialized.
    unsafe { v.set_len(len + 1) };
    Ok(())
}

/// The value `f` writes into its slot.
#[inline]
pub(crate) fn make_with<T, E>(
    f: impl for<'a> FnOnce(Slot<'a, T>) -> Result<Filled<'a>, E>,
) -> Result<T, E> {
    let mut place = MaybeUninit::uninit();
    f(Slot {
        place: &mut place,
        brand: PhantomData,
    })?;
    // SAFETY: as in `push_with`: `f` wrote the slot.
    Ok(unsafe { place.assume_init() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_value_is_the_one_written_and_a_failure_pushes_nothing() {
        let mut v = vec![String::from("a")];
        push_with(&mut v, |s| Ok::<_, ()>(s.fill("b".into()))).unwrap();
        assert_eq!(push_with(&mut v, |_| Err::<Filled<'_>, _>(7)), Err(7));
        assert_eq!(v, ["a", "b"]);
        assert_eq!(
            make_with(|s| Ok::<_, ()>(s.fill(vec![1, 2]))),
            Ok(vec![1, 2])
        );
    }
}
