//! Non-blocking collectives over MPI (`ibarrier`, `ibcast_into`, `ireduce_into`,
//! `iallreduce_into`, `iallgather_into`, `igather_into`, `iscatter_into`,
//! `ialltoall_into` and the `v` forms): each is MPI's own non-blocking collective
//! (`MPI_Ibarrier`, `MPI_Ibcast`, ...), kept with the vectors MPI reads and writes
//! until it completes, so the request owns its buffers as on the shared segment.
//!
//! A reduction with a built-in op on a machine type is `MPI_Ireduce`/`MPI_Iallreduce`
//! with MPI's op and datatype; any other (`MinLoc`/`MaxLoc` pairs) gathers the
//! contributions (`MPI_Igather`/`MPI_Iallgather`) and folds them in rank order when it
//! completes, as the blocking collectives do. A request dropped before it completes
//! hands its MPI request and vectors to the environment, which waits for it before
//! `MPI_Finalize` (MPI cannot cancel a collective).

use std::ffi::c_int;
use std::rc::{Rc, Weak};

use ::mpi::ffi;
use bytemuck::Pod;

use super::coll::{byte, cint, datatype, mpi_op, mptr, ptr};
use super::{Comm, Env, check, test_raw, wait_raw};
use crate::collective::op::Op;
use crate::error::Result;

/// What the result is once MPI has completed the operation.
enum Finish<T> {
    /// The vector MPI wrote.
    Out,
    /// The vector this rank sent (a reduction's non-root).
    Send,
    /// `n` contributions of `len` elements, folded in rank order with `op`.
    Fold(Op, fn(Op, &mut [T], &[T]), usize),
}

/// An MPI non-blocking collective in flight, with the vectors it uses.
pub(crate) struct MpiColl<T: Pod> {
    env: Weak<Env>,
    req: ffi::MPI_Request,
    send: Vec<T>,
    out: Vec<T>,
    finish: Finish<T>,
    /// The counts and displacements of a `v` form, which MPI reads until the operation
    /// completes (MPI 4.1 §6.12: they must not change before then).
    arrays: Vec<Vec<c_int>>,
    /// Whether MPI has completed it (its request is null then).
    complete: bool,
}

impl<T: Pod> MpiColl<T> {
    fn start(
        comm: &Comm,
        send: Vec<T>,
        mut out: Vec<T>,
        finish: Finish<T>,
        call: &str,
        f: impl FnOnce(&[T], &mut [T], *mut ffi::MPI_Request) -> c_int,
    ) -> Result<Self> {
        // SAFETY: a null request is a valid value to be overwritten by the call.
        let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
        check(f(&send, &mut out, &mut req), call)?;
        Ok(MpiColl {
            env: Rc::downgrade(&comm.env),
            req,
            send,
            out,
            finish,
            arrays: Vec::new(),
            complete: false,
        })
    }

    /// Whether the operation has completed (`MPI_Test`).
    pub(crate) fn is_done(&mut self) -> Result<bool> {
        if !self.complete {
            self.complete = test_raw(&mut self.req)?;
        }
        Ok(self.complete)
    }

    /// Whether the operation was found complete (no call into MPI).
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Blocks until the operation completes (`MPI_Wait`) and returns its result.
    pub(crate) fn wait(&mut self) -> Result<Vec<T>> {
        if !self.complete {
            wait_raw(&mut self.req)?;
            self.complete = true;
        }
        Ok(self.result())
    }

    fn result(&mut self) -> Vec<T> {
        match self.finish {
            Finish::Out => std::mem::take(&mut self.out),
            Finish::Send => std::mem::take(&mut self.send),
            Finish::Fold(op, apply, len) => {
                let all = std::mem::take(&mut self.out);
                let mut acc = all[..len].to_vec();
                for part in all.chunks(len.max(1)).skip(1) {
                    apply(op, &mut acc, part);
                }
                acc
            }
        }
    }
}

impl<T: Pod> Drop for MpiColl<T> {
    fn drop(&mut self) {
        if self.complete {
            return;
        }
        let keep = (
            std::mem::take(&mut self.send),
            std::mem::take(&mut self.out),
            std::mem::take(&mut self.arrays),
        );
        match self.env.upgrade() {
            Some(env) => env.adopt(self.req, Box::new(keep), super::Orphan::Other),
            // MPI has finalized, so it touches nothing any more; keeping the vectors is
            // the safe choice all the same.
            None => std::mem::forget(keep),
        }
    }
}

