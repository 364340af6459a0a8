//! Objects and plain-data slices to and from bytes.
//!
//! - Objects are rkyv 0.8 archives. An object message is the archive followed by the
//!   sender's type name and its length (`u16`, little endian), so that a receive of a
//!   different type can name both types. The envelope carries a 64-bit fingerprint
//!   of the type name (`type_id`), checked before anything is decoded.
//! - Received archives land in a 16-byte aligned buffer ([`AlignedVec`]) and are
//!   validated with bytecheck before they are read, unless the caller asks for
//!   unchecked access (an `unsafe` call).
//! - Slices of [`bytemuck::Pod`] values are their bytes; nothing else is needed.
//!
//! The fingerprint is of `std::any::type_name`, which is the same for the same type in
//! the same build: sender and receiver are expected to be built from the same source,
//! as with MPI.

use std::marker::PhantomData;

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::ser::writer::Buffer;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{Error, Result};

/// Types that can be sent as objects: anything rkyv can serialize
/// (`#[derive(rkyv::Archive, rkyv::Serialize)]`, and the std types rkyv supports).
pub trait Encode:
    for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

impl<T> Encode for T where
    T: ?Sized + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

/// Types whose archive can be built in place in a loan
/// ([`Communicator::loan_object`](crate::Communicator::loan_object)): those of
/// [`Encode`] that rkyv can also write into a fixed buffer (every derived type and
/// rkyv's std types are both).
pub trait EncodeLoan:
    Encode + for<'a, 'b> Serialize<HighSerializer<Buffer<'b>, ArenaHandle<'a>, rancor::Error>>
{
}

impl<T> EncodeLoan for T where
    T: Encode + for<'a, 'b> Serialize<HighSerializer<Buffer<'b>, ArenaHandle<'a>, rancor::Error>>
{
}

/// Types that can be received as objects: their archive can be validated and
/// deserialized (`#[derive(rkyv::Archive, rkyv::Deserialize)]`).
pub trait Decode:
    Archive<
        Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
                      + Deserialize<Self, HighDeserializer<rancor::Error>>,
    > + Sized
{
}

impl<T> Decode for T
where
    T: Archive + Sized,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, HighDeserializer<rancor::Error>>,
{
}

/// Types whose archive can be validated, for zero-copy access with
/// [`Communicator::recv_archived`](crate::Communicator::recv_archived).
pub trait Access: Archive<Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>> {}

impl<T> Access for T
where
    T: Archive + ?Sized,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>,
{
}

/// The type name shmpi reports for `T`.
pub(crate) fn type_name<T: ?Sized>() -> &'static str {
    std::any::type_name::<T>()
}

/// The 64-bit fingerprint of `T` carried in envelopes (never 0: 0 means raw bytes).
pub(crate) fn type_id<T: ?Sized>() -> u64 {
    // FNV-1a.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in type_name::<T>().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

/// Serializes `value` into an object message (archive + type-name trailer).
pub(crate) fn encode<T: Encode>(value: &T) -> Result<AlignedVec> {
    // One allocation for small objects: from an empty vector, rkyv would grow it a few
    // times and the type-name trailer often once more.
    let cap = (size_of_val(value) + 64 + type_name::<T>().len()).next_power_of_two();
    let mut bytes =
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, AlignedVec::with_capacity(cap))
            .map_err(|e| Error::Serialize {
                type_name: type_name::<T>(),
                reason: e.to_string(),
            })?;
    push_type_trailer(&mut bytes, type_name::<T>(), u16::MAX as usize);
    Ok(bytes)
}

/// Appends the type-name trailer of an object message (the name, cut to `max` bytes,
/// and its length) to `bytes`.
pub(crate) fn push_type_trailer(bytes: &mut AlignedVec, name: &str, max: usize) {
    let name = &name.as_bytes()[..name.len().min(max)];
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&(name.len() as u16).to_le_bytes());
}

