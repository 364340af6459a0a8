//! Collectives over MPI. Plain data moves with MPI's byte collectives; reductions with
//! a built-in op on a machine type run as MPI's reduction with MPI's op and datatype;
//! every other reduction (closures, `MinLoc`/`MaxLoc` pairs, objects) gathers the
//! contributions and combines them in rank order, as MPI defines a non-commutative op.
//! Objects travel as archives: their lengths first, then the bytes (`MPI_*v`).

use std::any::TypeId;
use std::ffi::{c_int, c_void};

use ::mpi::ffi;
use bytemuck::Pod;
use rkyv::util::AlignedVec;

use super::{Comm, check};
use crate::codec::{self, Decode, Encode};
use crate::collective::op::ReduceOp;
use crate::error::{Error, Result};

pub(super) fn cint(n: usize, what: &str) -> Result<c_int> {
    c_int::try_from(n).map_err(|_| {
        Error::Usage(format!(
            "{what}: {n} bytes are more than one MPI call can move (2 GiB)"
        ))
    })
}

fn len_err(what: &str, got: usize, want: usize) -> Error {
    Error::Usage(format!("{what} has {got} elements but must have {want}"))
}

/// Where an empty buffer points in a call: an empty `&[u8]` points at address 1,
/// which is Open MPI's `MPI_IN_PLACE`, and would make a call of no bytes an in-place
/// one (or `MPI_ERR_ARG`).
static EMPTY: u64 = 0;

pub(super) fn ptr<T>(s: &[T]) -> *const c_void {
    if s.is_empty() {
        return std::ptr::addr_of!(EMPTY).cast();
    }
    s.as_ptr().cast()
}

pub(super) fn mptr<T>(s: &mut [T]) -> *mut c_void {
    if s.is_empty() {
        // MPI reads and writes no byte of a buffer of no elements.
        return std::ptr::addr_of!(EMPTY).cast_mut().cast();
    }
    s.as_mut_ptr().cast()
}

/// The MPI datatype of a machine number type, for MPI's own reductions.
pub(super) fn datatype<T: 'static>() -> Option<ffi::MPI_Datatype> {
    let t = TypeId::of::<T>();
    // SAFETY: reading the library's predefined datatype handles.
    unsafe {
        Some(if t == TypeId::of::<f64>() {
            ffi::RSMPI_DOUBLE
        } else if t == TypeId::of::<f32>() {
            ffi::RSMPI_FLOAT
        } else if t == TypeId::of::<i8>() {
            ffi::RSMPI_INT8_T
        } else if t == TypeId::of::<i16>() {
            ffi::RSMPI_INT16_T
        } else if t == TypeId::of::<i32>() {
            ffi::RSMPI_INT32_T
        } else if t == TypeId::of::<i64>() || t == TypeId::of::<isize>() {
            ffi::RSMPI_INT64_T
        } else if t == TypeId::of::<u8>() {
            ffi::RSMPI_UINT8_T
        } else if t == TypeId::of::<u16>() {
            ffi::RSMPI_UINT16_T
        } else if t == TypeId::of::<u32>() {
            ffi::RSMPI_UINT32_T
        } else if t == TypeId::of::<u64>() || t == TypeId::of::<usize>() {
            ffi::RSMPI_UINT64_T
        } else {
            return None;
        })
    }
}

/// MPI's op for shmpi's op code (see `Op::code`), where MPI has one.
pub(super) fn mpi_op(code: u8) -> Option<ffi::MPI_Op> {
    // SAFETY: reading the library's predefined op handles.
    unsafe {
        Some(match code {
            1 => ffi::RSMPI_SUM,
            2 => ffi::RSMPI_PROD,
            3 => ffi::RSMPI_MIN,
            4 => ffi::RSMPI_MAX,
            5 => ffi::RSMPI_LAND,
            6 => ffi::RSMPI_LOR,
            7 => ffi::RSMPI_LXOR,
            8 => ffi::RSMPI_BAND,
            9 => ffi::RSMPI_BOR,
            10 => ffi::RSMPI_BXOR,
            _ => return None,
        })
    }
}

