//! Collectives on slices of plain data (mpi4py's uppercase `Bcast`, `Allreduce` ...;
//! rsmpi's `broadcast_into`, `all_reduce_into` ...): one copy into shared memory by
//! each contributor, one copy (or reduction) out of it by each reader.
//!
//! Buffer lengths are checked locally (an error naming both lengths) and across ranks
//! (the element count, element size, root and op travel with every call; a rank that
//! sees another's differ returns an error naming both calls), each error of the class
//! `Error`'s docs give (a count, a root, an op ...).
//!
//! The local checks (a root out of range, a buffer of the wrong length, an unusable
//! element type or op, malformed `counts`/`displs`) are made before the call starts
//! (`Communicator::args`): a rank that fails one returns its error after making, in
//! the call's place, a call that the others find different from theirs, so they fail
//! in this call too, naming it (when every rank failed its checks, the calls match and
//! the communicator stays usable). What a rank finds wrong part-way (another rank's
//! counts in the v-forms) fails every member that waits for it.

use bytemuck::Pod;

use super::op::ReduceOp;
use super::{ANY_COUNT, Call, Coll, OP_NONE, Sig, typed};
use crate::comm::{Communicator, Rank};
use crate::error::{Error, ErrorClass, Result};
use crate::shmcoll::{INLINE_BYTES, INLINE_WORDS};

/// Whether a reduction of `bytes` per rank on `n` ranks reads every contribution
/// (one step) rather than using the reduce-scatter + allgather algorithm (two steps
/// per chunk): when the contributions are small (up to `read_all_max`, see
/// `Coll::read_all_max`) or there are few of them.
fn small_reduce(bytes: usize, n: usize, count: usize, read_all_max: usize) -> bool {
    n == 1 || count < n || bytes <= read_all_max || bytes * (n - 1) <= 16384
}

/// What [`small_reduce`] reads whatever the rank count in a rooted reduce, which the
/// 16-core measurements of `Coll::read_all_max` did not cover.
const REDUCE_READ_ALL_MAX: usize = 4096;

/// How a reduction of `bytes` per rank moves its data (the module doc of `collective`
/// describes each): in the members' polled lines, by every rank reading every
/// contribution, or as a reduce-scatter then an allgather per chunk.
enum Reduction {
    Inline,
    ReadAll,
    ReduceScatter,
}

/// The one choice of algorithm every reduction makes.
fn reduction(bytes: usize, n: usize, count: usize, read_all_max: usize) -> Reduction {
    if bytes <= INLINE_BYTES {
        Reduction::Inline
    } else if small_reduce(bytes, n, count, read_all_max) {
        Reduction::ReadAll
    } else {
        Reduction::ReduceScatter
    }
}

pub(crate) fn sig(kind: Call, root: usize, elem: usize, op: u8) -> Sig {
    Sig {
        kind,
        op,
        elem: elem.min(u16::MAX as usize) as u16,
        root: root as u32,
    }
}

fn len_err(what: &str, got: usize, want: usize) -> Error {
    Error::invalid(
        ErrorClass::Count,
        format!("{what} has {got} elements but must have {want}"),
    )
}

/// Folds `x` (bytes of elements starting at byte `off` of a contribution) into `dst`.
fn fold<T: Pod>(dst: &mut [T], first: bool, off: usize, x: &[u8], op: &dyn Fn(&mut [T], &[T])) {
    let sz = std::mem::size_of::<T>();
    typed::<T, _>(x, |x| {
        let d = &mut dst[off / sz..off / sz + x.len()];
        if first {
            d.copy_from_slice(x);
        } else {
            op(d, x);
        }
    })
}

impl Communicator {
    pub(crate) fn check_root(&self, root: Rank) -> Result<usize> {
        let size = self.inner.group.size();
        if root < 0 || root as usize >= size {
            return Err(Error::InvalidRoot { root, size });
        }
        Ok(root as usize)
    }

    /// The checked root of a scatter or gather, whose buffer there (`what`, of `whole`
    /// elements) must hold one block of `block` elements per rank.
    fn root_blocks(&self, root: Rank, whole: usize, block: usize, what: &str) -> Result<usize> {
        let r = self.check_root(root)?;
        let n = self.inner.group.size();
        if self.inner.rank == r && whole != n * block {
            return Err(len_err(what, whole, n * block));
        }
        Ok(r)
    }

