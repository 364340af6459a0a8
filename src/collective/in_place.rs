//! `MPI_IN_PLACE` for the collectives where MPI allows it (mpi4py's `MPI.IN_PLACE`):
//! one buffer holds this rank's contribution and receives the result. Each form keeps
//! the contribution aside in a copy of its own part (the ranks' data travels through
//! the shared collective area anyway), then runs the ordinary collective, so the rules,
//! errors and mismatch checks are those of the `_into` forms.
//! [`allreduce_in_place`](crate::Communicator::allreduce_in_place) lives with the
//! others in `slices.rs`: its algorithms work in place without the copy.

use bytemuck::Pod;

use super::op::ReduceOp;
use crate::call::Call;
use crate::comm::{Communicator, Rank};
use crate::error::{Error, ErrorClass, Result};

impl Communicator {
    /// The length of one rank's block of `buf`, which holds one per rank.
    fn block_of<T>(&self, buf: &[T], call: &str) -> Result<usize> {
        let n = self.size() as usize;
        if buf.len() % n != 0 {
            return Err(Error::invalid(
                ErrorClass::Count,
                format!(
                    "{call}: the buffer holds {} elements, not a whole block for each of the \
                     {n} ranks",
                    buf.len()
                ),
            ));
        }
        Ok(buf.len() / n)
    }