fn native<T: Pod>(op: &impl ReduceOp<T>) -> Option<(ffi::MPI_Datatype, ffi::MPI_Op)> {
    Some((datatype::<T>()?, mpi_op(op.code())?))
}

pub(super) fn byte() -> ffi::MPI_Datatype {
    // SAFETY: a predefined handle.
    unsafe { ffi::RSMPI_UINT8_T }
}

impl Comm {
    pub(crate) fn barrier(&self) -> Result<()> {
        // SAFETY: a valid communicator.
        check(unsafe { ffi::MPI_Barrier(self.raw) }, "MPI_Barrier")
    }

    pub(crate) fn bcast_bytes(&self, buf: &mut [u8], root: usize) -> Result<()> {
        let n = cint(buf.len(), "bcast")?;
        // SAFETY: `buf` holds `n` bytes at every rank (the program's contract, as in MPI).
        let rc = unsafe { ffi::MPI_Bcast(mptr(buf), n, byte(), root as c_int, self.raw) };
        check(rc, "MPI_Bcast")
    }

    /// Every rank's `send` (the same length everywhere) into `recv` at `root` (all ranks
    /// for `None`).
    pub(crate) fn gather_bytes(
        &self,
        send: &[u8],
        recv: &mut [u8],
        root: Option<usize>,
    ) -> Result<()> {
        let n = self.size();
        let me = self.rank;
        if root.is_none_or(|r| r == me) && recv.len() != n * send.len() {
            return Err(Error::Usage(format!(
                "{}: the receive buffer has {} bytes but must have {} (one block per rank)",
                if root.is_some() {
                    "gather"
                } else {
                    "allgather"
                },
                recv.len(),
                n * send.len()
            )));
        }
        let c = cint(send.len(), "gather")?;
        // SAFETY: `recv` holds n blocks of `c` bytes where it is written.
        let rc = unsafe {
            match root {
                Some(r) => ffi::MPI_Gather(
                    ptr(send),
                    c,
                    byte(),
                    mptr(recv),
                    c,
                    byte(),
                    r as c_int,
                    self.raw,
                ),
                None => ffi::MPI_Allgather(ptr(send), c, byte(), mptr(recv), c, byte(), self.raw),
            }
        };
        check(
            rc,
            if root.is_some() {
                "MPI_Gather"
            } else {
                "MPI_Allgather"
            },
        )
    }

    pub(crate) fn scatter_bytes(&self, send: &[u8], recv: &mut [u8], root: usize) -> Result<()> {
        let n = self.size();
        if self.rank == root && send.len() != n * recv.len() {
            return Err(len_err(
                "scatter: the send buffer (bytes)",
                send.len(),
                n * recv.len(),
            ));
        }
        let c = cint(recv.len(), "scatter")?;
        // SAFETY: `send` holds n blocks of `c` bytes at the root.
        let rc = unsafe {
            ffi::MPI_Scatter(
                ptr(send),
                c,
                byte(),
                mptr(recv),
                c,
                byte(),
                root as c_int,
                self.raw,
            )
        };
        check(rc, "MPI_Scatter")
    }

    pub(crate) fn alltoall_bytes(&self, send: &[u8], recv: &mut [u8]) -> Result<()> {
        let n = self.size();
        if send.len() != recv.len() || send.len() % n != 0 {
            return Err(Error::Usage(format!(
                "alltoall: the send ({} bytes) and receive ({} bytes) buffers must be equal \
                 and hold one block per rank ({n})",
                send.len(),
                recv.len()
            )));
        }
        let c = cint(send.len() / n, "alltoall")?;
        // SAFETY: both buffers hold n blocks of `c` bytes.
        let rc =
            unsafe { ffi::MPI_Alltoall(ptr(send), c, byte(), mptr(recv), c, byte(), self.raw) };
        check(rc, "MPI_Alltoall")
    }