/// `v`'s entries in bytes of `T`, as MPI's `int`s.
fn bytes_of<T>(v: &[usize], what: &str) -> Result<Vec<c_int>> {
    v.iter()
        .map(|&x| cint(x.saturating_mul(size_of::<T>()), what))
        .collect()
}

impl Comm {
    pub(crate) fn ibarrier(&self) -> Result<MpiColl<u8>> {
        MpiColl::start(
            self,
            Vec::new(),
            Vec::new(),
            Finish::Out,
            "MPI_Ibarrier",
            |_, _, r| {
                // SAFETY: `r` points to a request slot; the communicator is valid.
                unsafe { ffi::MPI_Ibarrier(self.raw, r) }
            },
        )
    }

    pub(crate) fn ibcast<T: Pod>(&self, buf: Vec<T>, root: usize) -> Result<MpiColl<T>> {
        let n = cint(size_of_val(buf.as_slice()), "ibcast_into")?;
        MpiColl::start(
            self,
            Vec::new(),
            buf,
            Finish::Out,
            "MPI_Ibcast",
            |_, out, r| {
                // SAFETY: `out` holds `n` bytes and lives in the request until MPI is done
                // with it (a vector's heap buffer does not move with the vector).
                unsafe { ffi::MPI_Ibcast(mptr(out), n, byte(), root as c_int, self.raw, r) }
            },
        )
    }

    pub(crate) fn iallgather<T: Pod>(&self, send: Vec<T>) -> Result<MpiColl<T>> {
        let out = vec![T::zeroed(); send.len() * self.size()];
        let n = cint(size_of_val(send.as_slice()), "iallgather_into")?;
        MpiColl::start(
            self,
            send,
            out,
            Finish::Out,
            "MPI_Iallgather",
            |s, out, r| {
                // SAFETY: `s` holds `n` bytes, `out` `size * n`; both live in the request.
                unsafe { ffi::MPI_Iallgather(ptr(s), n, byte(), mptr(out), n, byte(), self.raw, r) }
            },
        )
    }

    /// `MPI_Ireduce` to `root`, or `MPI_Iallreduce` (`root` is `None`).
    pub(crate) fn igather<T: Pod>(&self, send: Vec<T>, root: usize) -> Result<MpiColl<T>> {
        let here = root == self.rank;
        let out = vec![T::zeroed(); if here { send.len() * self.size() } else { 0 }];
        let n = cint(size_of_val(send.as_slice()), "igather_into")?;
        let keep = if here { Finish::Out } else { Finish::Send };
        MpiColl::start(self, send, out, keep, "MPI_Igather", |s, out, r| {
            // SAFETY: `s` holds `n` bytes, `out` `size * n` at the root (MPI writes
            // nothing elsewhere); both live in the request.
            unsafe {
                ffi::MPI_Igather(
                    ptr(s),
                    n,
                    byte(),
                    mptr(out),
                    n,
                    byte(),
                    root as c_int,
                    self.raw,
                    r,
                )
            }
        })
    }

    pub(crate) fn iscatter<T: Pod>(
        &self,
        send: Vec<T>,
        recv: Vec<T>,
        root: usize,
    ) -> Result<MpiColl<T>> {
        let n = cint(size_of_val(recv.as_slice()), "iscatter_into")?;
        MpiColl::start(
            self,
            send,
            recv,
            Finish::Out,
            "MPI_Iscatter",
            |s, out, r| {
                // SAFETY: `out` holds `n` bytes, and the root's `s` `size * n` (checked by the
                // caller; MPI reads it only there); both live in the request.
                unsafe {
                    ffi::MPI_Iscatter(
                        ptr(s),
                        n,
                        byte(),
                        mptr(out),
                        n,
                        byte(),
                        root as c_int,
                        self.raw,
                        r,
                    )
                }
            },
        )
    }

