//! Collectives on objects (mpi4py's lowercase `bcast`, `gather`, `allreduce` ...):
//! values are archived with rkyv, their bytes move through the shared collective
//! area like slices do (lengths first, then the bytes, pipelined), and each receiver
//! validates and deserializes what it gets. Reductions with a closure gather the
//! contributions and fold them in rank order, `c0 op c1 op ... op c(n-1)`, outside any
//! runtime borrow, so the closure may use the communicator (but not start another
//! collective on it).

use rkyv::util::AlignedVec;

use super::op::{ObjectReducible, Op};
use super::slices::sig;
use super::{ANY_COUNT, ByteSink, Call, Coll, OP_CLOSURE, OP_NONE};
use crate::codec::{self, Decode, Encode};
use crate::comm::{Communicator, Rank};
use crate::error::{Error, ErrorClass, Result};

fn decode_from<T: Decode>(bytes: &AlignedVec, src: usize) -> Result<T> {
    if let Some((_, name)) = codec::split(bytes) {
        if name != codec::type_name::<T>() {
            return Err(Error::TypeMismatch {
                source_rank: src as i32,
                tag: -1,
                sent: name.to_string(),
                expected: codec::type_name::<T>(),
            });
        }
    }
    codec::decode::<T>(bytes, src as i32, -1)
}

/// `c0 op c1 op ... op c(n-1)`, left to right; `None` for no contributions.
fn fold<T>(mut it: impl Iterator<Item = T>, op: &dyn Fn(&T, &T) -> Result<T>) -> Result<Option<T>> {
    let Some(first) = it.next() else {
        return Ok(None);
    };
    it.try_fold(first, |a, b| op(&a, &b)).map(Some)
}