    /// Variable blocks: `counts`/`displs` in bytes; `root` `None` is the all- form.
    pub(crate) fn gatherv_bytes(
        &self,
        send: &[u8],
        recv: &mut [u8],
        counts: &[usize],
        displs: &[usize],
        root: Option<usize>,
    ) -> Result<()> {
        let c = cint(send.len(), "gatherv")?;
        let cs = counts
            .iter()
            .map(|&x| cint(x, "gatherv"))
            .collect::<Result<Vec<_>>>()?;
        let ds = displs
            .iter()
            .map(|&x| cint(x, "gatherv"))
            .collect::<Result<Vec<_>>>()?;
        // SAFETY: the counts and displacements were checked against `recv` by the caller.
        let rc = unsafe {
            match root {
                Some(r) => ffi::MPI_Gatherv(
                    ptr(send),
                    c,
                    byte(),
                    mptr(recv),
                    cs.as_ptr(),
                    ds.as_ptr(),
                    byte(),
                    r as c_int,
                    self.raw,
                ),
                None => ffi::MPI_Allgatherv(
                    ptr(send),
                    c,
                    byte(),
                    mptr(recv),
                    cs.as_ptr(),
                    ds.as_ptr(),
                    byte(),
                    self.raw,
                ),
            }
        };
        check(
            rc,
            if root.is_some() {
                "MPI_Gatherv"
            } else {
                "MPI_Allgatherv"
            },
        )
    }

    pub(crate) fn scatterv_bytes(
        &self,
        send: &[u8],
        counts: &[usize],
        displs: &[usize],
        recv: &mut [u8],
        root: usize,
    ) -> Result<()> {
        let c = cint(recv.len(), "scatterv")?;
        let cs = counts
            .iter()
            .map(|&x| cint(x, "scatterv"))
            .collect::<Result<Vec<_>>>()?;
        let ds = displs
            .iter()
            .map(|&x| cint(x, "scatterv"))
            .collect::<Result<Vec<_>>>()?;
        // SAFETY: the counts and displacements were checked against `send` by the caller.
        let rc = unsafe {
            ffi::MPI_Scatterv(
                ptr(send),
                cs.as_ptr(),
                ds.as_ptr(),
                byte(),
                mptr(recv),
                c,
                byte(),
                root as c_int,
                self.raw,
            )
        };
        check(rc, "MPI_Scatterv")
    }

    pub(crate) fn alltoallv_bytes(
        &self,
        send: &[u8],
        sc: &[usize],
        sd: &[usize],
        recv: &mut [u8],
        rc_: &[usize],
        rd: &[usize],
    ) -> Result<()> {
        let v = |x: &[usize]| {
            x.iter()
                .map(|&x| cint(x, "alltoallv"))
                .collect::<Result<Vec<_>>>()
        };
        let (sc, sd, rcs, rd) = (v(sc)?, v(sd)?, v(rc_)?, v(rd)?);
        // SAFETY: the counts and displacements were checked against the buffers.
        let rc = unsafe {
            ffi::MPI_Alltoallv(
                ptr(send),
                sc.as_ptr(),
                sd.as_ptr(),
                byte(),
                mptr(recv),
                rcs.as_ptr(),
                rd.as_ptr(),
                byte(),
                self.raw,
            )
        };
        check(rc, "MPI_Alltoallv")
    }

    // ---- reductions -----------------------------------------------------------------

    /// Every rank's contribution, in rank order (for reductions MPI cannot run).
    fn all_contributions<T: Pod>(&self, send: &[T], root: Option<usize>) -> Result<Vec<T>> {
        let n = self.size();
        let mut all = vec![
            T::zeroed();
            if root.is_none_or(|r| r == self.rank) {
                n * send.len()
            } else {
                0
            }
        ];
        self.gather_bytes(
            bytemuck::cast_slice(send),
            bytemuck::cast_slice_mut(&mut all),
            root,
        )?;
        Ok(all)
    }

    /// `x_0 op x_1 op ... op x_{k-1}` of the first `k` contributions into `out`.
    fn fold<T: Pod>(all: &[T], c: usize, k: usize, op: &impl ReduceOp<T>, out: &mut [T]) {
        out.copy_from_slice(&all[..c]);
        for j in 1..k {
            op.apply(out, &all[j * c..(j + 1) * c]);
        }
    }