    pub(crate) fn ialltoall<T: Pod>(&self, send: Vec<T>) -> Result<MpiColl<T>> {
        let out = vec![T::zeroed(); send.len()];
        let n = cint(size_of_val(send.as_slice()) / self.size(), "ialltoall_into")?;
        MpiColl::start(
            self,
            send,
            out,
            Finish::Out,
            "MPI_Ialltoall",
            |s, out, r| {
                // SAFETY: `s` and `out` hold `size * n` bytes each (the caller checked that
                // `size` divides the length); both live in the request.
                unsafe { ffi::MPI_Ialltoall(ptr(s), n, byte(), mptr(out), n, byte(), self.raw, r) }
            },
        )
    }

    pub(crate) fn ireduce<T: Pod>(
        &self,
        send: Vec<T>,
        op: Op,
        apply: fn(Op, &mut [T], &[T]),
        root: Option<usize>,
    ) -> Result<MpiColl<T>> {
        let len = send.len();
        let here = root.is_none_or(|r| r == self.rank);
        let keep = if here { Finish::Out } else { Finish::Send };
        let call = if root.is_some() {
            "MPI_Ireduce"
        } else {
            "MPI_Iallreduce"
        };
        if let (Some(dt), Some(mop)) = (datatype::<T>(), mpi_op(op.code())) {
            let c = cint(len, "ireduce_into")?;
            let out = vec![T::zeroed(); if here { len } else { 0 }];
            return MpiColl::start(self, send, out, keep, call, |s, out, r| {
                // SAFETY: `s` holds `c` elements of `dt`, and `out` too where MPI writes
                // it (at the root, or everywhere for the allreduce); both live in the
                // request.
                unsafe {
                    match root {
                        Some(root) => ffi::MPI_Ireduce(
                            ptr(s),
                            mptr(out),
                            c,
                            dt,
                            mop,
                            root as c_int,
                            self.raw,
                            r,
                        ),
                        None => ffi::MPI_Iallreduce(ptr(s), mptr(out), c, dt, mop, self.raw, r),
                    }
                }
            });
        }
        // No MPI op for it: gather the contributions, fold them on completion.
        let n = cint(size_of_val(send.as_slice()), "ireduce_into")?;
        let out = vec![T::zeroed(); if here { len * self.size() } else { 0 }];
        let finish = if here {
            Finish::Fold(op, apply, len)
        } else {
            Finish::Send
        };
        MpiColl::start(self, send, out, finish, call, |s, out, r| {
            // SAFETY: `s` holds `n` bytes, `out` `size * n` where MPI writes it; both live
            // in the request.
            unsafe {
                match root {
                    Some(root) => ffi::MPI_Igather(
                        ptr(s),
                        n,
                        byte(),
                        mptr(out),
                        n,
                        byte(),
                        root as c_int,
                        self.raw,
                        r,
                    ),
                    None => {
                        ffi::MPI_Iallgather(ptr(s), n, byte(), mptr(out), n, byte(), self.raw, r)
                    }
                }
            }
        })
    }

