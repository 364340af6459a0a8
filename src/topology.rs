//! Cartesian topologies (MPI 4.1 section 8.5): [`dims_create`], and
//! [`Communicator::cart_create`] returning a [`CartComm`] that knows each rank's
//! coordinates on a grid, its neighbours ([`CartComm::shift`]) and its sub-grids
//! ([`CartComm::sub`]).
//!
//! Ranks are laid out in row-major order (the last dimension varies fastest), as MPI
//! requires. shmpi does not reorder ranks (`reorder` is accepted and ignored, which
//! MPI allows): on one machine every rank is as close to every other. A `CartComm` is
//! a communicator made by `split` from its parent, so every point-to-point call and
//! collective works on it through `Deref`.

use std::ops::Deref;

use crate::call::Call;
use crate::collective::comms::UNDEFINED;
use crate::comm::{Communicator, PROC_NULL, Rank};
use crate::error::{Error, ErrorClass, Result};

/// Fills the zero entries of `dims` so that the product of all entries is `nnodes`,
/// with the filled-in dimensions as close to each other as possible and in
/// non-increasing order (`MPI_Dims_create`, mpi4py `MPI.Compute_dims`; MPI 4.1
/// §8.5.2). Non-zero entries are kept. A local call.
///
/// # Errors
///
/// [`Error::InvalidArgument`] of class `Dims` if `nnodes` is not positive, if an entry
/// is negative, or if no grid of that shape has `nnodes` points (the product of the
/// non-zero entries does not divide `nnodes`, or equals another number where no entry
/// is left to choose).
///
/// # Examples
///
/// ```
/// let mut dims = [0, 0];
/// shmpi::dims_create(12, &mut dims)?;
/// assert_eq!(dims, [4, 3]);
/// let mut dims = [0, 3, 0];
/// shmpi::dims_create(24, &mut dims)?;
/// assert_eq!(dims, [4, 3, 2]);
/// # Ok::<(), shmpi::Error>(())
/// ```
pub fn dims_create(nnodes: i32, dims: &mut [i32]) -> Result<()> {
    if nnodes < 1 {
        return Err(Error::invalid(
            ErrorClass::Dims,
            format!("dims_create: the number of nodes must be positive, not {nnodes}"),
        ));
    }
    if let Some(d) = dims.iter().find(|&&d| d < 0) {
        return Err(Error::invalid(
            ErrorClass::Dims,
            format!(
                "dims_create: dimensions must be non-negative (0: choose), not {d} in {dims:?}"
            ),
        ));
    }
    let fixed: i64 = dims.iter().filter(|&&d| d > 0).map(|&d| d as i64).product();
    let free: Vec<usize> = (0..dims.len()).filter(|&i| dims[i] == 0).collect();
    if nnodes as i64 % fixed != 0 || (free.is_empty() && fixed != nnodes as i64) {
        return Err(Error::invalid(
            ErrorClass::Dims,
            format!(
                "dims_create: no grid of shape {dims:?} has {nnodes} points (the given \
             dimensions multiply to {fixed}, which must divide {nnodes}{})",
                if free.is_empty() { " exactly" } else { "" }
            ),
        ));
    }
    // Largest prime factors first, each into the currently smallest free dimension.
    let mut rest = nnodes as i64 / fixed;
    let mut primes = Vec::new();
    let mut p = 2;
    while p * p <= rest {
        while rest % p == 0 {
            primes.push(p);
            rest /= p;
        }
        p += 1;
    }
    if rest > 1 {
        primes.push(rest);
    }
    let mut sizes = vec![1i64; free.len()];
    for &p in primes.iter().rev() {
        if let Some(s) = sizes.iter_mut().min() {
            *s *= p;
        }
    }
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    for (&i, &s) in free.iter().zip(&sizes) {
        dims[i] = s as i32;
    }
    Ok(())
}

/// The shape of a Cartesian grid: its dimensions and which of them wrap around.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grid {
    dims: Vec<i32>,
    periods: Vec<bool>,
}