    /// `MPI_Reduce` (`root` given) or `MPI_Allreduce` of `send` into `recv`.
    pub(crate) fn reduce<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: &impl ReduceOp<T>,
        root: Option<usize>,
    ) -> Result<()> {
        op.check()?;
        let at_root = root.is_none_or(|r| r == self.rank);
        if at_root && recv.len() != send.len() {
            return Err(len_err(
                "reduce: the receive buffer",
                recv.len(),
                send.len(),
            ));
        }
        if let Some((dt, mop)) = native(op) {
            let c = cint(send.len(), "reduce")?;
            // SAFETY: both buffers hold `c` elements of type `dt` where they are used.
            let rc = unsafe {
                match root {
                    Some(r) => {
                        ffi::MPI_Reduce(ptr(send), mptr(recv), c, dt, mop, r as c_int, self.raw)
                    }
                    None => ffi::MPI_Allreduce(ptr(send), mptr(recv), c, dt, mop, self.raw),
                }
            };
            return check(
                rc,
                if root.is_some() {
                    "MPI_Reduce"
                } else {
                    "MPI_Allreduce"
                },
            );
        }
        let all = self.all_contributions(send, root)?;
        if at_root {
            Self::fold(&all, send.len(), self.size(), op, recv);
        }
        Ok(())
    }

    /// `MPI_Scan`, or `MPI_Exscan` (`ex`: rank 0's `recv` is left as it is).
    pub(crate) fn scan<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: &impl ReduceOp<T>,
        ex: bool,
    ) -> Result<()> {
        op.check()?;
        if recv.len() != send.len() {
            return Err(len_err("scan: the receive buffer", recv.len(), send.len()));
        }
        let all = self.all_contributions(send, None)?;
        let k = if ex { self.rank } else { self.rank + 1 };
        if k > 0 {
            Self::fold(&all, send.len(), k, op, recv);
        }
        Ok(())
    }

    /// `MPI_Reduce_scatter_block`.
    pub(crate) fn reduce_scatter_block<T: Pod>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: &impl ReduceOp<T>,
    ) -> Result<()> {
        op.check()?;
        let n = self.size();
        if send.len() != n * recv.len() {
            return Err(len_err(
                "reduce_scatter_block_into: the send buffer",
                send.len(),
                n * recv.len(),
            ));
        }
        let mut total = vec![T::zeroed(); send.len()];
        self.reduce(send, &mut total, op, None)?;
        let c = recv.len();
        recv.copy_from_slice(&total[self.rank * c..(self.rank + 1) * c]);
        Ok(())
    }

    // ---- objects --------------------------------------------------------------------

    /// Every rank's bytes, an archive or any (`allgather_bytes`): the lengths, then the
    /// bytes (all ranks, or only the root's `Some`).
    pub(crate) fn gather_archives(
        &self,
        bytes: &[u8],
        root: Option<usize>,
    ) -> Result<Option<Vec<AlignedVec>>> {
        let n = self.size();
        let at_root = root.is_none_or(|r| r == self.rank);
        let mut lens = vec![0u64; if at_root { n } else { 0 }];
        self.gather_bytes(
            &(bytes.len() as u64).to_le_bytes(),
            bytemuck::cast_slice_mut(&mut lens),
            root,
        )?;
        let counts: Vec<usize> = lens.iter().map(|&l| l as usize).collect();
        let displs: Vec<usize> = counts
            .iter()
            .scan(0, |a, &c| {
                let d = *a;
                *a += c;
                Some(d)
            })
            .collect();
        let mut all = vec![0u8; counts.iter().sum()];
        self.gatherv_bytes(bytes, &mut all, &counts, &displs, root)?;
        if !at_root {
            return Ok(None);
        }
        Ok(Some(
            counts
                .iter()
                .zip(&displs)
                .map(|(&c, &d)| {
                    let mut v = AlignedVec::with_capacity(c);
                    v.extend_from_slice(&all[d..d + c]);
                    v
                })
                .collect(),
        ))
    }

    fn decode_all<T: Decode>(&self, archives: Vec<AlignedVec>) -> Result<Vec<T>> {
        archives
            .iter()
            .enumerate()
            .map(|(j, a)| codec::decode::<T>(a, j as i32, 0))
            .collect()
    }

    /// `Communicator::bcast_bytes`: the length, then the bytes.
    pub(crate) fn bcast_raw(&self, value: Option<Vec<u8>>, root: usize) -> Result<Vec<u8>> {
        let mut mine = match (value, self.rank == root) {
            (Some(v), true) => v,
            (None, true) => {
                return Err(Error::Usage(
                    "bcast_bytes: the root must pass Some(bytes)".into(),
                ));
            }
            (_, false) => Vec::new(),
        };
        let mut len = (mine.len() as u64).to_le_bytes();
        self.bcast_bytes(&mut len, root)?;
        if self.rank != root {
            mine = vec![0u8; u64::from_le_bytes(len) as usize];
        }
        // No second call for no bytes.
        if !mine.is_empty() {
            self.bcast_bytes(&mut mine, root)?;
        }
        Ok(mine)
    }

    pub(crate) fn bcast_obj<T: Encode + Decode>(&self, value: Option<T>, root: usize) -> Result<T> {
        let mine = match (&value, self.rank == root) {
            (Some(v), true) => codec::encode(v)?,
            (None, true) => {
                return Err(Error::Usage("bcast: the root must pass Some(value)".into()));
            }
            _ => AlignedVec::new(),
        };
        let mut len = (mine.len() as u64).to_le_bytes();
        self.bcast_bytes(&mut len, root)?;
        if self.rank == root {
            let mut b = mine.to_vec();
            self.bcast_bytes(&mut b, root)?;
            return Ok(value.expect("checked above"));
        }
        let mut buf = AlignedVec::with_capacity(u64::from_le_bytes(len) as usize);
        buf.resize(u64::from_le_bytes(len) as usize, 0);
        self.bcast_bytes(&mut buf, root)?;
        codec::decode::<T>(&buf, root as i32, 0)
    }

    pub(crate) fn gather_obj<T: Encode + Decode>(
        &self,
        value: &T,
        root: Option<usize>,
    ) -> Result<Option<Vec<T>>> {
        let bytes = codec::encode(value)?;
        match self.gather_archives(&bytes, root)? {
            Some(a) => Ok(Some(self.decode_all(a)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn scatter_obj<T: Encode + Decode>(
        &self,
        values: Option<&[T]>,
        root: usize,
    ) -> Result<T> {
        let n = self.size();
        let mut parts = Vec::new();
        if self.rank == root {
            let Some(vs) = values.filter(|v| v.len() == n) else {
                return Err(Error::Usage(format!(
                    "scatter: the root must pass Some of {n} values, one per rank"
                )));
            };
            parts = vs.iter().map(codec::encode).collect::<Result<Vec<_>>>()?;
        }
        let mine = self.scatter_raw(&parts, root, |len| {
            let mut v = AlignedVec::with_capacity(len);
            v.resize(len, 0);
            v
        })?;
        codec::decode::<T>(&mine, root as i32, 0)
    }

    /// A scatter of parts of any length (`parts`, one per rank, at the root only):
    /// each rank's length, then the parts, into the buffer `make` gives for this
    /// rank's length.
    pub(crate) fn scatter_raw<P: AsRef<[u8]>, B: AsMut<[u8]>>(
        &self,
        parts: &[P],
        root: usize,
        make: impl FnOnce(usize) -> B,
    ) -> Result<B> {
        let n = self.size();
        let (mut all, mut counts, mut displs) = (Vec::new(), vec![0usize; n], vec![0usize; n]);
        if self.rank == root {
            for (j, p) in parts.iter().enumerate() {
                displs[j] = all.len();
                counts[j] = p.as_ref().len();
                all.extend_from_slice(p.as_ref());
            }
        }
        let mut lens = [0u64; 1];
        let lens64: Vec<u64> = counts.iter().map(|&c| c as u64).collect();
        self.scatter_bytes(
            bytemuck::cast_slice(&lens64),
            bytemuck::cast_slice_mut(&mut lens),
            root,
        )?;
        let mut mine = make(lens[0] as usize);
        self.scatterv_bytes(&all, &counts, &displs, mine.as_mut(), root)?;
        Ok(mine)
    }

    pub(crate) fn alltoall_obj<T: Encode + Decode>(&self, values: &[T]) -> Result<Vec<T>> {
        let n = self.size();
        if values.len() != n {
            return Err(Error::Usage(format!(
                "alltoall: {} values given, one per rank ({n}) needed",
                values.len()
            )));
        }
        let parts = values
            .iter()
            .map(codec::encode)
            .collect::<Result<Vec<_>>>()?;
        let got = self.alltoall_raw(&parts, |b| {
            let mut v = AlignedVec::with_capacity(b.len());
            v.extend_from_slice(b);
            v
        })?;
        got.iter()
            .enumerate()
            .map(|(j, v)| codec::decode::<T>(v, j as i32, 0))
            .collect()
    }

    /// An all-to-all of parts of any length (`parts[j]` to rank `j`): the lengths,
    /// then the parts; what each rank sent here made by `make`, in rank order.
    pub(crate) fn alltoall_raw<P: AsRef<[u8]>, B>(
        &self,
        parts: &[P],
        make: impl Fn(&[u8]) -> B,
    ) -> Result<Vec<B>> {
        let n = self.size();
        let (mut all, mut sc, mut sd) = (Vec::new(), vec![0usize; n], vec![0usize; n]);
        for (j, p) in parts.iter().enumerate() {
            sd[j] = all.len();
            sc[j] = p.as_ref().len();
            all.extend_from_slice(p.as_ref());
        }
        let sc64: Vec<u64> = sc.iter().map(|&c| c as u64).collect();
        let mut rc64 = vec![0u64; n];
        self.alltoall_bytes(
            bytemuck::cast_slice(&sc64),
            bytemuck::cast_slice_mut(&mut rc64),
        )?;
        let rc: Vec<usize> = rc64.iter().map(|&c| c as usize).collect();
        let rd: Vec<usize> = rc
            .iter()
            .scan(0, |a, &c| {
                let d = *a;
                *a += c;
                Some(d)
            })
            .collect();
        let mut recv = vec![0u8; rc.iter().sum()];
        self.alltoallv_bytes(&all, &sc, &sd, &mut recv, &rc, &rd)?;
        Ok((0..n).map(|j| make(&recv[rd[j]..rd[j] + rc[j]])).collect())
    }

    /// Object reductions: every value gathered, combined in rank order.
    pub(crate) fn reduce_obj<T: Encode + Decode>(
        &self,
        value: &T,
        op: &dyn Fn(&T, &T) -> Result<T>,
        root: Option<usize>,
    ) -> Result<Option<T>> {
        let Some(all) = self.gather_obj(value, root)? else {
            return Ok(None);
        };
        let mut it = all.into_iter();
        let mut acc = it.next().expect("a communicator has at least one rank");
        for x in it {
            acc = op(&acc, &x)?;
        }
        Ok(Some(acc))
    }

    /// Object scans: `None` at rank 0 for the exclusive form.
    pub(crate) fn scan_obj<T: Encode + Decode>(
        &self,
        value: &T,
        op: &dyn Fn(&T, &T) -> Result<T>,
        ex: bool,
    ) -> Result<Option<T>> {
        let all = self.gather_obj(value, None)?.expect("every rank gets it");
        let k = if ex { self.rank } else { self.rank + 1 };
        let mut it = all.into_iter().take(k);
        let Some(mut acc) = it.next() else {
            return Ok(None);
        };
        for x in it {
            acc = op(&acc, &x)?;
        }
        Ok(Some(acc))
    }
}
