//! New communicators: [`Communicator::dup`] and [`Communicator::split`]
//! (`MPI_Comm_dup`, `MPI_Comm_split`), and their world ranks.
//!
//! Each new communicator gets a fresh context id (so that its messages never match
//! another communicator's receives) and an area of its own in the segment's pool (so
//! that its collectives never mix with another's). Both are chosen by the leader
//! (rank 0 of the parent) and broadcast through the parent's collective area. The
//! area is given back when the last member drops its last handle on the communicator
//! (`MPI_Comm_free`), so creating and freeing communicators in a loop runs forever.
//! A communicator of one rank (`Universe::self_comm`, a dup or split of one) takes
//! no pooled area: its one member block is in the process's heap, as nobody else reads
//! it.

use std::rc::Rc;

use super::slices::sig;
use super::{Area, Call, Coll, OP_NONE};
use crate::comm::{Communicator, Rank};
use crate::error::{Error, Result};
use crate::matching::Group;

/// The color that puts a rank in no new communicator (`MPI_UNDEFINED`).
pub const UNDEFINED: i32 = -1;

pub(crate) const FAILED: u32 = u32::MAX;
/// The area word of a communicator of one rank, which takes no pooled area
/// (`Area::new_private`).
pub(crate) const PRIVATE: u32 = u32::MAX - 1;