    /// [`reduce_into`](Self::reduce_into) in place: at the root `buf` holds its
    /// contribution and receives the result; elsewhere it is the contribution and is not
    /// changed (`MPI_Reduce` with `MPI_IN_PLACE` at the root; MPI 4.1 §6.9.1).
    ///
    /// # Errors
    ///
    /// As [`reduce_into`](Self::reduce_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut v = [world.rank() as f64 + 1.0; 3];
    /// world.reduce_in_place(&mut v, shmpi::Op::Sum, 0)?;
    /// if world.rank() == 0 {
    ///     let n = world.size() as f64;
    ///     assert_eq!(v, [n * (n + 1.0) / 2.0; 3]);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn reduce_in_place<T: Pod>(
        &self,
        buf: &mut [T],
        op: impl ReduceOp<T>,
        root: Rank,
    ) -> Result<()> {
        if self.rank() == root {
            let mine = buf.to_vec();
            self.reduce_into(&mine, buf, op, root)
        } else {
            self.reduce_into(buf, &mut [], op, root)
        }
    }

    /// [`gather_into`](Self::gather_into) in place: at the root `buf` is the whole
    /// receive buffer (`size` blocks) whose block `root` already holds the root's
    /// contribution; elsewhere it is the contribution (`MPI_Gather` with `MPI_IN_PLACE`).
    ///
    /// # Errors
    ///
    /// As [`gather_into`](Self::gather_into); [`Error::InvalidArgument`] of class
    /// `Count` if the root's buffer is not `size` whole blocks.
    ///
    /// MPI 4.1 §6.5.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank(), world.size());
    /// // mpi4py: comm.Gather(MPI.IN_PLACE if comm.rank == 0 else mine, buf, root=0)
    /// let mut buf = if me == 0 { vec![0i32; n as usize] } else { vec![me] };
    /// buf[0] = me; // the root's own block, and the others' contribution
    /// world.gather_in_place(&mut buf, 0)?;
    /// if me == 0 {
    ///     assert_eq!(buf, (0..n).collect::<Vec<_>>());
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn gather_in_place<T: Pod>(&self, buf: &mut [T], root: Rank) -> Result<()> {
        if self.rank() == root {
            let c = self.args(Call::Gather, || self.block_of(buf, "gather_in_place"))?;
            let r = root as usize;
            let mine = buf[r * c..(r + 1) * c].to_vec();
            self.gather_into(&mine, buf, root)
        } else {
            self.gather_into(buf, &mut [], root)
        }
    }

    /// [`scatter_into`](Self::scatter_into) in place: at the root `buf` is the whole
    /// send buffer (`size` blocks), and its block `root` stays where it is; elsewhere it
    /// receives this rank's block (`MPI_Scatter` with `MPI_IN_PLACE`).
    ///
    /// # Errors
    ///
    /// As [`scatter_into`](Self::scatter_into); [`Error::InvalidArgument`] of class
    /// `Count` if the root's buffer is not `size` whole blocks.
    ///
    /// MPI 4.1 §6.6.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank(), world.size());
    /// let mut buf = if me == 0 { (0..n).map(|r| r * 10).collect() } else { vec![0i32] };
    /// world.scatter_in_place(&mut buf, 0)?;
    /// assert_eq!(buf[0], me * 10); // at the root, block 0 is its own
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scatter_in_place<T: Pod>(&self, buf: &mut [T], root: Rank) -> Result<()> {
        if self.rank() == root {
            let c = self.args(Call::Scatter, || self.block_of(buf, "scatter_in_place"))?;
            let mut mine = vec![T::zeroed(); c];
            self.scatter_into(buf, &mut mine, root)
        } else {
            self.scatter_into(&[], buf, root)
        }
    }

    /// [`allgather_into`](Self::allgather_into) in place: `buf` holds `size` blocks, this
    /// rank's contribution already in block `rank` (`MPI_Allgather` with `MPI_IN_PLACE`).
    ///
    /// # Errors
    ///
    /// As [`allgather_into`](Self::allgather_into); [`Error::InvalidArgument`] of class
    /// `Count` if `buf` is not `size` whole blocks.
    ///
    /// MPI 4.1 §6.7.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut all = vec![0i32; world.size() as usize];
    /// all[world.rank() as usize] = world.rank() * 10;
    /// world.allgather_in_place(&mut all)?;
    /// assert_eq!(all, (0..world.size()).map(|r| r * 10).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn allgather_in_place<T: Pod>(&self, buf: &mut [T]) -> Result<()> {
        self.args(Call::Allgather, || self.block_of(buf, "allgather_in_place"))?;
        #[cfg(feature = "mpi")]
        if self.inner.mpi.is_some() {
            // The MPI backend does not map MPI_IN_PLACE: it sends a copy of this block.
            let (me, c) = (self.rank() as usize, buf.len() / self.size() as usize);
            let mine = buf[me * c..(me + 1) * c].to_vec();
            return self.allgather_into(&mine, buf);
        }
        self.allgather_impl(None, buf)
    }

    /// [`alltoall_into`](Self::alltoall_into) in place: block `i` of `buf` goes to rank
    /// `i`, and is replaced by what rank `i` sent to this one (`MPI_Alltoall` with
    /// `MPI_IN_PLACE`).
    ///
    /// # Errors
    ///
    /// As [`alltoall_into`](Self::alltoall_into); [`Error::InvalidArgument`] of class
    /// `Count` if `buf` is not `size` whole blocks.
    ///
    /// MPI 4.1 §6.8.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank(), world.size());
    /// let mut buf: Vec<[i32; 2]> = (0..n).map(|j| [me, j]).collect();
    /// world.alltoall_in_place(&mut buf)?;
    /// assert_eq!(buf, (0..n).map(|i| [i, me]).collect::<Vec<_>>());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn alltoall_in_place<T: Pod>(&self, buf: &mut [T]) -> Result<()> {
        self.args(Call::Alltoall, || self.block_of(buf, "alltoall_in_place"))?;
        let send = buf.to_vec();
        self.alltoall_into(&send, buf)
    }

    /// [`scan_into`](Self::scan_into) in place (`MPI_Scan` with `MPI_IN_PLACE`).
    ///
    /// # Errors
    ///
    /// As [`scan_into`](Self::scan_into), less the length check.
    ///
    /// MPI 4.1 §6.11.1.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let r = world.rank() + 1;
    /// let mut buf = [r];
    /// world.scan_in_place(&mut buf, shmpi::Op::Sum)?;
    /// assert_eq!(buf, [r * (r + 1) / 2]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn scan_in_place<T: Pod>(&self, buf: &mut [T], op: impl ReduceOp<T>) -> Result<()> {
        let mine = buf.to_vec();
        self.scan_into(&mine, buf, op)
    }

    /// [`exscan_into`](Self::exscan_into) in place: rank 0's `buf` keeps its
    /// contribution (`MPI_Exscan` with `MPI_IN_PLACE`; MPI leaves it undefined).
    ///
    /// # Errors
    ///
    /// As [`exscan_into`](Self::exscan_into), less the length check.
    ///
    /// MPI 4.1 §6.11.2.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let r = world.rank();
    /// let mut buf = [r + 1];
    /// world.exscan_in_place(&mut buf, shmpi::Op::Sum)?;
    /// assert_eq!(buf, [if r == 0 { 1 } else { r * (r + 1) / 2 }]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn exscan_in_place<T: Pod>(&self, buf: &mut [T], op: impl ReduceOp<T>) -> Result<()> {
        let mine = buf.to_vec();
        self.exscan_into(&mine, buf, op)
    }

    /// [`reduce_scatter_block_into`](Self::reduce_scatter_block_into) in place: `buf`
    /// holds `size` blocks of contributions, and this rank's block of the result lands in
    /// its first block (`MPI_Reduce_scatter_block` with `MPI_IN_PLACE`).
    ///
    /// # Errors
    ///
    /// As [`reduce_scatter_block_into`](Self::reduce_scatter_block_into);
    /// [`Error::InvalidArgument`] of class `Count` if `buf` is not `size` whole blocks.
    ///
    /// MPI 4.1 §6.10.1.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// let mut buf: Vec<i32> = (0..n).collect(); // block j sums to j * size
    /// world.reduce_scatter_block_in_place(&mut buf, shmpi::Op::Sum)?;
    /// assert_eq!(buf[0], world.rank() * n);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn reduce_scatter_block_in_place<T: Pod>(
        &self,
        buf: &mut [T],
        op: impl ReduceOp<T>,
    ) -> Result<()> {
        let c = self.args(Call::ReduceScatterBlock, || {
            self.block_of(buf, "reduce_scatter_block_in_place")
        })?;
        let send = buf.to_vec();
        self.reduce_scatter_block_into(&send, &mut buf[..c], op)
    }
}