    /// The frame every slice collective shares once its arguments are checked: the
    /// call begun with its signature (which its first step compares with every
    /// member's), the data moved by `body`, and the call finished. An error out of
    /// `body` drops the call, which marks it failed for the members still waiting.
    fn collective(
        &self,
        call: Call,
        root: usize,
        elem: usize,
        op: u8,
        count: u64,
        body: impl FnOnce(&mut Coll<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut c = Coll::begin(&self.inner, sig(call, root, elem, op), count)?;
        body(&mut c)?;
        c.finish();
        Ok(())
    }

    pub(crate) fn elem_size<T>(&self) -> Result<usize> {
        let sz = std::mem::size_of::<T>();
        let half = self.inner.coll.shm().half_bytes();
        if sz == 0 || sz > half / 2 {
            return Err(Error::Usage(format!(
                "elements of type `{}` ({sz} bytes) cannot be used in collectives (1..={} bytes)",
                std::any::type_name::<T>(),
                half / 2
            )));
        }
        Ok(sz)
    }

    /// Blocks until every rank of the communicator has called it (`MPI_Barrier`,
    /// mpi4py `comm.Barrier()`).
    ///
    /// MPI 4.1 §6.3 (`MPI_Barrier`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] when another rank makes a different collective call at
    ///   this point, [`Error::Usage`] when an earlier collective on this communicator
    ///   failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves before it arrives;
    /// - [`Error::Aborted`] when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// world.barrier()?; // mpi4py: comm.Barrier()
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn barrier(&self) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.barrier();
        }
        let mut c = Coll::begin(&self.inner, sig(Call::Barrier, 0, 0, OP_NONE), 0)?;
        c.sync_all()?;
        c.finish();
        Ok(())
    }

    /// Broadcasts `buf` from `root` to every rank (`MPI_Bcast`, mpi4py `comm.Bcast`).
    /// Every rank passes a buffer of the same length.
    ///
    /// MPI 4.1 §6.4 (`MPI_Bcast`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when `T` is zero-sized or too large for the collective area, when
    ///   the ranks disagree on the root, the length or the element size, or make another
    ///   collective call, or an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// // mpi4py: comm.Bcast(buf, root=0)
    /// let mut buf = if world.rank() == 0 { [1u32, 2, 3] } else { [0; 3] };
    /// world.bcast_into(&mut buf, 0)?;
    /// assert_eq!(buf, [1, 2, 3]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn bcast_into<T: Pod>(&self, buf: &mut [T], root: Rank) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.bcast_bytes(bytemuck::cast_slice_mut(buf), self.check_root(root)?);
        }
        let (r, sz) = self.args(Call::Bcast, || {
            Ok((self.check_root(root)?, self.elem_size::<T>()?))
        })?;
        let len = std::mem::size_of_val(buf);
        self.collective(Call::Bcast, r, sz, OP_NONE, buf.len() as u64, |c| {
            if c.eager(len) {
                return c.bcast_eager(r, bytemuck::cast_slice_mut(buf));
            }
            // At 2 ranks the root's copy into its slot, half the work, goes: the other
            // rank reads half of the root's buffer directly while the root writes the
            // other half into the other rank's. With more ranks the readers share the
            // root's copy in cache, and reading the root's memory each was slower (3
            // and 8 ranks on 2 CPUs; docs/performance.md).
            if c.n() == 2 && c.direct(len) {
                return c.bcast_split(r, bytemuck::cast_slice_mut(buf));
            }
            if c.me() == r {
                c.exchange(
                    bytemuck::cast_slice(buf),
                    len,
                    sz,
                    &|_| None,
                    &mut |_, _, _| {},
                )?;
            } else {
                let dst: &mut [u8] = bytemuck::cast_slice_mut(buf);
                c.exchange(
                    &[],
                    len,
                    sz,
                    &|j| (j == r).then_some((0, len)),
                    &mut |_, off, b| dst[off..off + b.len()].copy_from_slice(b),
                )?;
            }
            Ok(())
        })
    }

    /// Sends block `i` of `send` (at the root: `size * recv.len()` elements; ignored
    /// elsewhere) to rank `i`'s `recv` (`MPI_Scatter`, mpi4py `comm.Scatter`).
    ///
    /// MPI 4.1 §6.6 (`MPI_Scatter`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the root's `send` does not hold `size * recv.len()` elements,
    ///   when `T` is zero-sized or too large for the collective area, when the ranks
    ///   disagree on the root, `recv.len()` or the element size, or make another collective
    ///   call, or an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size() as usize;
    /// let send: Vec<i32> = (0..2 * n as i32).collect(); // read at the root only
    /// let mut recv = [0i32; 2];
    /// world.scatter_into(&send, &mut recv, 0)?;
    /// let r = world.rank() * 2;
    /// assert_eq!(recv, [r, r + 1]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scatter_into<T: Pod>(&self, send: &[T], recv: &mut [T], root: Rank) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.scatter_bytes(
                bytemuck::cast_slice(send),
                bytemuck::cast_slice_mut(recv),
                self.check_root(root)?,
            );
        }
        let n = self.inner.group.size();
        let me = self.inner.rank;
        let cb = std::mem::size_of_val(recv);
        let (r, sz) = self.args(Call::Scatter, || {
            let r = self.root_blocks(
                root,
                send.len(),
                recv.len(),
                "scatter_into: the root's send buffer",
            )?;
            Ok((r, self.elem_size::<T>()?))
        })?;
        self.collective(Call::Scatter, r, sz, OP_NONE, recv.len() as u64, |c| {
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            // The root publishes every block but its own, which it copies itself; in its
            // slot rank `me`'s block starts at `me` blocks, or `me - 1` past the root's.
            let parts: [&[u8]; 2] = if me == r {
                let src: &[u8] = bytemuck::cast_slice(send);
                dst.copy_from_slice(&src[r * cb..(r + 1) * cb]);
                [&src[..r * cb], &src[(r + 1) * cb..]]
            } else {
                [&[], &[]]
            };
            let at = if me < r {
                me * cb
            } else {
                me.saturating_sub(1) * cb
            };
            c.exchange_parts(
                parts,
                (n - 1) * cb,
                sz,
                &|j| (j == r && me != r).then_some((at, at + cb)),
                &mut |_, off, b| dst[off - at..off - at + b.len()].copy_from_slice(b),
            )?;
            Ok(())
        })
    }

    /// Collects every rank's `send` into the root's `recv` (`size * send.len()`
    /// elements, in rank order; ignored elsewhere) (`MPI_Gather`, mpi4py `comm.Gather`).
    ///
    /// MPI 4.1 §6.5 (`MPI_Gather`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the root's `recv` does not hold `size * send.len()` elements,
    ///   when `T` is zero-sized or too large for the collective area, when the ranks
    ///   disagree on the root, `send.len()` or the element size, or make another collective
    ///   call, or an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut all = vec![0i32; world.size() as usize]; // written at the root only
    /// world.gather_into(&[world.rank()], &mut all, 0)?;
    /// if world.rank() == 0 {
    ///     assert_eq!(all, (0..world.size()).collect::<Vec<_>>());
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn gather_into<T: Pod>(&self, send: &[T], recv: &mut [T], root: Rank) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.gather_bytes(
                bytemuck::cast_slice(send),
                bytemuck::cast_slice_mut(recv),
                Some(self.check_root(root)?),
            );
        }
        let me = self.inner.rank;
        let cb = std::mem::size_of_val(send);
        let (r, sz) = self.args(Call::Gather, || {
            let r = self.root_blocks(
                root,
                recv.len(),
                send.len(),
                "gather_into: the root's receive buffer",
            )?;
            Ok((r, self.elem_size::<T>()?))
        })?;
        self.collective(Call::Gather, r, sz, OP_NONE, send.len() as u64, |c| {
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            let src: &[u8] = bytemuck::cast_slice(send);
            // The root copies its own block itself rather than through its slot.
            let mine = if me == r {
                dst[r * cb..(r + 1) * cb].copy_from_slice(src);
                &[]
            } else {
                src
            };
            c.exchange(
                mine,
                cb,
                sz,
                &|j| (me == r && j != r).then_some((0, cb)),
                &mut |j, off, b| dst[j * cb + off..j * cb + off + b.len()].copy_from_slice(b),
            )?;
            Ok(())
        })
    }

    /// Collects every rank's `send` into every rank's `recv` (`size * send.len()`
    /// elements, in rank order) (`MPI_Allgather`, mpi4py `comm.Allgather`).
    ///
    /// MPI 4.1 §6.7 (`MPI_Allgather`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when `recv` does not hold `size * send.len()` elements, when `T` is
    ///   zero-sized or too large for the collective area, when the ranks disagree on
    ///   `send.len()` or the element size, or make another collective call, or an earlier
    ///   collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut all = vec![0i32; world.size() as usize];
    /// world.allgather_into(&[world.rank()], &mut all)?;
    /// assert_eq!(all, (0..world.size()).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allgather_into<T: Pod>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.gather_bytes(
                bytemuck::cast_slice(send),
                bytemuck::cast_slice_mut(recv),
                None,
            );
        }
        let n = self.inner.group.size();
        self.args(Call::Allgather, || {
            if recv.len() != n * send.len() {
                return Err(len_err(
                    "allgather_into: the receive buffer",
                    recv.len(),
                    n * send.len(),
                ));
            }
            Ok(())
        })?;
        self.allgather_impl(Some(send), recv)
    }

    /// [`allgather_into`](Self::allgather_into) once the lengths are checked; `send:
    /// None` is the in-place form (this rank's block of `recv` is its contribution, which
    /// it publishes from there and does not copy).
    pub(crate) fn allgather_impl<T: Pod>(&self, send: Option<&[T]>, recv: &mut [T]) -> Result<()> {
        let sz = self.args(Call::Allgather, || self.elem_size::<T>())?;
        let n = self.inner.group.size();
        let me = self.inner.rank;
        let count = recv.len() / n;
        let cb = count * sz;
        self.collective(Call::Allgather, 0, sz, OP_NONE, count as u64, |c| {
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            // Reading peers directly saves each rank its copy into the slot, one block of
            // the `n` it moves: worth a system call per peer at 2 and 3 ranks only (at 4
            // and 8 the kernel's slower copy ate the saving; docs/performance.md).
            if n <= 3 && c.direct(cb) {
                // Peers read this rank's contribution where it is: the send buffer, or
                // (in place) its own block of `recv`, which this rank does not write.
                let at = match send {
                    Some(s) => s.as_ptr() as usize,
                    None => dst[me * cb..].as_ptr() as usize,
                };
                let mut blocks: Vec<&mut [u8]> = dst.chunks_mut(cb.max(1)).collect();
                if let Some(s) = send {
                    blocks[me].copy_from_slice(bytemuck::cast_slice(s));
                }
                return c.exchange_direct((at, cb), &|j| (j != me).then_some((0, cb)), &mut blocks);
            }
            let (below, rest) = dst.split_at_mut(me * cb);
            let (own, above) = rest.split_at_mut(cb);
            let mine: &[u8] = match send {
                Some(s) => {
                    own.copy_from_slice(bytemuck::cast_slice(s));
                    own
                }
                None => own,
            };
            c.exchange(
                mine,
                cb,
                sz,
                &|j| (j != me).then_some((0, cb)),
                &mut |j, off, b| {
                    let o = if j < me { j * cb } else { (j - me - 1) * cb };
                    let d = if j < me { &mut *below } else { &mut *above };
                    d[o + off..o + off + b.len()].copy_from_slice(b)
                },
            )?;
            Ok(())
        })
    }

    /// Sends block `j` of `send` to rank `j`, which receives it as block `i` of its
    /// `recv` (`MPI_Alltoall`, mpi4py `comm.Alltoall`). Both buffers hold `size`
    /// equal blocks.
    ///
    /// MPI 4.1 §6.8 (`MPI_Alltoall`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when `send.len()` is not a multiple of `size` or `recv.len()`
    ///   differs from it, when `T` is zero-sized or too large for the collective area, when
    ///   the ranks disagree on the block length or the element size, or make another
    ///   collective call, or an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank(), world.size());
    /// // Block j carries (sender, receiver) = (me, j).
    /// let send: Vec<[i32; 2]> = (0..n).map(|j| [me, j]).collect();
    /// let mut recv = vec![[0i32; 2]; n as usize];
    /// world.alltoall_into(&send, &mut recv)?;
    /// assert_eq!(recv, (0..n).map(|i| [i, me]).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn alltoall_into<T: Pod>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.alltoall_bytes(bytemuck::cast_slice(send), bytemuck::cast_slice_mut(recv));
        }
        let n = self.inner.group.size();
        let me = self.inner.rank;
        let sz = self.args(Call::Alltoall, || {
            if send.len() % n != 0 || recv.len() != send.len() {
                return Err(Error::invalid(ErrorClass::Count, format!(
                    "alltoall_into: the send buffer ({} elements) must hold {n} equal blocks and \
                     the receive buffer ({} elements) as many elements",
                    send.len(),
                    recv.len()
                )));
            }
            self.elem_size::<T>()
        })?;
        let count = send.len() / n;
        let cb = count * sz;
        self.collective(Call::Alltoall, 0, sz, OP_NONE, count as u64, |c| {
            let src: &[u8] = bytemuck::cast_slice(send);
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            // Reading peers directly halves what every rank copies.
            if c.direct(cb) {
                // Each peer reads its block of this rank's send buffer where it is.
                let mut blocks: Vec<&mut [u8]> = dst.chunks_mut(cb.max(1)).collect();
                blocks[me].copy_from_slice(&src[me * cb..(me + 1) * cb]);
                let at = src.as_ptr() as usize;
                return c.exchange_direct(
                    (at, n * cb),
                    &|j| (j != me).then_some((me * cb, (me + 1) * cb)),
                    &mut blocks,
                );
            }
            // Each rank publishes its blocks but its own, which it copies itself: in
            // rank j's slot the block for this rank starts at `me` blocks, or `me - 1`
            // past j's own.
            dst[me * cb..(me + 1) * cb].copy_from_slice(&src[me * cb..(me + 1) * cb]);
            let at = |j: usize| if me < j { me * cb } else { (me - 1) * cb };
            c.exchange_parts(
                [&src[..me * cb], &src[(me + 1) * cb..]],
                (n - 1) * cb,
                sz,
                &|j| (j != me).then(|| (at(j), at(j) + cb)),
                &mut |j, off, b| {
                    let o = j * cb + off - at(j);
                    dst[o..o + b.len()].copy_from_slice(b)
                },
            )?;
            Ok(())
        })
    }

    /// Reduces every rank's `send` elementwise with `op` into the root's `recv` (same
    /// length; ignored elsewhere) (`MPI_Reduce`, mpi4py `comm.Reduce`).
    ///
    /// MPI 4.1 §6.9.1 (`MPI_Reduce`). `op` is an [`Op`](crate::Op) or a closure
    /// `|a: &T, b: &T| -> T`; contributions are combined in rank order.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the root's `recv.len()` differs from `send.len()`, when the
    ///   [`Op`](crate::Op) is not defined for `T` (`Op::BitAnd` on `f64`), when `T` is
    ///   zero-sized or too large for the collective area, when the ranks disagree on the
    ///   root, the length, the element size or the op, or make another collective call, or
    ///   an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut sum = [0u64; 2];
    /// world.reduce_into(&[1, world.rank() as u64], &mut sum, shmpi::Op::Sum, 0)?;
    /// if world.rank() == 0 {
    ///     let n = world.size() as u64;
    ///     assert_eq!(sum, [n, n * (n - 1) / 2]);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn reduce_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: impl ReduceOp<T>,
        root: Rank,
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.reduce(send, recv, &op, Some(self.check_root(root)?));
        }
        let me = self.inner.rank;
        let n = self.inner.group.size();
        let (r, sz) = self.args(Call::Reduce, || {
            let r = self.check_root(root)?;
            let sz = self.elem_size::<T>()?;
            op.check()?;
            if me == r && recv.len() != send.len() {
                return Err(len_err(
                    "reduce_into: the root's receive buffer",
                    recv.len(),
                    send.len(),
                ));
            }
            Ok((r, sz))
        })?;
        let cb = std::mem::size_of_val(send);
        self.collective(Call::Reduce, r, sz, op.code(), send.len() as u64, |c| {
            let apply = |a: &mut [T], x: &[T]| op.apply(a, x);
            match reduction(cb, n, send.len(), REDUCE_READ_ALL_MAX) {
                Reduction::Inline => {
                    let out = (me == r).then_some(recv);
                    c.reduce_inline(bytemuck::cast_slice(send), out, &apply)?;
                }
                Reduction::ReadAll => {
                    c.exchange(
                        bytemuck::cast_slice(send),
                        cb,
                        sz,
                        &|_| (me == r).then_some((0, cb)),
                        &mut |j, off, b| fold(recv, j == 0, off, b, &apply),
                    )?;
                }
                Reduction::ReduceScatter => {
                    let out: &mut [T] = if me == r { recv } else { &mut [] };
                    c.reduce_rs(Some(send), out, send.len(), Some(r), &mut |a, x| {
                        apply(a, x)
                    })?;
                }
            }
            Ok(())
        })
    }

    /// Reduces every rank's `send` elementwise with `op` into every rank's `recv`
    /// (`MPI_Allreduce`, mpi4py `comm.Allreduce`). `op` is an [`Op`](crate::Op) or a
    /// closure `|a: &T, b: &T| -> T`; contributions are combined in rank order.
    ///
    /// MPI 4.1 §6.9.6 (`MPI_Allreduce`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when `recv.len()` differs from `send.len()`, when the
    ///   [`Op`](crate::Op) is not defined for `T`, when `T` is zero-sized or too large for
    ///   the collective area, when the ranks disagree on the length, the element size or
    ///   the op (every closure counts as the same op), or make another collective call, or
    ///   an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// // mpi4py: comm.Allreduce(send, recv, op=MPI.MAX)
    /// let mut max = [0i32];
    /// world.allreduce_into(&[world.rank()], &mut max, shmpi::Op::Max)?;
    /// assert_eq!(max, [world.size() - 1]);
    /// // A closure combines in rank order.
    /// let mut prod = [0i64];
    /// world.allreduce_into(&[2i64], &mut prod, |a: &i64, b: &i64| a * b)?;
    /// assert_eq!(prod, [1i64 << world.size()]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allreduce_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: impl ReduceOp<T>,
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.reduce(send, recv, &op, None);
        }
        let sz = self.args(Call::Allreduce, || {
            let sz = self.elem_size::<T>()?;
            op.check()?;
            if recv.len() != send.len() {
                return Err(len_err(
                    "allreduce_into: the receive buffer",
                    recv.len(),
                    send.len(),
                ));
            }
            Ok(sz)
        })?;
        let n = self.inner.group.size();
        let cb = std::mem::size_of_val(send);
        self.collective(Call::Allreduce, 0, sz, op.code(), send.len() as u64, |c| {
            let apply = |a: &mut [T], x: &[T]| op.apply(a, x);
            match reduction(cb, n, send.len(), c.read_all_max()) {
                Reduction::Inline => {
                    c.reduce_inline(bytemuck::cast_slice(send), Some(recv), &apply)?;
                }
                Reduction::ReadAll => {
                    c.exchange(
                        bytemuck::cast_slice(send),
                        cb,
                        sz,
                        &|_| Some((0, cb)),
                        &mut |j, off, b| fold(recv, j == 0, off, b, &apply),
                    )?;
                }
                Reduction::ReduceScatter if c.direct_reduce(cb / n) => {
                    c.allreduce_direct(Some(send), recv, &mut |a, x| apply(a, x))?;
                }
                Reduction::ReduceScatter => {
                    c.reduce_rs(Some(send), recv, send.len(), None, &mut |a, x| apply(a, x))?;
                }
            }
            Ok(())
        })
    }

    /// [`allreduce_into`](Self::allreduce_into) in place: `buf` holds this rank's
    /// contribution and receives the result (`MPI_Allreduce` with `MPI_IN_PLACE`).
    ///
    /// MPI 4.1 §6.9.6 (`MPI_Allreduce`).
    ///
    /// # Errors
    ///
    /// As [`allreduce_into`](Self::allreduce_into), less the length check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut v = [1.0f64, 2.0];
    /// world.allreduce_in_place(&mut v, shmpi::Op::Sum)?;
    /// let n = world.size() as f64;
    /// assert_eq!(v, [n, 2.0 * n]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allreduce_in_place<T: Pod>(&self, buf: &mut [T], op: impl ReduceOp<T>) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let mine = buf.to_vec();
            return mc.reduce(&mine, buf, &op, None);
        }
        let sz = self.args(Call::Allreduce, || {
            let sz = self.elem_size::<T>()?;
            op.check()?;
            Ok(sz)
        })?;
        let n = self.inner.group.size();
        let cb = std::mem::size_of_val(buf);
        self.collective(Call::Allreduce, 0, sz, op.code(), buf.len() as u64, |c| {
            let apply = |a: &mut [T], x: &[T]| op.apply(a, x);
            match reduction(cb, n, buf.len(), c.read_all_max()) {
                Reduction::Inline => {
                    // This rank's contribution, kept while `buf` receives rank 0's first.
                    let mut words = [0u64; INLINE_WORDS];
                    let mine = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..cb];
                    mine.copy_from_slice(bytemuck::cast_slice(buf));
                    c.reduce_inline(mine, Some(buf), &apply)?;
                }
                Reduction::ReadAll => {
                    let mine = buf.to_vec();
                    c.exchange(
                        bytemuck::cast_slice(&mine),
                        cb,
                        sz,
                        &|_| Some((0, cb)),
                        &mut |j, off, b| fold(buf, j == 0, off, b, &apply),
                    )?;
                }
                Reduction::ReduceScatter if c.direct_reduce(cb / n) => {
                    c.allreduce_direct(None, buf, &mut |a, x| apply(a, x))?;
                }
                Reduction::ReduceScatter => {
                    let len = buf.len();
                    c.reduce_rs(None, buf, len, None, &mut |a, x| apply(a, x))?;
                }
            }
            Ok(())
        })
    }

    /// Inclusive prefix reduction: rank `i`'s `recv` gets `send` of ranks `0..=i`
    /// combined with `op` (`MPI_Scan`, mpi4py `comm.Scan`).
    ///
    /// MPI 4.1 §6.11.1 (`MPI_Scan`).
    ///
    /// # Errors
    ///
    /// As [`allreduce_into`](Self::allreduce_into): [an error of its
    /// arguments](crate::Error#collective-errors) for a `recv.len()`
    /// other than `send.len()`, an op not defined for `T`, an unusable `T` or calls that do
    /// not match; [`Error::PeerFailed`] and [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut upto = [0i32];
    /// world.scan_into(&[world.rank() + 1], &mut upto, shmpi::Op::Sum)?;
    /// let r = world.rank() + 1;
    /// assert_eq!(upto, [r * (r + 1) / 2]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scan_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: impl ReduceOp<T>,
    ) -> Result<()> {
        self.scan_impl(send, recv, op, false)
    }

    /// Exclusive prefix reduction: rank `i > 0`'s `recv` gets `send` of ranks `0..i`
    /// combined with `op`; rank 0's `recv` is left unchanged (`MPI_Exscan`).
    ///
    /// MPI 4.1 §6.11.2 (`MPI_Exscan`, mpi4py `comm.Exscan`; MPI leaves rank 0's result
    /// undefined).
    ///
    /// # Errors
    ///
    /// As [`scan_into`](Self::scan_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut before = [-1i32];
    /// world.exscan_into(&[world.rank() + 1], &mut before, shmpi::Op::Sum)?;
    /// let r = world.rank();
    /// if r > 0 {
    ///     assert_eq!(before, [r * (r + 1) / 2]);
    /// } else {
    ///     assert_eq!(before, [-1]);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn exscan_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: impl ReduceOp<T>,
    ) -> Result<()> {
        self.scan_impl(send, recv, op, true)
    }

    fn scan_impl<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: impl ReduceOp<T>,
        ex: bool,
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.scan(send, recv, &op, ex);
        }
        let kind = if ex { Call::Exscan } else { Call::Scan };
        let sz = self.args(kind, || {
            let sz = self.elem_size::<T>()?;
            op.check()?;
            if recv.len() != send.len() {
                return Err(len_err(
                    &format!("{}: the receive buffer", kind.name()),
                    recv.len(),
                    send.len(),
                ));
            }
            Ok(sz)
        })?;
        let me = self.inner.rank;
        let cb = std::mem::size_of_val(send);
        self.collective(kind, 0, sz, op.code(), send.len() as u64, |c| {
            let apply = |a: &mut [T], x: &[T]| op.apply(a, x);
            c.exchange(
                bytemuck::cast_slice(send),
                cb,
                sz,
                &|j| (j < me || (!ex && j == me)).then_some((0, cb)),
                &mut |j, off, b| fold(recv, j == 0, off, b, &apply),
            )?;
            Ok(())
        })
    }

    /// Reduces `send` (`size` blocks of `recv.len()` elements) elementwise across ranks
    /// and gives block `i` of the result to rank `i` (`MPI_Reduce_scatter_block`).
    ///
    /// MPI 4.1 §6.10.1 (`MPI_Reduce_scatter_block`, mpi4py `comm.Reduce_scatter_block`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when `send` does not hold `size * recv.len()` elements, when the
    ///   [`Op`](crate::Op) is not defined for `T`, when `T` is zero-sized or too large for
    ///   the collective area, when the ranks disagree on `recv.len()`, the element size or
    ///   the op, or make another collective call, or an earlier collective on this
    ///   communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// // Every rank contributes j to block j, so block j sums to j * size.
    /// let send: Vec<i32> = (0..n).collect();
    /// let mut mine = [0i32];
    /// world.reduce_scatter_block_into(&send, &mut mine, shmpi::Op::Sum)?;
    /// assert_eq!(mine, [world.rank() * n]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn reduce_scatter_block_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: impl ReduceOp<T>,
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.reduce_scatter_block(send, recv, &op);
        }
        let n = self.inner.group.size();
        let me = self.inner.rank;
        let sz = self.args(Call::ReduceScatterBlock, || {
            let sz = self.elem_size::<T>()?;
            op.check()?;
            if send.len() != n * recv.len() {
                return Err(len_err(
                    "reduce_scatter_block_into: the send buffer",
                    send.len(),
                    n * recv.len(),
                ));
            }
            Ok(sz)
        })?;
        let cb = std::mem::size_of_val(recv);
        self.collective(
            Call::ReduceScatterBlock,
            0,
            sz,
            op.code(),
            recv.len() as u64,
            |c| {
                let apply = |a: &mut [T], x: &[T]| op.apply(a, x);
                c.exchange(
                    bytemuck::cast_slice(send),
                    n * cb,
                    sz,
                    &|_| Some((me * cb, (me + 1) * cb)),
                    &mut |j, off, b| fold(recv, j == 0, off - me * cb, b, &apply),
                )?;
                Ok(())
            },
        )
    }

    /// Collects `send` of every rank (any lengths) into the root's `recv`: rank `j`'s
    /// elements go to `recv[displs[j]..displs[j] + counts[j]]` (`MPI_Gatherv`).
    /// `counts` and `displs` are used at the root only; each rank's `send.len()` must
    /// equal its `counts` entry.
    ///
    /// MPI 4.1 §6.5 (`MPI_Gatherv`, mpi4py `comm.Gatherv(send, [recv, (counts, displs)])`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) at the root when `counts` or `displs` does not have one entry per
    ///   rank or a block does not fit `recv` (checked before the call starts, and the others
    ///   then fail naming this rank's invalid call), or when a
    ///   rank's `send.len()` differs from its `counts` entry (found part-way, so every
    ///   member fails); on every rank when `T` is zero-sized or too large for the
    ///   collective area, when the ranks disagree on the root or the element size, or make
    ///   another collective call, or an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size() as usize;
    /// // Rank j sends j + 1 copies of j.
    /// let send = vec![world.rank(); world.rank() as usize + 1];
    /// let counts: Vec<usize> = (1..=n).collect();
    /// let displs: Vec<usize> = (0..n).map(|j| j * (j + 1) / 2).collect();
    /// let mut recv = vec![0i32; n * (n + 1) / 2];
    /// world.gatherv_into(&send, &mut recv, &counts, &displs, 0)?;
    /// if world.rank() == 0 {
    ///     assert_eq!(recv[displs[n - 1]..], vec![n as i32 - 1; n][..]);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn gatherv_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        counts: &[usize],
        displs: &[usize],
        root: Rank,
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let r = self.check_root(root)?;
            let sz = self.elem_size::<T>()?;
            if self.inner.rank == r {
                check_v(
                    "gatherv_into",
                    self.inner.group.size(),
                    recv.len(),
                    counts,
                    displs,
                )?;
            }
            let (c, d) = (scale(counts, sz), scale(displs, sz));
            return mc.gatherv_bytes(
                bytemuck::cast_slice(send),
                bytemuck::cast_slice_mut(recv),
                &c,
                &d,
                Some(r),
            );
        }
        let me = self.inner.rank;
        let (r, sz) = self.args(Call::Gatherv, || {
            let r = self.check_root(root)?;
            let sz = self.elem_size::<T>()?;
            if me == r {
                check_v(
                    "gatherv_into",
                    self.inner.group.size(),
                    recv.len(),
                    counts,
                    displs,
                )?;
            }
            Ok((r, sz))
        })?;
        self.collective(Call::Gatherv, r, sz, OP_NONE, ANY_COUNT, |c| {
            let lens = c.allgather_u64(std::mem::size_of_val(send) as u64)?;
            if me == r {
                check_lens("gatherv_into", &lens, counts, sz)?;
            }
            let max = lens.iter().copied().max().unwrap_or(0) as usize;
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            c.exchange(
                bytemuck::cast_slice(send),
                max,
                sz,
                &|j| (me == r).then_some((0, lens[j] as usize)),
                &mut |j, off, b| {
                    let o = displs[j] * sz + off;
                    dst[o..o + b.len()].copy_from_slice(b)
                },
            )?;
            Ok(())
        })
    }

    /// Sends `send[displs[i]..displs[i] + counts[i]]` from the root to rank `i`'s
    /// `recv` (`MPI_Scatterv`). `send`, `counts`, `displs` are used at the root only;
    /// each rank's `recv.len()` must equal its count.
    ///
    /// MPI 4.1 §6.6 (`MPI_Scatterv`, mpi4py `comm.Scatterv([send, (counts, displs)], recv)`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) at the root when `counts` or `displs` does not have one entry per
    ///   rank or a block does not fit `send` (checked before the call starts, and the others
    ///   then fail naming this rank's invalid call); on a rank
    ///   whose `recv.len()` differs from its count (found part-way); on every rank when
    ///   `T` is zero-sized or too large for the collective area, when the ranks disagree
    ///   on the root or the element size, or make another collective call, or an earlier
    ///   collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size() as usize;
    /// // Rank j gets j + 1 copies of j (the send side is read at the root only).
    /// let counts: Vec<usize> = (1..=n).collect();
    /// let displs: Vec<usize> = (0..n).map(|j| j * (j + 1) / 2).collect();
    /// let send: Vec<i32> = (0..n).flat_map(|j| vec![j as i32; j + 1]).collect();
    /// let mut recv = vec![0i32; world.rank() as usize + 1];
    /// world.scatterv_into(&send, &counts, &displs, &mut recv, 0)?;
    /// assert!(recv.iter().all(|&x| x == world.rank()));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scatterv_into<T: Pod>(
        &self,
        send: &[T],
        counts: &[usize],
        displs: &[usize],
        recv: &mut [T],
        root: Rank,
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let r = self.check_root(root)?;
            let sz = self.elem_size::<T>()?;
            if self.inner.rank == r {
                check_v(
                    "scatterv_into",
                    self.inner.group.size(),
                    send.len(),
                    counts,
                    displs,
                )?;
            }
            let (c, d) = (scale(counts, sz), scale(displs, sz));
            return mc.scatterv_bytes(
                bytemuck::cast_slice(send),
                &c,
                &d,
                bytemuck::cast_slice_mut(recv),
                r,
            );
        }
        let n = self.inner.group.size();
        let me = self.inner.rank;
        let (r, sz) = self.args(Call::Scatterv, || {
            let r = self.check_root(root)?;
            let sz = self.elem_size::<T>()?;
            if me == r {
                check_v("scatterv_into", n, send.len(), counts, displs)?;
            }
            Ok((r, sz))
        })?;
        self.collective(Call::Scatterv, r, sz, OP_NONE, ANY_COUNT, |c| {
            // Step 1: the root publishes [total, start0, end0, start1, end1, ...] in bytes.
            let mut table = vec![0u64; 2 * n + 1];
            if me == r {
                table[0] = std::mem::size_of_val(send) as u64;
                for j in 0..n {
                    table[1 + 2 * j] = (displs[j] * sz) as u64;
                    table[2 + 2 * j] = ((displs[j] + counts[j]) * sz) as u64;
                }
            }
            let mine: Vec<u64> = if me == r { table.clone() } else { Vec::new() };
            let tb = table.len() * 8;
            {
                let t: &mut [u8] = bytemuck::cast_slice_mut(&mut table);
                c.exchange(
                    bytemuck::cast_slice(&mine),
                    tb,
                    8,
                    &|j| (j == r && me != r).then_some((0, tb)),
                    &mut |_, off, b| t[off..off + b.len()].copy_from_slice(b),
                )?;
            }
            let (s, e) = (table[1 + 2 * me] as usize, table[2 + 2 * me] as usize);
            if e - s != std::mem::size_of_val(recv) {
                let sent = (e - s) / sz;
                return Err(Error::counts(sent, recv.len(), format!(
                    "scatterv_into: the root sends {sent} elements to rank {me}, whose receive buffer has {}",
                    recv.len()
                )));
            }
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            let mine: &[u8] = if me == r {
                bytemuck::cast_slice(send)
            } else {
                &[]
            };
            c.exchange(
                mine,
                table[0] as usize,
                sz,
                &|j| (j == r).then_some((s, e)),
                &mut |_, off, b| dst[off - s..off - s + b.len()].copy_from_slice(b),
            )?;
            Ok(())
        })
    }

    /// Collects `send` of every rank (any lengths) into every rank's `recv`: rank `j`'s
    /// elements go to `recv[displs[j]..displs[j] + counts[j]]` (`MPI_Allgatherv`).
    ///
    /// MPI 4.1 §6.7 (`MPI_Allgatherv`, mpi4py `comm.Allgatherv(send, [recv, (counts, displs)])`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when `counts` or `displs` does not have one entry per rank, when a
    ///   block does not fit `recv`, when a rank's `send.len()` differs from its `counts`
    ///   entry, when `T` is zero-sized or too large for the collective area, when the ranks
    ///   disagree on the element size, or make another collective call, or an earlier
    ///   collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size() as usize;
    /// let send = vec![world.rank(); world.rank() as usize + 1];
    /// let counts: Vec<usize> = (1..=n).collect();
    /// let displs: Vec<usize> = (0..n).map(|j| j * (j + 1) / 2).collect();
    /// let mut recv = vec![-1i32; n * (n + 1) / 2];
    /// world.allgatherv_into(&send, &mut recv, &counts, &displs)?;
    /// let want: Vec<i32> = (0..n).flat_map(|j| vec![j as i32; j + 1]).collect();
    /// assert_eq!(recv, want);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allgatherv_into<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        counts: &[usize],
        displs: &[usize],
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let sz = self.elem_size::<T>()?;
            check_v(
                "allgatherv_into",
                self.inner.group.size(),
                recv.len(),
                counts,
                displs,
            )?;
            let (c, d) = (scale(counts, sz), scale(displs, sz));
            return mc.gatherv_bytes(
                bytemuck::cast_slice(send),
                bytemuck::cast_slice_mut(recv),
                &c,
                &d,
                None,
            );
        }
        let sz = self.args(Call::Allgatherv, || {
            let sz = self.elem_size::<T>()?;
            check_v(
                "allgatherv_into",
                self.inner.group.size(),
                recv.len(),
                counts,
                displs,
            )?;
            Ok(sz)
        })?;
        self.collective(Call::Allgatherv, 0, sz, OP_NONE, ANY_COUNT, |c| {
            let lens = c.allgather_u64(std::mem::size_of_val(send) as u64)?;
            check_lens("allgatherv_into", &lens, counts, sz)?;
            let max = lens.iter().copied().max().unwrap_or(0) as usize;
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            c.exchange(
                bytemuck::cast_slice(send),
                max,
                sz,
                &|j| Some((0, lens[j] as usize)),
                &mut |j, off, b| {
                    let o = displs[j] * sz + off;
                    dst[o..o + b.len()].copy_from_slice(b)
                },
            )?;
            Ok(())
        })
    }

    /// Sends `send[sdispls[j]..sdispls[j] + scounts[j]]` to rank `j`, which receives
    /// it into `recv[rdispls[i]..rdispls[i] + rcounts[i]]` (`MPI_Alltoallv`, mpi4py
    /// `comm.Alltoallv([sbuf, (scounts, sdispls)], [rbuf, (rcounts, rdispls)])`). Every
    /// rank's `rcounts[i]` must equal what rank `i` sends it (its `scounts` entry):
    /// a rank that finds otherwise fails with an error naming both counts, and so
    /// do the ranks that wait for its data.
    ///
    /// MPI 4.1 §6.8 (`MPI_Alltoallv`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when a count or displacement list does not have one entry per
    ///   rank, when a block does not fit its buffer, when `rcounts[j]` differs from what
    ///   rank `j` sends, when `T` is zero-sized or too large for the collective area, when
    ///   the ranks disagree on the element size, or make another collective call, or an
    ///   earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank() as usize, world.size() as usize);
    /// // Rank i sends i + 1 copies of i to every rank.
    /// let send = vec![me as i32; n * (me + 1)];
    /// let scounts = vec![me + 1; n];
    /// let sdispls: Vec<usize> = (0..n).map(|j| j * (me + 1)).collect();
    /// let rcounts: Vec<usize> = (1..=n).collect();
    /// let rdispls: Vec<usize> = (0..n).map(|j| j * (j + 1) / 2).collect();
    /// let mut recv = vec![-1i32; n * (n + 1) / 2];
    /// world.alltoallv_into(&send, &scounts, &sdispls, &mut recv, &rcounts, &rdispls)?;
    /// let want: Vec<i32> = (0..n).flat_map(|j| vec![j as i32; j + 1]).collect();
    /// assert_eq!(recv, want);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn alltoallv_into<T: Pod>(
        &self,
        send: &[T],
        scounts: &[usize],
        sdispls: &[usize],
        recv: &mut [T],
        rcounts: &[usize],
        rdispls: &[usize],
    ) -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let sz = self.elem_size::<T>()?;
            let n = self.inner.group.size();
            check_v("alltoallv_into", n, send.len(), scounts, sdispls)?;
            check_v("alltoallv_into", n, recv.len(), rcounts, rdispls)?;
            let (sc, sd) = (scale(scounts, sz), scale(sdispls, sz));
            let (rc, rd) = (scale(rcounts, sz), scale(rdispls, sz));
            return mc.alltoallv_bytes(
                bytemuck::cast_slice(send),
                &sc,
                &sd,
                bytemuck::cast_slice_mut(recv),
                &rc,
                &rd,
            );
        }
        const NAME: &str = "alltoallv_into";
        let n = self.inner.group.size();
        let me = self.inner.rank;
        let sz = self.args(Call::Alltoallv, || {
            let sz = self.elem_size::<T>()?;
            check_v(NAME, n, send.len(), scounts, sdispls)?;
            check_v(NAME, n, recv.len(), rcounts, rdispls)?;
            Ok(sz)
        })?;
        self.collective(Call::Alltoallv, 0, sz, OP_NONE, ANY_COUNT, |c| {
            // Step 1: every rank publishes [its send buffer's bytes, then for each rank j the
            // byte range of its block for j], and reads every table (n * (2n + 1) words).
            let tw = 2 * n + 1;
            let mut mine = vec![0u64; tw];
            mine[0] = std::mem::size_of_val(send) as u64;
            for j in 0..n {
                mine[1 + 2 * j] = (sdispls[j] * sz) as u64;
                mine[2 + 2 * j] = ((sdispls[j] + scounts[j]) * sz) as u64;
            }
            let mut tables = vec![0u64; n * tw];
            {
                let t: &mut [u8] = bytemuck::cast_slice_mut(&mut tables);
                let tb = tw * 8;
                c.exchange(
                    bytemuck::cast_slice(&mine),
                    tb,
                    8,
                    &|_| Some((0, tb)),
                    &mut |j, off, b| t[j * tb + off..j * tb + off + b.len()].copy_from_slice(b),
                )?;
            }
            // What each rank sends this one, checked against `rcounts`.
            let from = |j: usize| {
                let t = &tables[j * tw..(j + 1) * tw];
                (t[1 + 2 * me] as usize, t[2 + 2 * me] as usize)
            };
            for j in 0..n {
                let (s, e) = from(j);
                let total = tables[j * tw] as usize;
                if s > e || e > total {
                    return Err(Error::Usage(format!(
                        "{NAME}: rank {j} published a malformed block table ({s}..{e} of {total} \
                         bytes)"
                    )));
                }
                if e - s != rcounts[j] * sz {
                    let sent = (e - s) / sz;
                    return Err(Error::counts(sent, rcounts[j], format!(
                        "{NAME}: rank {j} sends {sent} elements to rank {me}, whose rcounts[{j}] is {}",
                        rcounts[j]
                    )));
                }
            }
            // Step 2 on: every rank publishes its whole send buffer, in rounds of a slot
            // half, and each copies out its blocks.
            let max = (0..n).map(|j| tables[j * tw] as usize).max().unwrap_or(0);
            let ranges: Vec<(usize, usize)> = (0..n).map(from).collect();
            let dst: &mut [u8] = bytemuck::cast_slice_mut(recv);
            c.exchange(
                bytemuck::cast_slice(send),
                max,
                sz,
                &|j| Some(ranges[j]),
                &mut |j, off, b| {
                    let o = rdispls[j] * sz + off - ranges[j].0;
                    dst[o..o + b.len()].copy_from_slice(b)
                },
            )?;
            Ok(())
        })
    }
}

