//! New communicators: [`Communicator::dup`] and [`Communicator::split`]
//! (`MPI_Comm_dup`, `MPI_Comm_split`), and their world ranks.
//!
//! Each new communicator gets a fresh context id (so that its messages never match
//! another communicator's receives) and an area of its own in the segment's pool (so
//! that its collectives never mix with another's). Both are chosen by the leader
//! (rank 0 of the parent) and broadcast through the parent's collective area. The
//! area is given back when the last member drops its last handle on the communicator
//! (`MPI_Comm_free`), so creating and freeing communicators in a loop runs forever.

use std::rc::Rc;

use super::slices::sig;
use super::{Area, Call, Coll, OP_NONE};
use crate::comm::{Communicator, Rank};
use crate::error::{Error, Result};
use crate::matching::Group;

/// The color that puts a rank in no new communicator (`MPI_UNDEFINED`).
pub const UNDEFINED: i32 = -1;

const FAILED: u32 = u32::MAX;

impl Communicator {
    /// This process's rank in the world communicator.
    pub fn world_rank(&self) -> Rank {
        self.inner.group.ranks[self.inner.rank] as Rank
    }

    /// The world rank of member `rank` of this communicator
    /// (`MPI_Group_translate_ranks` to the world group).
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
    pub fn context_id(&self) -> u32 {
        self.inner.ctx
    }

    /// A new communicator with the same ranks and a context of its own
    /// (`MPI_Comm_dup`, mpi4py `comm.Dup()`). Collective: every rank calls it.
    pub fn dup(&self) -> Result<Communicator> {
        let n = self.inner.group.size();
        let mut c = Coll::begin(&self.inner, sig(Call::Dup, 0, 0, OP_NONE), 0)?;
        let me = self.inner.rank;
        let mut msg = [FAILED, 0];
        if me == 0 {
            let shm = self.inner.coll.shm();
            if let Some(a) = shm.alloc_area(n) {
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
            if me == 0 && msg[0] != FAILED {
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
    pub fn split(&self, color: i32, key: i32) -> Result<Option<Communicator>> {
        if color < 0 && color != UNDEFINED {
            return Err(Error::Usage(format!(
                "split: the color must be non-negative or UNDEFINED, not {color}"
            )));
        }
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
    /// creates and frees communicators).
    pub fn communicators_in_use(&self) -> usize {
        self.inner.coll.shm().areas_in_use()
    }

    fn pool_exhausted(&self, what: &str) -> Error {
        Error::Usage(format!(
            "{what}: all {} communicator areas of the segment are in use; free communicators \
             you no longer need (drop every handle on them)",
            self.inner.coll.shm().areas() - 1
        ))
    }

    fn derived(&self, ctx: u32, group: Rc<Group>, rank: usize, area: usize) -> Communicator {
        let coll = self.inner.coll.clone();
        let a = Area::new(coll.seg.clone(), area, group.clone(), rank, true);
        Communicator::with_parts(self.inner.eng.clone(), ctx, group, rank, coll, a)
    }
}