    /// `MPI_Igatherv` (the caller checked `counts` and `displs` against `recv` at the
    /// root, where alone MPI reads them).
    pub(crate) fn igatherv<T: Pod>(
        &self,
        send: Vec<T>,
        recv: Vec<T>,
        counts: &[usize],
        displs: &[usize],
        root: usize,
    ) -> Result<MpiColl<T>> {
        let here = root == self.rank;
        let n = cint(size_of_val(send.as_slice()), "igatherv_into")?;
        let (cs, ds) = if here {
            (
                bytes_of::<T>(counts, "igatherv_into")?,
                bytes_of::<T>(displs, "igatherv_into")?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut m = MpiColl::start(
            self,
            send,
            recv,
            Finish::Out,
            "MPI_Igatherv",
            |s, out, r| {
                // SAFETY: `s` holds `n` bytes; at the root `out` holds every block at its
                // displacement (checked by the caller), and MPI reads the arrays and `out`
                // nowhere else. All of them live in the request until MPI is done.
                unsafe {
                    ffi::MPI_Igatherv(
                        ptr(s),
                        n,
                        byte(),
                        mptr(out),
                        cs.as_ptr(),
                        ds.as_ptr(),
                        byte(),
                        root as c_int,
                        self.raw,
                        r,
                    )
                }
            },
        )?;
        m.arrays = vec![cs, ds];
        Ok(m)
    }

    /// `MPI_Iscatterv` (the caller checked `counts` and `displs` against `send` at the
    /// root, where alone MPI reads them).
    pub(crate) fn iscatterv<T: Pod>(
        &self,
        send: Vec<T>,
        counts: &[usize],
        displs: &[usize],
        recv: Vec<T>,
        root: usize,
    ) -> Result<MpiColl<T>> {
        let here = root == self.rank;
        let n = cint(size_of_val(recv.as_slice()), "iscatterv_into")?;
        let (cs, ds) = if here {
            (
                bytes_of::<T>(counts, "iscatterv_into")?,
                bytes_of::<T>(displs, "iscatterv_into")?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut m = MpiColl::start(
            self,
            send,
            recv,
            Finish::Out,
            "MPI_Iscatterv",
            |s, out, r| {
                // SAFETY: `out` holds `n` bytes; at the root `s` holds every block at its
                // displacement (checked by the caller), and MPI reads the arrays and `s`
                // nowhere else. All of them live in the request until MPI is done.
                unsafe {
                    ffi::MPI_Iscatterv(
                        ptr(s),
                        cs.as_ptr(),
                        ds.as_ptr(),
                        byte(),
                        mptr(out),
                        n,
                        byte(),
                        root as c_int,
                        self.raw,
                        r,
                    )
                }
            },
        )?;
        m.arrays = vec![cs, ds];
        Ok(m)
    }

    /// `MPI_Iallgatherv` (the caller checked `counts` and `displs` against `recv`).
    pub(crate) fn iallgatherv<T: Pod>(
        &self,
        send: Vec<T>,
        recv: Vec<T>,
        counts: &[usize],
        displs: &[usize],
    ) -> Result<MpiColl<T>> {
        let n = cint(size_of_val(send.as_slice()), "iallgatherv_into")?;
        let cs = bytes_of::<T>(counts, "iallgatherv_into")?;
        let ds = bytes_of::<T>(displs, "iallgatherv_into")?;
        let mut m = MpiColl::start(
            self,
            send,
            recv,
            Finish::Out,
            "MPI_Iallgatherv",
            |s, out, r| {
                // SAFETY: `s` holds `n` bytes, `out` every block at its displacement (checked
                // by the caller); all of them live in the request until MPI is done.
                unsafe {
                    ffi::MPI_Iallgatherv(
                        ptr(s),
                        n,
                        byte(),
                        mptr(out),
                        cs.as_ptr(),
                        ds.as_ptr(),
                        byte(),
                        self.raw,
                        r,
                    )
                }
            },
        )?;
        m.arrays = vec![cs, ds];
        Ok(m)
    }

    /// `MPI_Ialltoallv` (the caller checked the counts and displacements against `send`
    /// and `recv`).
    pub(crate) fn ialltoallv<T: Pod>(
        &self,
        send: Vec<T>,
        scounts: &[usize],
        sdispls: &[usize],
        recv: Vec<T>,
        rcounts: &[usize],
        rdispls: &[usize],
    ) -> Result<MpiColl<T>> {
        let what = "ialltoallv_into";
        let (sc, sd) = (bytes_of::<T>(scounts, what)?, bytes_of::<T>(sdispls, what)?);
        let (rc, rd) = (bytes_of::<T>(rcounts, what)?, bytes_of::<T>(rdispls, what)?);
        let mut m = MpiColl::start(
            self,
            send,
            recv,
            Finish::Out,
            "MPI_Ialltoallv",
            |s, out, r| {
                // SAFETY: `s` and `out` hold every block at its displacement (checked by the
                // caller); all of them live in the request until MPI is done.
                unsafe {
                    ffi::MPI_Ialltoallv(
                        ptr(s),
                        sc.as_ptr(),
                        sd.as_ptr(),
                        byte(),
                        mptr(out),
                        rc.as_ptr(),
                        rd.as_ptr(),
                        byte(),
                        self.raw,
                        r,
                    )
                }
            },
        )?;
        m.arrays = vec![sc, sd, rc, rd];
        Ok(m)
    }
}
