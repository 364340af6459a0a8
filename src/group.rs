//! Process groups (MPI 4.1 section 7.3): [`Group`], an ordered set of processes,
//! with the set operations of MPI, and [`Communicator::create`], which makes a
//! communicator of a group's members.
//!
//! A group is a local object: making, combining and comparing groups never
//! communicates. Its members are held as world ranks, so groups of different
//! communicators combine and translate into each other.

use crate::call::Call;
use crate::collective::comms::UNDEFINED;
use crate::comm::{Communicator, PROC_NULL, Rank, Tag};
use crate::error::{Error, ErrorClass, Result};

/// An ordered set of processes (`MPI_Group`, mpi4py `MPI.Group`), from
/// [`Communicator::group`] and the set operations below. The rank of a member in a
/// group is its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// World rank of each member, in group order.
    members: Vec<usize>,
    /// This process's world rank.
    me: usize,
}

/// How two groups relate ([`Group::compare`], `MPI_Group_compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// The same members in the same order (`MPI_IDENT`).
    Identical,
    /// The same members in a different order (`MPI_SIMILAR`).
    Similar,
    /// Different members (`MPI_UNEQUAL`).
    Unequal,
}

impl Group {
    /// A group of `members` (world ranks, in group order) seen from world rank `me`.
    pub(crate) fn of_members(members: Vec<usize>, me: usize) -> Group {
        Group { members, me }
    }