/// Splits an object message into its archive and the sender's type name. `None` when
/// the trailer is malformed.
pub(crate) fn split(msg: &[u8]) -> Option<(&[u8], &str)> {
    let n = msg.len().checked_sub(2)?;
    let name_len = u16::from_le_bytes([msg[n], msg[n + 1]]) as usize;
    let start = n.checked_sub(name_len)?;
    let name = std::str::from_utf8(&msg[start..n]).ok()?;
    Some((&msg[..start], name))
}

/// The archive part of an object message, without checking the type name (which is
/// only read for error messages, so its UTF-8 check stays off the receive path).
pub(crate) fn archive_part(msg: &[u8]) -> Option<&[u8]> {
    let n = msg.len().checked_sub(2)?;
    let name_len = u16::from_le_bytes([msg[n], msg[n + 1]]) as usize;
    Some(&msg[..n.checked_sub(name_len)?])
}

/// The type name the sender of `msg` used, for error messages.
pub(crate) fn sent_type_name(msg: &[u8], type_id: u64) -> String {
    if type_id == 0 {
        return "raw bytes (sent with send_slice)".into();
    }
    if let Some(name) = crate::comm::loan::slice_ticket_name(type_id) {
        return name.into();
    }
    match split(msg) {
        Some((_, name)) => name.to_string(),
        None => format!("unknown type (fingerprint {type_id:#x})"),
    }
}

/// Validates and deserializes an object message.
pub(crate) fn decode<T: Decode>(msg: &AlignedVec, source: i32, tag: i32) -> Result<T> {
    let archive = validated_archive::<T>(msg, source, tag)?;
    rkyv::api::high::deserialize::<T, rancor::Error>(archive).map_err(|e| Error::InvalidArchive {
        source_rank: source,
        tag,
        type_name: type_name::<T>(),
        reason: e.to_string(),
    })
}

fn validated_archive<T: Access + ?Sized>(
    msg: &AlignedVec,
    source: i32,
    tag: i32,
) -> Result<&T::Archived> {
    let invalid = |reason: String| Error::InvalidArchive {
        source_rank: source,
        tag,
        type_name: type_name::<T>(),
        reason,
    };
    let archive =
        archive_part(msg).ok_or_else(|| invalid("the message has no type trailer".into()))?;
    rkyv::api::high::access::<T::Archived, rancor::Error>(archive)
        .map_err(|e| invalid(e.to_string()))
}

/// A received object, accessed in place: the archive is validated once and then read
/// without deserializing. Dereferences to `T::Archived` (for a `struct Data { a: u32 }`
/// that is `ArchivedData`, with fields of archived types such as `u32_le`).
pub struct Archived<T: Archive + ?Sized> {
    msg: AlignedVec,
    archive_len: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T: Access + ?Sized> Archived<T> {
    /// Validates `msg` as an archive of `T`.
    pub(crate) fn new(msg: AlignedVec, source: i32, tag: i32) -> Result<Self> {
        validated_archive::<T>(&msg, source, tag)?;
        let archive_len = archive_part(&msg).map_or(0, <[u8]>::len);
        Ok(Archived {
            msg,
            archive_len,
            _type: PhantomData,
        })
    }
}

impl<T: Archive + ?Sized> Archived<T> {
    /// Wraps `msg` without validating it.
    ///
    /// # Safety
    /// `msg` must hold a valid archive of `T` followed by the type trailer.
    pub(crate) unsafe fn new_unchecked(msg: AlignedVec) -> Result<Self> {
        let archive_len = archive_part(&msg)
            .map(<[u8]>::len)
            .ok_or_else(|| Error::Corrupted("object message without a type trailer".into()))?;
        Ok(Archived {
            msg,
            archive_len,
            _type: PhantomData,
        })
    }

    /// The archive's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.msg[..self.archive_len]
    }
}