impl Communicator {
    /// This process's rank in the world communicator.
    ///
    /// MPI 4.1 §7.4.1 (`MPI_Comm_rank` on `MPI_COMM_WORLD`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let dup = world.dup()?;
    /// assert_eq!(dup.world_rank(), world.rank());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn world_rank(&self) -> Rank {
        self.inner.wrank as Rank
    }

    /// The world rank of member `rank` of this communicator
    /// (`MPI_Group_translate_ranks` to the world group).
    ///
    /// MPI 4.1 §7.3.1.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRank`] when `rank` is not a rank of this communicator.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// assert_eq!(world.world_rank_of(0)?, 0);
    /// assert!(matches!(
    ///     world.world_rank_of(world.size()),
    ///     Err(shmpi::Error::InvalidRank { .. })
    /// ));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn world_rank_of(&self, rank: Rank) -> Result<Rank> {
        let size = self.inner.group.size();
        if rank < 0 || rank as usize >= size {
            return Err(Error::InvalidRank {
                rank,
                size,
                any_allowed: false,
            });
        }
        Ok(self.inner.group.ranks[rank as usize] as Rank)
    }

    /// The context id of this communicator (0 for the world; for diagnostics).
    ///
    /// shmpi's own; MPI has no counterpart.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// assert_eq!(world.context_id(), 0);
    /// assert_ne!(world.dup()?.context_id(), 0);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn context_id(&self) -> u32 {
        self.inner.ctx
    }

    /// A new communicator with the same ranks and a context of its own
    /// (`MPI_Comm_dup`, mpi4py `comm.Dup()`). Collective: every rank calls it.
    ///
    /// MPI 4.1 §7.4.2 (`MPI_Comm_dup`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when all communicator areas of the segment are in use (drop
    ///   communicators you no longer need), when the ranks make another collective call, or
    ///   an earlier collective on this communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let lib = world.dup()?; // a library's own communicator
    /// assert_eq!((lib.rank(), lib.size()), (world.rank(), world.size()));
    /// assert_ne!(lib.context_id(), world.context_id());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn dup(&self) -> Result<Communicator> {
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return crate::mpi::dup(self, mc);
        }
        if self.is_inter() {
            return self.inter_dup();
        }
        let n = self.inner.group.size();
        let mut c = Coll::begin(&self.inner, sig(Call::Dup, 0, 0, OP_NONE), 0)?;
        let me = self.inner.rank;
        let mut msg = [FAILED, 0];
        if me == 0 {
            let shm = self.inner.coll.shm();
            if n == 1 {
                msg = [PRIVATE, shm.new_ctx()];
            } else if let Some(a) = shm.alloc_area(n) {
                msg = [a as u32, shm.new_ctx()];
            }
        }
        let mine = bytemuck::cast::<[u32; 2], [u8; 8]>(msg);
        let mut got = [0u8; 8];
        let sent = c.exchange(
            if me == 0 { &mine } else { &[] },
            8,
            8,
            &|j| (j == 0).then_some((0, 8)),
            &mut |_, _, b| got.copy_from_slice(b),
        );
        if let Err(e) = sent {
            // No member creates the communicator when the call fails on the leader (the
            // others check the same signatures and wait for the leader's step), so the
            // leader gives back every member's share of the area it took.
            if me == 0 && msg[0] != FAILED && msg[0] != PRIVATE {
                let shm = self.inner.coll.shm();
                (0..n).for_each(|_| shm.release_area(msg[0] as usize));
            }
            return Err(e);
        }
        c.finish();
        let [area, ctx] = bytemuck::cast::<[u8; 8], [u32; 2]>(got);
        if area == FAILED {
            return Err(self.pool_exhausted("dup"));
        }
        Ok(self.derived(ctx, self.inner.group.clone(), me, area as usize))
    }

    /// Splits the communicator by `color` (`MPI_Comm_split`, mpi4py
    /// `comm.Split(color, key)`): ranks passing the same color form a new
    /// communicator, ordered by `key` then by their rank here. A rank passing
    /// [`UNDEFINED`] gets `None`. Collective: every rank calls it.
    ///
    /// MPI 4.1 §7.4.2 (`MPI_Comm_split`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when `color` is negative and not [`UNDEFINED`] (checked on that
    ///   rank before the call starts; the others then fail naming its invalid call), when all communicator areas of the segment are in use, when
    ///   the ranks make another collective call, or an earlier collective on this
    ///   communicator failed;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way; [`Error::Aborted`] when
    ///   the job is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// // mpi4py: half = comm.Split(comm.rank % 2, key=-comm.rank)
    /// let half = world.split(world.rank() % 2, -world.rank())?.expect("a color was given");
    /// assert_eq!(half.size(), (world.size() + 1 - world.rank() % 2) / 2);
    /// assert!(world.split(shmpi::UNDEFINED, 0)?.is_none());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn split(&self, color: i32, key: i32) -> Result<Option<Communicator>> {
        if self.is_inter() {
            return Err(crate::intercomm::no_collectives("split"));
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return crate::mpi::split(self, mc, color, key);
        }
        self.args(Call::Split, || {
            if color < 0 && color != UNDEFINED {
                return Err(Error::Usage(format!(
                    "split: the color must be non-negative or UNDEFINED, not {color}"
                )));
            }
            Ok(())
        })?;
        let n = self.inner.group.size();
        let me = self.inner.rank;
        let mut c = Coll::begin(&self.inner, sig(Call::Split, 0, 0, OP_NONE), 0)?;
        // Step 1: everybody's (color, key).
        let mine = [color, key];
        let mut all = vec![[0i32; 2]; n];
        {
            let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut all);
            c.exchange(
                bytemuck::cast_slice(&mine),
                8,
                8,
                &|_| Some((0, 8)),
                &mut |j, off, b| dst[j * 8 + off..j * 8 + off + b.len()].copy_from_slice(b),
            )?;
        }
        let mut colors: Vec<i32> = all
            .iter()
            .map(|ck| ck[0])
            .filter(|&c| c != UNDEFINED)
            .collect();
        colors.sort_unstable();
        colors.dedup();
        let members = |col: i32| -> Vec<usize> {
            let mut m: Vec<usize> = (0..n).filter(|&i| all[i][0] == col).collect();
            m.sort_by_key(|&i| (all[i][1], i));
            m
        };
        // Step 2: the leader's (area, context) per color.
        let mut table = vec![[FAILED, 0u32]; colors.len()];
        if me == 0 {
            let shm = self.inner.coll.shm();
            let mut taken: Vec<(usize, usize)> = vec![];
            for (k, &col) in colors.iter().enumerate() {
                let size = members(col).len();
                if size == 1 {
                    table[k] = [PRIVATE, shm.new_ctx()];
                    continue;
                }
                match shm.alloc_area(size) {
                    Some(a) => {
                        taken.push((a, size));
                        table[k] = [a as u32, shm.new_ctx()];
                    }
                    None => {
                        // Give back what was taken: nobody will use it.
                        for &(a, size) in &taken {
                            (0..size).for_each(|_| shm.release_area(a));
                        }
                        table.iter_mut().for_each(|e| *e = [FAILED, 0]);
                        break;
                    }
                }
            }
        }
        let tb = table.len() * 8;
        let mine: Vec<[u32; 2]> = if me == 0 { table.clone() } else { vec![] };
        {
            let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut table);
            c.exchange(
                bytemuck::cast_slice(&mine),
                tb,
                8,
                &|j| (j == 0 && me != 0).then_some((0, tb)),
                &mut |_, off, b| dst[off..off + b.len()].copy_from_slice(b),
            )?;
        }
        c.finish();
        if table.iter().any(|e| e[0] == FAILED) {
            return Err(self.pool_exhausted("split"));
        }
        if color == UNDEFINED {
            return Ok(None);
        }
        let k = colors.binary_search(&color).expect("my color is listed");
        let m = members(color);
        let my_rank = m.iter().position(|&i| i == me).expect("I am a member");
        let world: Vec<usize> = m.iter().map(|&i| self.inner.group.ranks[i]).collect();
        let wn = self.inner.group.inv.len();
        let group = Rc::new(Group::new(world, wn));
        let [area, ctx] = table[k];
        Ok(Some(self.derived(ctx, group, my_rank, area as usize)))
    }

    /// The number of communicators other than the world that hold an area of the
    /// segment right now, job-wide (for diagnostics: it must not grow in a loop that
    /// creates and frees communicators). Communicators of one rank (`self_comm`, and
    /// dups and splits of one rank) hold none and are not counted.
    ///
    /// shmpi's own; MPI has no counterpart.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let before = world.communicators_in_use();
    /// world.barrier()?; // every member has counted before the leader takes an area
    /// let dup = world.dup()?;
    /// let grown = if world.size() > 1 { 1 } else { 0 }; // one rank: no area
    /// assert_eq!(world.communicators_in_use(), before + grown);
    /// drop(dup);
    /// world.barrier()?; // every member has dropped its handle
    /// assert_eq!(world.communicators_in_use(), before);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn communicators_in_use(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return Rc::strong_count(&mc.env).saturating_sub(1);
        }
        self.inner.coll.shm().areas_in_use()
    }

    pub(crate) fn pool_exhausted(&self, what: &str) -> Error {
        Error::Usage(format!(
            "{what}: all {} communicator areas of the segment are in use; free communicators \
             you no longer need (drop every handle on them)",
            self.inner.coll.shm().areas() - 1
        ))
    }

    pub(crate) fn derived(
        &self,
        ctx: u32,
        group: Rc<Group>,
        rank: usize,
        area: usize,
    ) -> Communicator {
        let coll = self.inner.coll.clone();
        let a = if area == PRIVATE as usize {
            Area::new_private(coll.seg.clone(), group.clone())
        } else {
            Area::new(coll.seg.clone(), area, group.clone(), rank, true)
        };
        Communicator::with_parts(self.inner.eng.clone(), ctx, group, rank, coll, a)
    }

    /// A communicator of this rank alone (`MPI_COMM_SELF`), made from the world
    /// without the others: its context comes from the job-wide counter (an atomic
    /// increment in the segment, so unique whichever rank takes it) and its area is
    /// private, so it takes nothing from the pool.
    pub(crate) fn new_self(&self) -> Communicator {
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return crate::mpi::self_comm(self, mc);
        }
        let me = self.world_rank() as usize;
        let group = Rc::new(Group::new(vec![me], self.inner.group.inv.len()));
        let ctx = self.inner.coll.shm().new_ctx();
        self.derived(ctx, group, 0, PRIVATE as usize)
    }
}