impl Grid {
    fn size(&self) -> i64 {
        self.dims.iter().map(|&d| d as i64).product()
    }

    /// Row-major coordinates of `rank`.
    fn coords(&self, mut rank: i32) -> Vec<i32> {
        let mut c = vec![0; self.dims.len()];
        for (k, &d) in self.dims.iter().enumerate().rev() {
            c[k] = rank % d;
            rank /= d;
        }
        c
    }

    /// The rank at `coords`, wrapping periodic dimensions; `None` off a non-periodic
    /// edge.
    fn rank(&self, coords: &[i32]) -> Option<i32> {
        let mut r: i64 = 0;
        for ((&c, &d), &p) in coords.iter().zip(&self.dims).zip(&self.periods) {
            let c = if p {
                (c as i64).rem_euclid(d as i64)
            } else if (0..d).contains(&c) {
                c as i64
            } else {
                return None;
            };
            r = r * d as i64 + c;
        }
        Some(r as i32)
    }
}

/// A communicator with a Cartesian topology (`MPI_Cart_create`'s result, mpi4py
/// `Cartcomm`). It dereferences to its [`Communicator`], so messages and collectives
/// are sent on it as on any other.
#[derive(Debug, Clone)]
pub struct CartComm {
    comm: Communicator,
    grid: Grid,
}

impl Deref for CartComm {
    type Target = Communicator;

    fn deref(&self) -> &Communicator {
        &self.comm
    }
}

impl Communicator {
    /// Makes a communicator of the first `dims.iter().product()` ranks, arranged on a
    /// grid of shape `dims` whose dimension `k` wraps around if `periods[k]`
    /// (`MPI_Cart_create`, mpi4py `comm.Create_cart(dims, periods, reorder)`). Ranks
    /// beyond the grid get `None` (`MPI_COMM_NULL`). Ranks keep their order (`reorder`
    /// is accepted for compatibility; shmpi never needs to reorder). Collective: every
    /// rank calls it with the same arguments. MPI 4.1 §8.5.1.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class `Dims` if `dims` and `periods` differ in
    ///   length, a dimension is not positive, or the grid has more points than the
    ///   communicator has ranks (checked on each rank before the collective part);
    /// - the errors of [`split`](Communicator::split), which makes the new communicator:
    ///   [`Error::Usage`] when the communicator areas are used up,
    ///   [`Error::InvalidArgument`] when the ranks' calls do not match,
    ///   [`Error::PeerFailed`], [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let mut dims = [0, 0];
    /// shmpi::dims_create(world.size(), &mut dims)?;
    /// // mpi4py: grid = comm.Create_cart(dims, periods=[True, False])
    /// let grid = world.cart_create(&dims, &[true, false], false)?;
    /// let grid = grid.expect("dims_create's grid holds every rank");
    /// assert_eq!(grid.cart_rank(&grid.coords())?, grid.rank());
    /// let (src, dst) = grid.shift(0, 1)?; // periodic: both neighbours exist
    /// assert!(src != shmpi::PROC_NULL && dst != shmpi::PROC_NULL);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn cart_create(
        &self,
        dims: &[i32],
        periods: &[bool],
        reorder: bool,
    ) -> Result<Option<CartComm>> {
        let grid = self.args(Call::CartCreate, || {
            if dims.len() != periods.len() {
                return Err(Error::invalid(
                    ErrorClass::Dims,
                    format!(
                        "cart_create: {} dimensions but {} periods; give one period per dimension",
                        dims.len(),
                        periods.len()
                    ),
                ));
            }
            if let Some(d) = dims.iter().find(|&&d| d < 1) {
                return Err(Error::invalid(
                    ErrorClass::Dims,
                    format!("cart_create: every dimension must be positive, not {d} in {dims:?}"),
                ));
            }
            let grid = Grid {
                dims: dims.to_vec(),
                periods: periods.to_vec(),
            };
            let size = self.size();
            if grid.size() > size as i64 {
                return Err(Error::invalid(
                    ErrorClass::Dims,
                    format!(
                        "cart_create: a grid of shape {dims:?} has {} points but this communicator has \
                     only {size} ranks (shmpi::dims_create chooses a shape that fits)",
                        grid.size()
                    ),
                ));
            }
            Ok(grid)
        })?;
        // Every rank must pass the same shape: a rank that passed another fails the call
        // on every rank, instead of each getting a grid of its own.
        let args = dims.iter().map(|&d| d as u64);
        let args = args.chain(periods.iter().map(|&p| u64::from(p) + 2));
        self.sync_as(
            Call::CartCreate,
            crate::collective::digest(args.chain([u64::from(reorder) + 4])),
        )?;
        let on_grid = (self.rank() as i64) < grid.size();
        let comm = self.split(if on_grid { 0 } else { UNDEFINED }, self.rank())?;
        Ok(comm.map(|comm| CartComm { comm, grid }))
    }
}