impl<T: Archive + ?Sized> std::ops::Deref for Archived<T> {
    type Target = T::Archived;

    fn deref(&self) -> &T::Archived {
        // SAFETY: validated in `new` (or promised by the caller of `new_unchecked`); the
        // buffer is 16-byte aligned, owned and never mutated afterwards.
        unsafe { rkyv::api::access_unchecked::<T::Archived>(&self.msg[..self.archive_len]) }
    }
}

impl<T: Archive + ?Sized> std::fmt::Debug for Archived<T>
where
    T::Archived: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A buffer of plain data the runtime holds while a non-blocking operation runs: the
/// user's `Vec<T>` with its element type erased, seen as bytes, handed back at
/// completion. Unlike a `Box<dyn ...>` of the `Vec`, it costs no allocation of its own
/// (the non-blocking calls' bookkeeping showed up as a third of their instructions,
/// malloc and free included).
pub(crate) struct PodVec {
    /// The vector's buffer, length and capacity (in elements of the erased type).
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    cap: usize,
    /// `len * size_of::<T>()`.
    bytes: usize,
    /// The boxed owner of the bytes (`owned`); null for a vector or a borrowed view.
    owner: *mut (),
    /// What the erased type is and how to drop it: one pointer, not a 16-byte type id
    /// and a function, so that a posted receive's queue entry (which holds a `PodVec`)
    /// stays within the 128 bytes the compiler moves without calling `memcpy`.
    kind: &'static PodKind,
}

/// The erased type of a [`PodVec`].
pub(crate) struct PodKind {
    ty: fn() -> std::any::TypeId,
    /// Rebuilds and drops the `Vec<T>` (or the owner).
    drop: unsafe fn(&mut PodVec),
}

/// The [`PodKind`]s, one per type (as associated constants, promoted to statics).
struct KindOf<T>(std::marker::PhantomData<T>);

impl<T: 'static> KindOf<T> {
    const VEC: &'static PodKind = &PodKind {
        ty: std::any::TypeId::of::<T>,
        drop: drop_vec::<T>,
    };
    const OWNER: &'static PodKind = &PodKind {
        ty: std::any::TypeId::of::<T>,
        drop: drop_owner::<T>,
    };
}

const BORROWED: &PodKind = &PodKind {
    ty: std::any::TypeId::of::<Borrowed>,
    drop: drop_nothing,
};

const SHARED: &PodKind = &PodKind {
    ty: std::any::TypeId::of::<Shared>,
    drop: drop_nothing,
};

impl PodVec {
    /// Whether the erased type is `T`.
    #[inline]
    fn is<T: 'static>(&self) -> bool {
        (self.kind.ty)() == std::any::TypeId::of::<T>()
    }
}

impl PodVec {
    pub(crate) fn new<T: bytemuck::Pod>(v: Vec<T>) -> Self {
        let mut v = std::mem::ManuallyDrop::new(v);
        PodVec {
            // SAFETY: a Vec's pointer is never null (dangling but non-null when empty).
            ptr: unsafe { std::ptr::NonNull::new_unchecked(v.as_mut_ptr().cast::<u8>()) },
            len: v.len(),
            cap: v.capacity(),
            bytes: std::mem::size_of_val(&v[..]),
            owner: std::ptr::null_mut(),
            kind: KindOf::<T>::VEC,
        }
    }