impl Communicator {
    /// Broadcasts an object from `root` (mpi4py `comm.bcast(obj, root)`; `MPI_Bcast`).
    /// The root passes `Some(value)` and gets it back; the others pass `None`.
    ///
    /// MPI 4.1 §6.4 (`MPI_Bcast`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the root passes `None`, when the ranks disagree on the root
    ///   or make another collective call, or an earlier collective on this communicator
    ///   failed;
    /// - [`Error::Serialize`] at the root when the value cannot be archived;
    ///   [`Error::TypeMismatch`] at a rank that asks for another type than the root sent;
    ///   [`Error::InvalidArchive`] when the bytes received fail validation;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// // mpi4py: data = comm.bcast(data if comm.rank == 0 else None, root=0)
    /// let data = (world.rank() == 0).then(|| vec!["a".to_string(), "b".to_string()]);
    /// let data: Vec<String> = world.bcast(data, 0)?;
    /// assert_eq!(data, ["a", "b"]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn bcast<T: Encode + Decode>(&self, value: Option<T>, root: Rank) -> Result<T> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.bcast_obj(value, self.check_root(root)?);
        }
        let me = self.inner.rank;
        let (r, bytes) = self.args(Call::BcastObj, || {
            let r = self.check_root(root)?;
            let bytes = match (&value, me == r) {
                (Some(v), true) => codec::encode(v)?,
                (None, true) => {
                    return Err(Error::Usage("bcast: the root must pass Some(value)".into()));
                }
                _ => AlignedVec::new(),
            };
            Ok((r, bytes))
        })?;
        let mut out = AlignedVec::new();
        self.bcast_raw(&bytes, r, &mut out)?;
        match value {
            Some(v) if me == r => Ok(v),
            _ => decode_from(&out, r),
        }
    }

    /// Broadcasts bytes whose length only `root` knows (mpi4py's `comm.bcast`, whose
    /// pickle is the bytes; any encoding of your own): the root passes `Some(bytes)`
    /// and gets them back, the others pass `None` and get a copy. It is [`bcast`](Self::bcast)
    /// without the archive: the call matches a `bcast` on the other ranks, which would
    /// receive these bytes as an archive (and most likely fail to validate it).
    ///
    /// MPI 4.1 §6.4 (`MPI_Bcast`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the root passes `None`, when the ranks disagree on the root
    ///   or make another collective call, or an earlier collective on this communicator
    ///   failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mine = (world.rank() == 0).then(|| b"pickled elsewhere".to_vec());
    /// let got = world.bcast_bytes(mine, 0)?;
    /// assert_eq!(got, b"pickled elsewhere");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn bcast_bytes(&self, data: Option<Vec<u8>>, root: Rank) -> Result<Vec<u8>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.bcast_raw(data, self.check_root(root)?);
        }
        let (r, data) = self.args(Call::BcastObj, || {
            let r = self.check_root(root)?;
            match (data, self.inner.rank == r) {
                (Some(d), true) => Ok((r, Some(d))),
                (None, true) => Err(Error::Usage(
                    "bcast_bytes: the root must pass Some(bytes)".into(),
                )),
                (_, false) => Ok((r, None)),
            }
        })?;
        let mut out = Vec::new();
        self.bcast_raw(data.as_deref().unwrap_or(&[]), r, &mut out)?;
        Ok(data.unwrap_or(out))
    }

    /// The broadcast of `bytes` (at root `r`; empty elsewhere) of a length only the
    /// root knows, appended to `out` at the others: eagerly in a run of them, else
    /// the length and then the bytes through the root's slot.
    fn bcast_raw(&self, bytes: &[u8], r: usize, out: &mut impl ByteSink) -> Result<()> {
        let me = self.inner.rank;
        let mut c = Coll::begin(&self.inner, sig(Call::BcastObj, r, 0, OP_NONE), ANY_COUNT)?;
        if c.eager(super::EAGER_BCAST_MAX) {
            c.bcast_eager_obj(r, bytes, out)?;
            c.finish();
            return Ok(());
        }
        let mut len = [0u8; 8];
        let mine = (bytes.len() as u64).to_le_bytes();
        c.exchange(
            if me == r { &mine } else { &[] },
            8,
            8,
            &|j| (j == r && me != r).then_some((0, 8)),
            &mut |_, _, b| len.copy_from_slice(b),
        )?;
        let len = u64::from_le_bytes(len) as usize;
        c.exchange(
            bytes,
            if me == r { bytes.len() } else { len },
            1,
            &|j| (j == r && me != r).then_some((0, len)),
            &mut |_, _, b| out.put(b),
        )?;
        c.finish();
        Ok(())
    }

    /// Sends `values[i]` from the root to rank `i` (mpi4py `comm.scatter`;
    /// `MPI_Scatter`). The root passes `Some` of one value per rank, the others `None`.
    ///
    /// MPI 4.1 §6.6 (`MPI_Scatter`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the root passes `None` or not one value per rank (checked before
    ///   the call starts, so the other ranks are not told), when the ranks disagree on the root or make another
    ///   collective call, or an earlier collective on this communicator failed;
    /// - [`Error::Serialize`] at the root when a value cannot be archived;
    ///   [`Error::TypeMismatch`] at a rank that asks for another type than the root sent;
    ///   [`Error::InvalidArchive`] when the bytes received fail validation;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let values: Vec<String> = (0..world.size()).map(|r| format!("for {r}")).collect();
    /// let mine: String = world.scatter((world.rank() == 0).then_some(&values[..]), 0)?;
    /// assert_eq!(mine, format!("for {}", world.rank()));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scatter<T: Encode + Decode>(&self, values: Option<&[T]>, root: Rank) -> Result<T> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.scatter_obj(values, self.check_root(root)?);
        }
        let (r, parts) = self.args(Call::ScatterObj, || {
            let r = self.check_root(root)?;
            let parts = match self.root_parts(values, r, "scatter")? {
                Some(v) => v.iter().map(codec::encode).collect::<Result<Vec<_>>>()?,
                None => Vec::new(),
            };
            Ok((r, parts))
        })?;
        let mut c = Coll::begin(&self.inner, sig(Call::ScatterObj, r, 0, OP_NONE), ANY_COUNT)?;
        let got = if c.eager_deal() {
            c.deal_eager::<AlignedVec, _>(r, &parts)?
        } else {
            c.deal::<AlignedVec, _>(r, &parts)?
        };
        c.finish();
        decode_from(&got, r)
    }

    /// The root's one value per rank (`Some` at the root, `None` elsewhere), checked
    /// before a scatter starts, so that the other ranks are not told.
    fn root_parts<'v, T>(
        &self,
        values: Option<&'v [T]>,
        r: usize,
        call: &str,
    ) -> Result<Option<&'v [T]>> {
        if self.inner.rank != r {
            return Ok(None);
        }
        let n = self.inner.group.size();
        match values {
            Some(v) if v.len() == n => Ok(Some(v)),
            Some(v) => Err(Error::invalid(
                ErrorClass::Count,
                format!("{call}: the root passed {} values for {n} ranks", v.len()),
            )),
            None => Err(Error::Usage(format!(
                "{call}: the root must pass Some(values)"
            ))),
        }
    }

    /// Sends `parts[j]`, bytes of any length, from the root to rank `j` and returns this
    /// rank's (mpi4py's `comm.scatter`, whose pickles are the parts; any encoding of
    /// your own): [`scatter`](Self::scatter) without the archive, matched as a `scatter`
    /// on the other ranks. The root passes `Some` of one part per rank, the others
    /// `None`.
    ///
    /// MPI 4.1 §6.6 (`MPI_Scatter`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the root passes `None` or not one part per rank (checked
    ///   before the call starts; the other ranks then fail naming the root's invalid
    ///   call), when the ranks
    ///   disagree on the root or make another collective call, or an earlier collective
    ///   on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let parts: Vec<Vec<u8>> = (0..world.size()).map(|r| format!("for {r}").into_bytes()).collect();
    /// let mine = world.scatter_bytes((world.rank() == 0).then_some(&parts[..]), 0)?;
    /// assert_eq!(mine, format!("for {}", world.rank()).as_bytes());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scatter_bytes(&self, parts: Option<&[Vec<u8>]>, root: Rank) -> Result<Vec<u8>> {
        let (r, parts) = self.args(Call::ScatterObj, || {
            let r = self.check_root(root)?;
            Ok((
                r,
                self.root_parts(parts, r, "scatter_bytes")?.unwrap_or(&[]),
            ))
        })?;
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.scatter_raw(parts, r, |len| vec![0u8; len]);
        }
        let mut c = Coll::begin(&self.inner, sig(Call::ScatterObj, r, 0, OP_NONE), ANY_COUNT)?;
        let got = if c.eager_deal() {
            c.deal_eager::<Vec<u8>, _>(r, parts)?
        } else {
            c.deal::<Vec<u8>, _>(r, parts)?
        };
        c.finish();
        Ok(got)
    }

    /// Collects every rank's object at the root, in rank order (mpi4py `comm.gather`;
    /// `MPI_Gather`): `Some(values)` at the root, `None` elsewhere.
    ///
    /// MPI 4.1 §6.5 (`MPI_Gather`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the ranks disagree on the root or make another collective
    ///   call, or an earlier collective on this communicator failed;
    /// - [`Error::Serialize`] when the value cannot be archived; [`Error::TypeMismatch`] at
    ///   the root when a rank sent another type; [`Error::InvalidArchive`] when the bytes
    ///   received fail validation;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let all = world.gather(&(world.rank(), "hi".to_string()), 0)?;
    /// if world.rank() == 0 {
    ///     let all = all.expect("the root gets every value");
    ///     assert_eq!(all.len(), world.size() as usize);
    ///     assert_eq!(all[0], (0, "hi".to_string()));
    /// } else {
    ///     assert!(all.is_none());
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn gather<T: Encode + Decode>(&self, value: &T, root: Rank) -> Result<Option<Vec<T>>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.gather_obj(value, Some(self.check_root(root)?));
        }
        let (r, bytes) = self.args(Call::GatherObj, || {
            Ok((self.check_root(root)?, codec::encode(value)?))
        })?;
        let me = self.inner.rank;
        let mut c = Coll::begin(&self.inner, sig(Call::GatherObj, r, 0, OP_NONE), ANY_COUNT)?;
        let got = c.collect::<AlignedVec>(&bytes, &|_| me == r)?;
        c.finish();
        if me != r {
            return Ok(None);
        }
        got.iter()
            .enumerate()
            .map(|(j, b)| decode_from(b, j))
            .collect::<Result<Vec<T>>>()
            .map(Some)
    }

    /// Collects every rank's object at every rank, in rank order (mpi4py
    /// `comm.allgather`; `MPI_Allgather`).
    ///
    /// MPI 4.1 §6.7 (`MPI_Allgather`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when the ranks make another collective call, or an earlier
    ///   collective on this communicator failed;
    /// - [`Error::Serialize`] when the value cannot be archived; [`Error::TypeMismatch`] when
    ///   a rank sent another type; [`Error::InvalidArchive`] when the bytes received fail
    ///   validation;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let ranks: Vec<i32> = world.allgather(&world.rank())?;
    /// assert_eq!(ranks, (0..world.size()).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allgather<T: Encode + Decode>(&self, value: &T) -> Result<Vec<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return Ok(mc.gather_obj(value, None)?.unwrap_or_default());
        }
        let bytes = self.args(Call::AllgatherObj, || codec::encode(value))?;
        let mut c = Coll::begin(
            &self.inner,
            sig(Call::AllgatherObj, 0, 0, OP_NONE),
            ANY_COUNT,
        )?;
        let got = c.collect::<AlignedVec>(&bytes, &|_| true)?;
        c.finish();
        got.iter()
            .enumerate()
            .map(|(j, b)| decode_from(b, j))
            .collect()
    }

    /// Every rank's bytes, of lengths only each knows, in rank order at `root`
    /// (`Some` there, `None` elsewhere; mpi4py's `comm.gather`, whose pickles are the
    /// bytes): [`gather`](Self::gather) without the archive, matched as a `gather` on the
    /// other ranks.
    ///
    /// MPI 4.1 §6.5 (`MPI_Gather`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the ranks disagree on the root or make another collective
    ///   call, or an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let all = world.gather_bytes(format!("rank {}", world.rank()).as_bytes(), 0)?;
    /// if world.rank() == 0 {
    ///     assert_eq!(all.unwrap()[0], b"rank 0");
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn gather_bytes(&self, mine: &[u8], root: Rank) -> Result<Option<Vec<Vec<u8>>>> {
        let r = self.args(Call::GatherObj, || self.check_root(root))?;
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let all = mc.gather_archives(mine, Some(r))?;
            return Ok(all.map(|all| all.iter().map(|b| b.to_vec()).collect()));
        }
        let me = self.inner.rank;
        let mut c = Coll::begin(&self.inner, sig(Call::GatherObj, r, 0, OP_NONE), ANY_COUNT)?;
        let got = c.collect::<Vec<u8>>(mine, &|_| me == r)?;
        c.finish();
        Ok((me == r).then_some(got))
    }

    /// Every rank's bytes, of lengths only each knows, in rank order at every rank
    /// (mpi4py's `comm.allgather`, whose pickles are the bytes; any encoding of your
    /// own): [`allgather`](Self::allgather) without the archive, matched as an
    /// `allgather` on the other ranks.
    ///
    /// MPI 4.1 §6.7 (`MPI_Allgather`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when the ranks make another collective call, or an earlier
    ///   collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let all = world.allgather_bytes(format!("rank {}", world.rank()).as_bytes())?;
    /// assert_eq!(all[0], b"rank 0");
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allgather_bytes(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let all = mc.gather_archives(mine, None)?.unwrap_or_default();
            return Ok(all.iter().map(|b| b.to_vec()).collect());
        }
        let mut c = Coll::begin(
            &self.inner,
            sig(Call::AllgatherObj, 0, 0, OP_NONE),
            ANY_COUNT,
        )?;
        let got = c.collect::<Vec<u8>>(mine, &|_| true)?;
        c.finish();
        Ok(got)
    }

    /// Sends `values[j]` to rank `j` and returns what each rank sent to this one, in
    /// rank order (mpi4py `comm.alltoall`; `MPI_Alltoall`).
    ///
    /// MPI 4.1 §6.8 (`MPI_Alltoall`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when `values` does not hold one value per rank, when the ranks make
    ///   another collective call, or an earlier collective on this communicator failed;
    /// - [`Error::Serialize`] when a value cannot be archived; [`Error::TypeMismatch`] when
    ///   a rank sent another type; [`Error::InvalidArchive`] when the bytes received fail
    ///   validation;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let out: Vec<(i32, i32)> = (0..world.size()).map(|j| (me, j)).collect();
    /// let got = world.alltoall(&out)?;
    /// assert_eq!(got, (0..world.size()).map(|i| (i, me)).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn alltoall<T: Encode + Decode>(&self, values: &[T]) -> Result<Vec<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.alltoall_obj(values);
        }
        let n = self.inner.group.size();
        let parts = self.args(Call::AlltoallObj, || {
            if values.len() != n {
                return Err(Error::invalid(
                    ErrorClass::Count,
                    format!("alltoall: {} values passed for {n} ranks", values.len()),
                ));
            }
            values.iter().map(codec::encode).collect::<Result<Vec<_>>>()
        })?;
        let mut c = Coll::begin(
            &self.inner,
            sig(Call::AlltoallObj, 0, 0, OP_NONE),
            ANY_COUNT,
        )?;
        let got = c.swap::<AlignedVec, _>(&parts)?;
        c.finish();
        got.iter()
            .enumerate()
            .map(|(j, b)| decode_from(b, j))
            .collect()
    }

    /// Sends `parts[j]`, bytes of any length, to rank `j` and returns what each rank
    /// sent to this one, in rank order (mpi4py's `comm.alltoall`, whose pickles are the
    /// parts; any encoding of your own): [`alltoall`](Self::alltoall) without the
    /// archive, matched as an `alltoall` on the other ranks.
    ///
    /// MPI 4.1 §6.8 (`MPI_Alltoall`).
    ///
    /// # Errors
    ///
    /// - [an error of its arguments](crate::Error#collective-errors) when `parts` does not hold one part per rank (checked before the
    ///   call starts), when the ranks make another collective call, or an earlier
    ///   collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let out: Vec<Vec<u8>> = (0..world.size()).map(|j| format!("{me}->{j}").into_bytes()).collect();
    /// let got = world.alltoall_bytes(&out)?;
    /// assert_eq!(got[0], format!("0->{me}").as_bytes());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn alltoall_bytes(&self, parts: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let n = self.inner.group.size();
        self.args(Call::AlltoallObj, || {
            if parts.len() != n {
                return Err(Error::invalid(
                    ErrorClass::Count,
                    format!("alltoall_bytes: {} parts passed for {n} ranks", parts.len()),
                ));
            }
            Ok(())
        })?;
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            return mc.alltoall_raw(parts, |b| b.to_vec());
        }
        let mut c = Coll::begin(
            &self.inner,
            sig(Call::AlltoallObj, 0, 0, OP_NONE),
            ANY_COUNT,
        )?;
        let got = c.swap::<Vec<u8>, _>(parts)?;
        c.finish();
        Ok(got)
    }

    /// Combines every rank's object with `op`, in rank order, at the root (mpi4py
    /// `comm.reduce(obj, op, root)`; `MPI_Reduce`): `Some` at the root, `None` elsewhere.
    ///
    /// MPI 4.1 §6.9.1 (`MPI_Reduce`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the ranks disagree on the root, when one of them calls
    ///   [`reduce_op`](Self::reduce_op) (a built-in op) instead, when they make another
    ///   collective call, or an earlier collective on this communicator failed;
    /// - [`Error::Serialize`] when the value cannot be archived; [`Error::TypeMismatch`] at
    ///   the root when a rank sent another type; [`Error::InvalidArchive`] when the bytes
    ///   received fail validation;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let words = world.reduce(&world.rank().to_string(), |a, b| format!("{a},{b}"), 0)?;
    /// if world.rank() == 0 {
    ///     let want: Vec<String> = (0..world.size()).map(|r| r.to_string()).collect();
    ///     assert_eq!(words, Some(want.join(",")));
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn reduce<T: Encode + Decode>(
        &self,
        value: &T,
        op: impl Fn(&T, &T) -> T,
        root: Rank,
    ) -> Result<Option<T>> {
        self.reduce_obj(value, OP_CLOSURE, &|a, b| Ok(op(a, b)), Some(root))
    }

    /// Combines every rank's object with `op`, in rank order, at every rank (mpi4py
    /// `comm.allreduce(obj, op)`; `MPI_Allreduce`): `world.allreduce(&x, |a, b| a + b)`.
    ///
    /// MPI 4.1 §6.9.6 (`MPI_Allreduce`).
    ///
    /// # Errors
    ///
    /// As [`reduce`](Self::reduce), less the root.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let longest = world.allreduce(&"x".repeat(world.rank() as usize + 1), |a, b| {
    ///     if b.len() > a.len() { b.clone() } else { a.clone() }
    /// })?;
    /// assert_eq!(longest.len(), world.size() as usize);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allreduce<T: Encode + Decode>(&self, value: &T, op: impl Fn(&T, &T) -> T) -> Result<T> {
        let r = self.reduce_obj(value, OP_CLOSURE, &|a, b| Ok(op(a, b)), None)?;
        Ok(r.expect("a communicator has at least one rank"))
    }

    /// Inclusive prefix reduction of objects: rank `i` gets the objects of ranks
    /// `0..=i` combined with `op` (mpi4py `comm.scan`; `MPI_Scan`).
    ///
    /// MPI 4.1 §6.11.1 (`MPI_Scan`).
    ///
    /// # Errors
    ///
    /// As [`allreduce`](Self::allreduce).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let seen: Vec<i32> = world.scan(&vec![world.rank()], |a, b| [&a[..], &b[..]].concat())?;
    /// assert_eq!(seen, (0..=world.rank()).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scan<T: Encode + Decode>(&self, value: &T, op: impl Fn(&T, &T) -> T) -> Result<T> {
        Ok(self
            .scan_obj(value, OP_CLOSURE, &|a, b| Ok(op(a, b)), false)?
            .expect("rank 0..=i is never empty"))
    }

    /// Exclusive prefix reduction of objects: rank `i > 0` gets the objects of ranks
    /// `0..i` combined with `op`, rank 0 gets `None` (mpi4py `comm.exscan`;
    /// `MPI_Exscan`).
    ///
    /// MPI 4.1 §6.11.2 (`MPI_Exscan`).
    ///
    /// # Errors
    ///
    /// As [`allreduce`](Self::allreduce).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let before = world.exscan(&vec![world.rank()], |a, b| [&a[..], &b[..]].concat())?;
    /// assert_eq!(before, (world.rank() > 0).then(|| (0..world.rank()).collect::<Vec<_>>()));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn exscan<T: Encode + Decode>(
        &self,
        value: &T,
        op: impl Fn(&T, &T) -> T,
    ) -> Result<Option<T>> {
        self.scan_obj(value, OP_CLOSURE, &|a, b| Ok(op(a, b)), true)
    }

    /// [`reduce`](Self::reduce) with a built-in op (mpi4py
    /// `comm.reduce(x, op=MPI.SUM, root=0)`), on numbers, `bool`s, tuples of them,
    /// `Vec`s of them (elementwise) and [`Value`](crate::Value)s (see
    /// [`ObjectReducible`]).
    ///
    /// MPI 4.1 §6.9.1 (`MPI_Reduce`) and §6.9.2 (the predefined ops).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class `Op` where the op is not defined for the
    ///   values (e.g. `BitAnd` on floats, `Vec`s of different lengths), checked on
    ///   this rank's own value before the call and again as values are combined;
    /// - [`Error::InvalidRoot`] when `root` is not a rank of the communicator;
    /// - [an error of its arguments](crate::Error#collective-errors) when the ranks call with different ops or roots (naming both
    ///   calls), or make another collective call, or an earlier collective on this
    ///   communicator failed;
    /// - [`Error::Serialize`] when the value cannot be archived; [`Error::TypeMismatch`]
    ///   at the root when a rank sent another type; [`Error::InvalidArchive`] when the
    ///   bytes received fail validation;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`]
    ///   when the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let total = world.reduce_op(&(world.rank() as f64 + 0.5), shmpi::Op::Sum, 0)?;
    /// let n = world.size() as f64;
    /// assert_eq!(total, (world.rank() == 0).then_some(n * n / 2.0));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn reduce_op<T: Encode + Decode + ObjectReducible>(
        &self,
        value: &T,
        op: Op,
        root: Rank,
    ) -> Result<Option<T>> {
        // The op must be defined for the type even where nothing is combined (N = 1).
        self.args(Call::ReduceObj, || T::reduce(op, value, value))?;
        self.reduce_obj(value, op.code(), &|a, b| T::reduce(op, a, b), Some(root))
    }

    /// [`allreduce`](Self::allreduce) with a built-in op (mpi4py
    /// `comm.allreduce(x, op=MPI.SUM)`; `MPI_Allreduce`). `Op::MaxLoc` and `Op::MinLoc`
    /// take `(value, index)` pairs, as mpi4py's `MPI.MAXLOC` does. MPI 4.1 §6.9.6
    /// (`MPI_Allreduce`) and §6.9.4 (`MPI_MAXLOC`, `MPI_MINLOC`).
    ///
    /// # Errors
    ///
    /// As [`reduce_op`](Self::reduce_op), less the root.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::Op;
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// assert_eq!(world.allreduce_op(&(me + 1), Op::Max)?, world.size());
    /// let (best, at) = world.allreduce_op(&(10.0 - me as f64, me), Op::MaxLoc)?;
    /// assert_eq!((best, at), (10.0, 0));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allreduce_op<T: Encode + Decode + ObjectReducible>(
        &self,
        value: &T,
        op: Op,
    ) -> Result<T> {
        // The op must be defined for the type even where nothing is combined (N = 1).
        self.args(Call::AllreduceObj, || T::reduce(op, value, value))?;
        let r = self.reduce_obj(value, op.code(), &|a, b| T::reduce(op, a, b), None)?;
        Ok(r.expect("a communicator has at least one rank"))
    }

    /// [`scan`](Self::scan) with a built-in op (mpi4py `comm.scan(x, op=MPI.SUM)`).
    /// MPI 4.1 §6.11.1 (`MPI_Scan`).
    ///
    /// # Errors
    ///
    /// As [`reduce_op`](Self::reduce_op), less the root.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let r = world.rank() + 1;
    /// assert_eq!(world.scan_op(&r, shmpi::Op::Sum)?, r * (r + 1) / 2);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scan_op<T: Encode + Decode + ObjectReducible>(&self, value: &T, op: Op) -> Result<T> {
        // The op must be defined for the type even where nothing is combined (N = 1).
        self.args(Call::ScanObj, || T::reduce(op, value, value))?;
        Ok(self
            .scan_obj(value, op.code(), &|a, b| T::reduce(op, a, b), false)?
            .expect("rank 0..=i is never empty"))
    }

    /// [`exscan`](Self::exscan) with a built-in op (mpi4py `comm.exscan(x, op=MPI.SUM)`):
    /// `None` at rank 0. MPI 4.1 §6.11.2 (`MPI_Exscan`).
    ///
    /// # Errors
    ///
    /// As [`reduce_op`](Self::reduce_op), less the root.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let r = world.rank();
    /// let before = world.exscan_op(&(r + 1), shmpi::Op::Sum)?;
    /// assert_eq!(before, (r > 0).then_some(r * (r + 1) / 2));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn exscan_op<T: Encode + Decode + ObjectReducible>(
        &self,
        value: &T,
        op: Op,
    ) -> Result<Option<T>> {
        // The op must be defined for the type even where nothing is combined (N = 1).
        self.args(Call::ExscanObj, || T::reduce(op, value, value))?;
        self.scan_obj(value, op.code(), &|a, b| T::reduce(op, a, b), true)
    }

    /// A reduction to `root` (`Some`) or to every rank (`None`), with op `code` in the
    /// call signature.
    fn reduce_obj<T: Encode + Decode>(
        &self,
        value: &T,
        code: u8,
        op: &dyn Fn(&T, &T) -> Result<T>,
        root: Option<Rank>,
    ) -> Result<Option<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let _ = code;
            return mc.reduce_obj(value, op, root.map(|r| self.check_root(r)).transpose()?);
        }
        let call = if root.is_some() {
            Call::ReduceObj
        } else {
            Call::AllreduceObj
        };
        let (r, bytes) = self.args(call, || {
            let r = root.map(|r| self.check_root(r)).transpose()?;
            Ok((r, codec::encode(value)?))
        })?;
        let me = self.inner.rank;
        let at = r.unwrap_or(0);
        let mut c = Coll::begin(&self.inner, sig(call, at, 0, code), ANY_COUNT)?;
        let got = c.collect::<AlignedVec>(&bytes, &|_| r.is_none_or(|r| me == r))?;
        c.finish();
        if r.is_some_and(|r| me != r) {
            return Ok(None);
        }
        let vals = got
            .iter()
            .enumerate()
            .map(|(j, b)| decode_from(b, j))
            .collect::<Result<Vec<T>>>()?;
        fold(vals.into_iter(), op)
    }

    fn scan_obj<T: Encode + Decode>(
        &self,
        value: &T,
        code: u8,
        op: &dyn Fn(&T, &T) -> Result<T>,
        ex: bool,
    ) -> Result<Option<T>> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = self.coll_mpi()? {
            let _ = code;
            return mc.scan_obj(value, op, ex);
        }
        let me = self.inner.rank;
        let kind = if ex { Call::ExscanObj } else { Call::ScanObj };
        let bytes = self.args(kind, || codec::encode(value))?;
        let mut c = Coll::begin(&self.inner, sig(kind, 0, 0, code), ANY_COUNT)?;
        let got = c.collect::<AlignedVec>(&bytes, &|j| j < me || (!ex && j == me))?;
        c.finish();
        let upto = if ex { me } else { me + 1 };
        let vals = got[..upto]
            .iter()
            .enumerate()
            .map(|(j, b)| decode_from(b, j))
            .collect::<Result<Vec<T>>>()?;
        fold(vals.into_iter(), op)
    }
}