impl CartComm {
    /// The grid's dimensions (`MPI_Cart_get`, mpi4py `dims`; MPI 4.1 §8.5.5).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// let grid = world.cart_create(&[n, 1], &[false, true], false)?.expect("all on it");
    /// assert_eq!((grid.dims(), grid.periods(), grid.ndims()), (&[n, 1][..], &[false, true][..], 2));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn dims(&self) -> &[i32] {
        &self.grid.dims
    }

    /// Which dimensions wrap around (`MPI_Cart_get`, mpi4py `periods`; MPI 4.1 §8.5.5).
    /// Example: [`dims`](Self::dims).
    pub fn periods(&self) -> &[bool] {
        &self.grid.periods
    }

    /// The number of dimensions (`MPI_Cartdim_get`, mpi4py `ndim`; MPI 4.1 §8.5.5).
    /// Example: [`dims`](Self::dims).
    pub fn ndims(&self) -> usize {
        self.grid.dims.len()
    }

    /// The underlying communicator (the one every call on the grid goes through by
    /// `Deref`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// // A grid of one point: rank 0 is on it, the others get `None`.
    /// if let Some(grid) = world.cart_create(&[1], &[false], false)? {
    ///     let comm: shmpi::Communicator = grid.communicator().clone();
    ///     assert_eq!((comm.rank(), comm.size()), (0, 1));
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn communicator(&self) -> &Communicator {
        &self.comm
    }

    /// This rank's coordinates (`MPI_Cart_coords` of its own rank, mpi4py `coords`;
    /// MPI 4.1 §8.5.5).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// let grid = world.cart_create(&[n, 1], &[false, false], false)?.expect("all on it");
    /// assert_eq!(grid.coords(), [grid.rank(), 0]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn coords(&self) -> Vec<i32> {
        self.grid.coords(self.comm.rank())
    }

    /// The coordinates of `rank` (`MPI_Cart_coords`, mpi4py `Get_coords(rank)`; MPI 4.1
    /// §8.5.5). A local call.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRank`] if `rank` is not a rank of this communicator.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// let grid = world.cart_create(&[1, n], &[false, false], false)?.expect("all on it");
    /// assert_eq!(grid.coords_of(n - 1)?, [0, n - 1]);
    /// assert!(matches!(grid.coords_of(n), Err(shmpi::Error::InvalidRank { .. })));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn coords_of(&self, rank: Rank) -> Result<Vec<i32>> {
        let size = self.comm.size();
        if !(0..size).contains(&rank) {
            return Err(Error::InvalidRank {
                rank,
                size: size as usize,
                any_allowed: false,
            });
        }
        Ok(self.grid.coords(rank))
    }

    /// The rank at `coords` (`MPI_Cart_rank`, mpi4py `Get_cart_rank`). Coordinates in
    /// a periodic dimension wrap around. MPI 4.1 §8.5.5. A local call.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] of class `Arg` if `coords` has the wrong length or lies
    /// outside a non-periodic dimension.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// let ring = world.cart_create(&[n], &[true], false)?.expect("all on it");
    /// assert_eq!(ring.cart_rank(&[n])?, 0); // wraps around
    /// let line = world.cart_create(&[n], &[false], false)?.expect("all on it");
    /// assert!(line.cart_rank(&[n]).is_err());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn cart_rank(&self, coords: &[i32]) -> Result<Rank> {
        if coords.len() != self.ndims() {
            return Err(Error::invalid(
                ErrorClass::Arg,
                format!(
                    "cart_rank: {} coordinates for a grid of {} dimensions",
                    coords.len(),
                    self.ndims()
                ),
            ));
        }
        self.grid.rank(coords).ok_or_else(|| {
            Error::invalid(
                ErrorClass::Arg,
                format!(
                    "cart_rank: coordinates {coords:?} lie outside the grid {:?} (periods {:?})",
                    self.grid.dims, self.grid.periods
                ),
            )
        })
    }

    /// The ranks `disp` steps behind and ahead of this one along `direction`
    /// (`MPI_Cart_shift`, mpi4py `Shift(direction, disp)`): `(source, dest)`, ready for
    /// `sendrecv` (send to `dest`, receive from `source`). Off the edge of a
    /// non-periodic dimension a neighbour is [`PROC_NULL`]. MPI 4.1 §8.5.6. A local
    /// call.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] of class `Dims` if `direction` is not a dimension of
    /// the grid.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::PROC_NULL;
    /// let world = shmpi::init()?.world();
    /// let (me, n) = (world.rank(), world.size());
    /// let line = world.cart_create(&[n], &[false], false)?.expect("all on it");
    /// // mpi4py: src, dst = line.Shift(0, 1)
    /// let (src, dst) = line.shift(0, 1)?;
    /// assert_eq!(src, if me == 0 { PROC_NULL } else { me - 1 });
    /// assert_eq!(dst, if me == n - 1 { PROC_NULL } else { me + 1 });
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn shift(&self, direction: usize, disp: i32) -> Result<(Rank, Rank)> {
        if direction >= self.ndims() {
            return Err(Error::invalid(
                ErrorClass::Dims,
                format!(
                    "shift: direction {direction} is not a dimension of this {}-dimensional grid \
                 (valid: 0 to {})",
                    self.ndims(),
                    self.ndims().saturating_sub(1)
                ),
            ));
        }
        let me = self.coords();
        // In i64, so that a displacement near i32::MIN or MAX wraps by the modular
        // arithmetic MPI defines instead of saturating.
        let (d, periodic) = (
            i64::from(self.grid.dims[direction]),
            self.grid.periods[direction],
        );
        let at = |step: i64| {
            let c = i64::from(me[direction]) + step;
            let c = match (periodic, (0..d).contains(&c)) {
                (_, true) => c,
                (true, false) => c.rem_euclid(d),
                (false, false) => return PROC_NULL,
            };
            let mut cs = me.clone();
            cs[direction] = c as i32;
            self.grid.rank(&cs).unwrap_or(PROC_NULL)
        };
        Ok((at(-i64::from(disp)), at(i64::from(disp))))
    }

    /// Splits the grid into sub-grids that keep the dimensions `k` with
    /// `remain[k] == true` (`MPI_Cart_sub`, mpi4py `Sub(remain_dims)`): the ranks that
    /// share their coordinates in the dropped dimensions form one sub-grid, in
    /// row-major order of the kept ones. Collective. MPI 4.1 §8.5.7.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class `Arg` if `remain` does not have one entry
    ///   per dimension (checked on each rank before the collective part; the others
    ///   then fail naming its invalid call);
    /// - the errors of [`split`](Communicator::split), which makes the sub-grids:
    ///   [`Error::Usage`] when the communicator areas are used up,
    ///   [`Error::InvalidArgument`] when the ranks' calls do not match,
    ///   [`Error::PeerFailed`], [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// let grid = world.cart_create(&[n, 1], &[false, false], false)?.expect("all on it");
    /// let column = grid.sub(&[true, false])?; // keep the first dimension
    /// assert_eq!((column.dims(), column.size()), (&[n][..], n));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn sub(&self, remain: &[bool]) -> Result<CartComm> {
        self.args(Call::CartSub, || {
            if remain.len() != self.ndims() {
                return Err(Error::invalid(
                    ErrorClass::Arg,
                    format!(
                        "cart_sub: {} entries for a grid of {} dimensions",
                        remain.len(),
                        self.ndims()
                    ),
                ));
            }
            Ok(())
        })?;
        let remain_args = remain.iter().map(|&r| u64::from(r));
        self.comm
            .sync_as(Call::CartSub, crate::collective::digest(remain_args))?;
        let me = self.coords();
        let mut color: i64 = 0;
        let mut key: i64 = 0;
        let mut grid = Grid {
            dims: vec![],
            periods: vec![],
        };
        for k in 0..self.ndims() {
            let (d, c) = (self.grid.dims[k] as i64, me[k] as i64);
            if remain[k] {
                key = key * d + c;
                grid.dims.push(self.grid.dims[k]);
                grid.periods.push(self.grid.periods[k]);
            } else {
                color = color * d + c;
            }
        }
        let comm = self
            .comm
            .split(color as i32, key as i32)?
            .expect("every rank passes a color");
        Ok(CartComm { comm, grid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(n: i32, mut d: Vec<i32>) -> Vec<i32> {
        dims_create(n, &mut d).unwrap();
        d
    }

    /// Shapes as MPICH and Open MPI give them: balanced, non-increasing, fixed
    /// entries kept.
    #[test]
    fn dims_create_balances_and_keeps_given_dimensions() {
        assert_eq!(dims(1, vec![0, 0]), [1, 1]);
        assert_eq!(dims(6, vec![0, 0]), [3, 2]);
        assert_eq!(dims(7, vec![0, 0]), [7, 1]);
        assert_eq!(dims(16, vec![0, 0]), [4, 4]);
        assert_eq!(dims(24, vec![0, 0, 0]), [4, 3, 2]);
        assert_eq!(dims(12, vec![0, 2]), [6, 2]);
        assert_eq!(dims(12, vec![3, 0, 0]), [3, 2, 2]);
        assert_eq!(dims(8, vec![2, 4]), [2, 4]);
        assert_eq!(dims(256, vec![0, 0, 0, 0]), [4, 4, 4, 4]);
        for (n, d) in [
            (10, vec![3, 0]),
            (8, vec![2, 2]),
            (4, vec![-1, 0]),
            (0, vec![0]),
        ] {
            let mut d = d;
            assert!(
                dims_create(n, &mut d).is_err_and(|e| e.class() == ErrorClass::Dims),
                "{n} {d:?}"
            );
        }
        for n in 1..200 {
            for k in 1..4 {
                let d = dims(n, vec![0; k]);
                assert_eq!(d.iter().product::<i32>(), n);
                assert!(d.windows(2).all(|w| w[0] >= w[1]), "{n}: {d:?}");
            }
        }
    }

    #[test]
    fn coordinates_are_row_major_and_wrap_only_where_periodic() {
        let g = Grid {
            dims: vec![2, 3],
            periods: vec![false, true],
        };
        let all: Vec<Vec<i32>> = (0..6).map(|r| g.coords(r)).collect();
        assert_eq!(
            all,
            [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]].map(|c| c.to_vec())
        );
        for r in 0..6 {
            assert_eq!(g.rank(&g.coords(r)), Some(r));
        }
        assert_eq!(g.rank(&[0, 3]), Some(0));
        assert_eq!(g.rank(&[1, -1]), Some(5));
        assert_eq!(g.rank(&[2, 0]), None);
        assert_eq!(g.rank(&[-1, 0]), None);
    }
}