    /// Any owner of plain data (`Box<[T]>`, `Arc<[T]>`, a Python buffer ...), boxed so
    /// that the bytes it lends stay where they are while the runtime holds it; `data`
    /// gives them (read-only, or writable for a receive), once, from the boxed owner.
    pub(crate) fn owned<B: 'static>(
        owner: B,
        data: impl FnOnce(&mut B) -> (std::ptr::NonNull<u8>, usize),
    ) -> Self {
        let owner = Box::into_raw(Box::new(owner));
        // SAFETY: `owner` is the live box just made; no other reference to it exists.
        let (ptr, bytes) = data(unsafe { &mut *owner });
        PodVec {
            ptr,
            len: 0,
            cap: 0,
            bytes,
            owner: owner.cast(),
            kind: KindOf::<B>::OWNER,
        }
    }

    /// A view of memory the runtime does not own: the buffer of a scoped request
    /// (`crate::scope`). It never turns back into a `Vec` and frees nothing.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads of `bytes` bytes (and for writes, if the engine
    /// is given it as a receive buffer) for as long as the engine holds the result or
    /// any part of the operation: the scope guarantees it by settling each of its
    /// requests (`Engine::settle`) before the borrow it was made from ends.
    pub(crate) unsafe fn borrowed(ptr: std::ptr::NonNull<u8>, bytes: usize) -> Self {
        PodVec {
            ptr,
            len: 0,
            cap: 0,
            bytes,
            owner: std::ptr::null_mut(),
            kind: BORROWED,
        }
    }

    /// A view of cells the program may read while the receive is pending (the buffer
    /// of [`Scope::irecv_cells`](crate::Scope::irecv_cells)): the engine writes it only
    /// from this thread, inside its calls, as a borrowed view.
    ///
    /// # Safety
    ///
    /// As [`borrowed`](Self::borrowed), for writes.
    pub(crate) unsafe fn shared(ptr: std::ptr::NonNull<u8>, bytes: usize) -> Self {
        PodVec {
            kind: SHARED,
            // SAFETY: the caller's contract, the same.
            ..unsafe { Self::borrowed(ptr, bytes) }
        }
    }

    /// Whether this is a view of memory it does not own (`borrowed`, `shared`):
    /// letting go of it frees nothing.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))] // the MPI backend's sends ask
    pub(crate) fn is_view(&self) -> bool {
        self.is::<Borrowed>() || self.is::<Shared>()
    }

    /// Whether this is a `shared` view, which no other process may write into (the MPI
    /// backend receives into a vector of its own and copies).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn is_shared(&self) -> bool {
        self.is::<Shared>()
    }

    /// The start of the buffer.
    pub(crate) fn ptr(&self) -> std::ptr::NonNull<u8> {
        self.ptr
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` holds `len` initialized `T: Pod`, i.e. `bytes` initialized bytes,
        // owned by `self` (or, for `borrowed`, valid by its contract).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.bytes) }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and any bytes are a valid `T: Pod`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.bytes) }
    }

    /// The vector back if it is a `Vec<T>`, else `self` again.
    pub(crate) fn into_vec<T: bytemuck::Pod>(self) -> std::result::Result<Vec<T>, Self> {
        // The kind `new::<T>` gave is the usual answer, known without the indirect call
        // of the type id (a kind may exist more than once, so a mismatch asks that).
        let mine = std::ptr::eq(self.kind, KindOf::<T>::VEC);
        if !mine && (!self.owner.is_null() || !self.is::<T>()) {
            return Err(self);
        }
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: the parts of a `Vec<T>` (checked by the type id), taken apart in `new`
        // and not given back before (`self` is consumed and will not drop them).
        Ok(unsafe { Vec::from_raw_parts(me.ptr.as_ptr().cast::<T>(), me.len, me.cap) })
    }
}

impl PodVec {
    /// The owner back if it is a `B` made by `owned`, else `self` again.
    pub(crate) fn into_owner<B: 'static>(self) -> std::result::Result<B, Self> {
        if self.owner.is_null() || !self.is::<B>() {
            return Err(self);
        }
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: the box made by `owned::<B>` (checked by the type id and the owner
        // pointer), not given back before (`self` is consumed and will not drop it).
        Ok(*unsafe { Box::from_raw(me.owner.cast::<B>()) })
    }
}

/// # Safety
/// `p` must have been made by `PodVec::owned::<B>` and not be used afterwards.
unsafe fn drop_owner<B>(p: &mut PodVec) {
    // SAFETY: the box made by `owned::<B>` (caller's contract).
    drop(unsafe { Box::from_raw(p.owner.cast::<B>()) });
}

/// The element type of a borrowed `PodVec`, private so that `into_vec` never matches it.
struct Borrowed;

/// The element type of a shared `PodVec`, likewise.
struct Shared;

/// # Safety
/// None: a borrowed buffer is freed by its owner.
unsafe fn drop_nothing(_: &mut PodVec) {}

/// # Safety
/// `p` must have been made by `PodVec::new::<T>` and not be used afterwards.
unsafe fn drop_vec<T>(p: &mut PodVec) {
    // SAFETY: the parts of a `Vec<T>` (caller's contract).
    drop(unsafe { Vec::from_raw_parts(p.ptr.as_ptr().cast::<T>(), p.len, p.cap) });
}

impl Drop for PodVec {
    fn drop(&mut self) {
        // SAFETY: made by `new`, `owned` or `borrowed` with the matching kind; this is
        // its last use.
        unsafe { (self.kind.drop)(self) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_vecs_give_back_the_vector_of_their_own_type_only() {
        let mut p = PodVec::new(vec![1u32, 2, 3]);
        assert_eq!(p.bytes().len(), 12);
        p.bytes_mut()[0] = 9;
        let p = match p.into_vec::<u16>() {
            Err(p) => p,
            Ok(_) => panic!("a Vec<u32> came back as a Vec<u16>"),
        };
        assert_eq!(p.into_vec::<u32>().ok(), Some(vec![9, 2, 3]));
        // Dropped without being given back: freed (Miri or a leak checker would see).
        drop(PodVec::new(vec![0.5f64; 1000]));
        drop(PodVec::new(Vec::<u8>::new()));
    }

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
    struct Data {
        a: u32,
        b: f64,
        name: String,
    }

    #[test]
    fn objects_round_trip_with_their_type_name() {
        let d = Data {
            a: 7,
            b: 2.5,
            name: "x".into(),
        };
        let msg = encode(&d).unwrap();
        assert_eq!(sent_type_name(&msg, type_id::<Data>()), type_name::<Data>());
        assert_eq!(decode::<Data>(&msg, 0, 1).unwrap(), d);
        let view = Archived::<Data>::new(msg, 0, 1).unwrap();
        assert_eq!(view.a, 7);
        assert_eq!(view.name, "x");
    }

    #[test]
    fn fingerprints_differ_between_types_and_are_never_zero() {
        assert_ne!(type_id::<Data>(), type_id::<u32>());
        assert_ne!(type_id::<Vec<f64>>(), type_id::<Vec<f32>>());
        assert_ne!(type_id::<()>(), 0);
    }

    #[test]
    fn garbage_archives_are_rejected_not_misread() {
        let d = Data {
            a: 1,
            b: 2.0,
            name: "hello world, a longer string".into(),
        };
        let good = encode(&d).unwrap();
        let (archive_len, trailer) = {
            let (a, _) = split(&good).unwrap();
            (a.len(), good[a.len()..].to_vec())
        };
        let mut rng = 0x1234_5678_u64;
        let mut rejected = 0;
        for _ in 0..2000 {
            let mut bad = AlignedVec::<16>::new();
            bad.extend_from_slice(&good[..archive_len]);
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng as usize) % archive_len;
                bad[i] = (rng >> 32) as u8;
            }
            bad.extend_from_slice(&trailer);
            match decode::<Data>(&bad, 0, 0) {
                Ok(_) => {}
                Err(Error::InvalidArchive { .. }) => rejected += 1,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert!(rejected > 0);
        let mut short = AlignedVec::<16>::new();
        short.extend_from_slice(&[1]);
        assert!(matches!(
            decode::<Data>(&short, 0, 0),
            Err(Error::InvalidArchive { .. })
        ));
    }
}