    /// The number of members (`MPI_Group_size`).
    ///
    /// MPI 4.1 §7.3.1.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// assert_eq!(world.group().size(), world.size());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn size(&self) -> Rank {
        self.members.len() as Rank
    }

    /// This process's rank in the group, or [`UNDEFINED`] if it is not a member
    /// (`MPI_Group_rank`).
    ///
    /// MPI 4.1 §7.3.1.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let group = world.group();
    /// assert_eq!(group.rank(), world.rank());
    /// let without_me = group.excl(&[world.rank()])?;
    /// assert_eq!(without_me.rank(), shmpi::UNDEFINED);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn rank(&self) -> Rank {
        self.position(self.me).unwrap_or(UNDEFINED)
    }

    fn position(&self, world: usize) -> Option<Rank> {
        self.members
            .iter()
            .position(|&m| m == world)
            .map(|i| i as Rank)
    }

    fn check_ranks(&self, ranks: &[Rank], call: &str) -> Result<()> {
        let size = self.members.len();
        for (i, &r) in ranks.iter().enumerate() {
            if r < 0 || r as usize >= size {
                // `Error::InvalidRank` speaks of a communicator; the class is the same.
                let valid = match size {
                    0 => "this group is empty, so it has none".to_string(),
                    n => format!("valid ranks in this group of {n} are 0 to {}", n - 1),
                };
                return Err(Error::invalid(
                    ErrorClass::Rank,
                    format!("{call}: invalid rank {r}: {valid}"),
                ));
            }
            if ranks[..i].contains(&r) {
                return Err(Error::invalid(
                    ErrorClass::Rank,
                    format!(
                        "{call}: rank {r} appears twice in {ranks:?}; each rank may be named once"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The group of the members at `ranks`, in that order (`MPI_Group_incl`; MPI 4.1
    /// §7.3.2).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] of class [`ErrorClass::Rank`] (`MPI_ERR_RANK`) for a
    /// rank outside the group or named twice.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let g = world.group().incl(&[world.rank()])?; // just this process
    /// assert_eq!((g.size(), g.rank()), (1, 0));
    /// assert!(world.group().incl(&[world.size()]).is_err()); // not a rank of the group
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn incl(&self, ranks: &[Rank]) -> Result<Group> {
        self.check_ranks(ranks, "incl")?;
        Ok(self.with(ranks.iter().map(|&r| self.members[r as usize]).collect()))
    }

    /// The group without the members at `ranks`, the others in their order
    /// (`MPI_Group_excl`; MPI 4.1 §7.3.2).
    ///
    /// # Errors
    ///
    /// As [`incl`](Group::incl).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let others = world.group().excl(&[0])?;
    /// assert_eq!(others.size(), world.size() - 1);
    /// assert!(world.group().excl(&[0, 0]).is_err()); // named twice
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn excl(&self, ranks: &[Rank]) -> Result<Group> {
        self.check_ranks(ranks, "excl")?;
        let keep = (0..self.size()).filter(|r| !ranks.contains(r));
        Ok(self.with(keep.map(|r| self.members[r as usize]).collect()))
    }

    /// The group of the ranks `first, first + stride, ...` up to `last` inclusive, for
    /// each `(first, last, stride)` in turn (`MPI_Group_range_incl`; MPI 4.1 §7.3.2).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] of class `Arg` for a zero stride; otherwise as
    /// [`incl`](Group::incl).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let n = world.size();
    /// // The even ranks, last first: n-1 or n-2 down to 0.
    /// let evens = world.group().range_incl(&[((n - 1) / 2 * 2, 0, -2)])?;
    /// assert_eq!(evens.size(), (n + 1) / 2);
    /// assert!(world.group().range_incl(&[(0, 0, 0)]).is_err());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn range_incl(&self, ranges: &[(Rank, Rank, Rank)]) -> Result<Group> {
        let mut ranks = Vec::new();
        for &(first, last, stride) in ranges {
            if stride == 0 {
                return Err(Error::invalid(
                    ErrorClass::Arg,
                    format!("range_incl: the stride of ({first}, {last}, {stride}) is zero"),
                ));
            }
            let mut r = first;
            while (stride > 0 && r <= last) || (stride < 0 && r >= last) {
                ranks.push(r);
                if ranks.len() > self.members.len() {
                    break; // names some rank twice: check_ranks says which
                }
                r = r.saturating_add(stride);
            }
        }
        self.check_ranks(&ranks, "range_incl")?;
        Ok(self.with(ranks.iter().map(|&r| self.members[r as usize]).collect()))
    }

    /// The members of `self`, then those of `other` not in `self`
    /// (`MPI_Group_union`).
    ///
    /// MPI 4.1 §7.3.2.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let all = world.group();
    /// let first = all.incl(&[0])?;
    /// let u = first.union(&all); // rank 0, then the others in their order
    /// assert_eq!(u.compare(&all), shmpi::Comparison::Identical);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn union(&self, other: &Group) -> Group {
        let mut m = self.members.clone();
        m.extend(other.members.iter().filter(|w| !self.members.contains(w)));
        self.with(m)
    }

    /// The members of `self` that are also in `other`, in `self`'s order
    /// (`MPI_Group_intersection`).
    ///
    /// MPI 4.1 §7.3.2.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let all = world.group();
    /// let first = all.incl(&[0])?;
    /// assert_eq!(all.intersection(&first).size(), 1);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn intersection(&self, other: &Group) -> Group {
        self.with(
            self.members
                .iter()
                .copied()
                .filter(|w| other.members.contains(w))
                .collect(),
        )
    }

    /// The members of `self` that are not in `other`, in `self`'s order
    /// (`MPI_Group_difference`).
    ///
    /// MPI 4.1 §7.3.2.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let all = world.group();
    /// let rest = all.difference(&all.incl(&[0])?);
    /// assert_eq!(rest.size(), world.size() - 1);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn difference(&self, other: &Group) -> Group {
        self.with(
            self.members
                .iter()
                .copied()
                .filter(|w| !other.members.contains(w))
                .collect(),
        )
    }

    /// The ranks in `other` of the members at `ranks` in `self`: [`UNDEFINED`] for one
    /// that is not in `other`, [`PROC_NULL`] for [`PROC_NULL`]
    /// (`MPI_Group_translate_ranks`; MPI 4.1 §7.3.1).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] of class [`ErrorClass::Rank`] for a rank outside `self`
    /// (other than [`PROC_NULL`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::{PROC_NULL, UNDEFINED};
    /// let world = shmpi::init()?.world();
    /// let all = world.group();
    /// let none = all.excl(&(0..world.size()).collect::<Vec<_>>())?;
    /// assert_eq!(all.translate_ranks(&[0, PROC_NULL], &all)?, [0, PROC_NULL]);
    /// assert_eq!(all.translate_ranks(&[0], &none)?, [UNDEFINED]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn translate_ranks(&self, ranks: &[Rank], other: &Group) -> Result<Vec<Rank>> {
        ranks
            .iter()
            .map(|&r| {
                if r == PROC_NULL {
                    return Ok(PROC_NULL);
                }
                self.check_ranks(&[r], "translate_ranks")?;
                Ok(other
                    .position(self.members[r as usize])
                    .unwrap_or(UNDEFINED))
            })
            .collect()
    }

    /// Whether the groups have the same members in the same order, the same members
    /// in another order, or different members (`MPI_Group_compare`).
    ///
    /// MPI 4.1 §7.3.1.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::Comparison;
    /// let world = shmpi::init()?.world();
    /// let all = world.group();
    /// assert_eq!(all.compare(&world.dup()?.group()), Comparison::Identical);
    /// let reversed: Vec<i32> = (0..world.size()).rev().collect();
    /// let rev = all.incl(&reversed)?;
    /// let want = if world.size() == 1 { Comparison::Identical } else { Comparison::Similar };
    /// assert_eq!(all.compare(&rev), want);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn compare(&self, other: &Group) -> Comparison {
        if self.members == other.members {
            Comparison::Identical
        } else if self.members.len() == other.members.len()
            && self.members.iter().all(|w| other.members.contains(w))
        {
            Comparison::Similar
        } else {
            Comparison::Unequal
        }
    }

    fn with(&self, members: Vec<usize>) -> Group {
        Group {
            members,
            me: self.me,
        }
    }
}