/// Counts or displacements in elements, as bytes.
#[cfg(feature = "mpi")]
fn scale(v: &[usize], sz: usize) -> Vec<usize> {
    v.iter().map(|&x| x * sz).collect()
}

pub(super) fn check_v(
    name: &str,
    n: usize,
    buf_len: usize,
    counts: &[usize],
    displs: &[usize],
) -> Result<()> {
    if counts.len() != n || displs.len() != n {
        return Err(Error::invalid(
            ErrorClass::Count,
            format!(
                "{name}: counts ({}) and displs ({}) must have one entry per rank ({n})",
                counts.len(),
                displs.len()
            ),
        ));
    }
    for j in 0..n {
        if displs[j]
            .checked_add(counts[j])
            .is_none_or(|end| end > buf_len)
        {
            return Err(Error::invalid(
                ErrorClass::Count,
                format!(
                    "{name}: rank {j}'s block of {} elements at {} does not fit the buffer of \
                 {buf_len} elements",
                    counts[j], displs[j],
                ),
            ));
        }
    }
    Ok(())
}

fn check_lens(name: &str, lens: &[u64], counts: &[usize], sz: usize) -> Result<()> {
    for (j, (&l, &c)) in lens.iter().zip(counts).enumerate() {
        if l as usize != c * sz {
            let got = l as usize / sz;
            return Err(Error::counts(
                got,
                c,
                format!("{name}: rank {j} contributes {got} elements but counts[{j}] is {c}"),
            ));
        }
    }
    Ok(())
}