impl Communicator {
    /// The group of this communicator's members, in rank order (`MPI_Comm_group`,
    /// mpi4py `comm.Get_group()`).
    ///
    /// MPI 4.1 §7.3.2.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let group = world.group();
    /// assert_eq!((group.size(), group.rank()), (world.size(), world.rank()));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn group(&self) -> Group {
        Group {
            members: (0..self.size())
                .map(|r| self.world_rank_of(r).expect("a member's rank") as usize)
                .collect(),
            me: self.world_rank() as usize,
        }
    }

    /// A communicator of the members of `group`, ranked in the group's order
    /// (`MPI_Comm_create`, mpi4py `comm.Create(group)`): `Some` at the members, `None`
    /// at the other ranks. Collective: every rank of this communicator calls it with
    /// the same group. MPI 4.1 §7.4.2.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class `Group` if the group has a process that is
    ///   not a member of this communicator (checked on each rank before the collective
    ///   part);
    /// - the errors of [`split`](Communicator::split), which makes the communicator:
    ///   [`Error::Usage`] when the communicator areas are used up,
    ///   [`Error::InvalidArgument`] when the ranks' calls do not match,
    ///   [`Error::PeerFailed`], [`Error::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let evens: Vec<i32> = (0..world.size()).step_by(2).collect();
    /// let group = world.group().incl(&evens)?;
    /// let comm = world.create(&group)?;
    /// assert_eq!(comm.is_some(), world.rank() % 2 == 0);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn create(&self, group: &Group) -> Result<Option<Communicator>> {
        let mine = self.group();
        self.args(Call::CommCreate, || self.subgroup(&mine, group, "create"))?;
        // Every rank must pass the same group: a rank that passed another fails the
        // call on every rank, instead of each getting the communicator of its own.
        let members = group.members.iter().map(|&m| m as u64);
        self.sync_as(Call::CommCreate, crate::collective::digest(members))?;
        let key = group.position(mine.me);
        self.split(if key.is_some() { 0 } else { UNDEFINED }, key.unwrap_or(0))
    }

    /// A communicator of the members of `group`, ranked in the group's order
    /// (`MPI_Comm_create_group`, mpi4py `comm.Create_group(group, tag)`): collective
    /// over the group's members only, the other ranks of this communicator take no
    /// part. Calls for different groups at the same time are told apart by `tag`
    /// (the same at every member). MPI 4.1 §7.4.2.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class `Group` if the group has a process that is
    ///   not a member of this communicator, [`Error::Usage`] if this process is not a
    ///   member of the group or this is an intercommunicator, [`Error::InvalidTag`] for
    ///   a negative tag (each checked at the rank before anything is sent);
    /// - [`Error::Usage`] when all communicator areas of the segment are in use;
    /// - [`Error::PeerFailed`] when the group's first member dies first.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// // Only the even ranks call it.
    /// if world.rank() % 2 == 0 {
    ///     let evens: Vec<i32> = (0..world.size()).step_by(2).collect();
    ///     let comm = world.create_group(&world.group().incl(&evens)?, 0)?;
    ///     assert_eq!(comm.rank(), world.rank() / 2);
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn create_group(&self, group: &Group, tag: Tag) -> Result<Communicator> {
        use crate::collective::comms::{FAILED, PRIVATE};
        const CALL: &str = "create_group";
        let mine = self.group();
        self.subgroup(&mine, group, CALL)?;
        let Some(pos) = group.position(mine.me) else {
            return Err(Error::Usage(format!(
                "{CALL}: this process (world rank {}) is not a member of the group; only \
                 the members call it",
                mine.me
            )));
        };
        if self.is_inter() {
            return Err(crate::intercomm::no_collectives(CALL));
        }
        if tag < 0 {
            return Err(Error::InvalidTag {
                tag,
                max: crate::comm::TAG_UB,
                any_allowed: false,
            });
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return crate::mpi::create_group(self, mc, &group.members, tag);
        }
        // The group's first member takes the area and context and tells the others,
        // in a context of this communicator's that no program's receive matches.
        let ch = self.channel(self.inner.ctx | CREATE);
        let n = group.members.len();
        let parent = |w: usize| self.inner.group.rank_of(w);
        let got = if pos == 0 {
            let shm = self.inner.coll.shm();
            let msg = if n == 1 {
                [PRIVATE, shm.new_ctx()]
            } else {
                shm.alloc_area(n)
                    .map_or([FAILED, 0], |a| [a as u32, shm.new_ctx()])
            };
            for &w in &group.members[1..] {
                ch.send_slice(&msg, parent(w), tag)?;
            }
            msg
        } else {
            let mut msg = [0u32; 2];
            ch.recv_into(&mut msg, parent(group.members[0]), tag)?;
            msg
        };
        let [area, ctx] = got;
        if area == FAILED {
            return Err(self.pool_exhausted(CALL));
        }
        let ranks = crate::matching::Group::new(group.members.clone(), self.inner.group.inv.len());
        Ok(self.derived(ctx, std::rc::Rc::new(ranks), pos as usize, area as usize))
    }

    /// Checks that `group` is a subgroup of `mine`, this communicator's group.
    fn subgroup(&self, mine: &Group, group: &Group, call: &str) -> Result<()> {
        if let Some(w) = group.members.iter().find(|w| !mine.members.contains(w)) {
            return Err(Error::invalid(
                ErrorClass::Group,
                format!(
                    "{call}: world rank {w} is in the group but not in this communicator of {} \
                 ranks; the group must be a subset of the communicator's group",
                    self.size()
                ),
            ));
        }
        Ok(())
    }
}

/// The bit of the context of `create_group`'s messages (beside the hidden bit of the
/// non-blocking collectives' and the intercommunicators' leaders').
const CREATE: u32 = 0x4000_0000;

#[cfg(test)]
mod tests {
    use super::*;

    fn g(members: &[usize], me: usize) -> Group {
        Group {
            members: members.to_vec(),
            me,
        }
    }

    #[test]
    fn set_operations_keep_mpis_order() {
        let a = g(&[0, 1, 2, 3], 2);
        let b = g(&[5, 3, 1], 2);
        assert_eq!(a.union(&b).members, [0, 1, 2, 3, 5]);
        assert_eq!(b.union(&a).members, [5, 3, 1, 0, 2]);
        assert_eq!(a.intersection(&b).members, [1, 3]);
        assert_eq!(b.intersection(&a).members, [3, 1]);
        assert_eq!(a.difference(&b).members, [0, 2]);
        assert_eq!(a.incl(&[3, 0]).unwrap().members, [3, 0]);
        assert_eq!(a.excl(&[3, 0]).unwrap().members, [1, 2]);
        assert_eq!(a.range_incl(&[(3, 0, -2)]).unwrap().members, [3, 1]);
        assert_eq!(
            a.range_incl(&[(0, 3, 2), (1, 1, 1)]).unwrap().members,
            [0, 2, 1]
        );
        assert_eq!((a.rank(), b.rank()), (2, UNDEFINED));
        assert_eq!(
            a.translate_ranks(&[0, 1, 3, PROC_NULL], &b).unwrap(),
            [UNDEFINED, 2, 1, PROC_NULL]
        );
        assert_eq!(a.compare(&a.clone()), Comparison::Identical);
        assert_eq!(
            a.compare(&a.incl(&[3, 2, 1, 0]).unwrap()),
            Comparison::Similar
        );
        assert_eq!(a.compare(&b), Comparison::Unequal);
    }

    #[test]
    fn bad_ranks_are_errors_naming_them() {
        let a = g(&[0, 1, 2], 0);
        let e = a.incl(&[3]).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Rank);
        assert!(
            e.to_string()
                .contains("rank 3: valid ranks in this group of 3 are 0 to 2")
        );
        let e = a.excl(&[-1]).unwrap_err();
        assert!(e.to_string().contains("excl: invalid rank -1"), "{e}");
        let e = g(&[], 0).incl(&[0]).unwrap_err();
        assert!(e.to_string().contains("this group is empty"), "{e}");
        assert!(a.incl(&[1, 1]).unwrap_err().to_string().contains("twice"));
        assert!(a.range_incl(&[(0, 2, 0)]).is_err());
        assert!(a.range_incl(&[(0, 2, 1), (2, 2, 1)]).is_err());
        assert!(a.translate_ranks(&[7], &a).is_err());
    }
}
