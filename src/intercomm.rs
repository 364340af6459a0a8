//! Intercommunicators (MPI 4.1 §7.6): two disjoint groups joined so that each member's
//! point-to-point calls name the ranks of the *other* group.
//!
//! An intercommunicator is a [`Communicator`] whose `peers` (the ranks that sends and
//! receives name, and that statuses report) are the remote group, while `rank` and
//! `size` stay those of the local group. Its messages travel on the rings like any
//! other, under a context of its own. The leaders' own messages (when the
//! intercommunicator is merged or duplicated) use the context with the hidden bit set,
//! which no program's receive can match; steps within one group use a duplicate of
//! the local communicator it was made from, kept inside.
//!
//! Collective operations on an intercommunicator (MPI's rooted forms with `ROOT` and
//! `PROC_NULL`) are not in the Rust API: they return [`Error::Usage`] on both
//! backends. [`merge`](Communicator::merge) gives an intracommunicator of both groups
//! for them; the Python package builds mpi4py's intercommunicator collectives on it.

use std::rc::Rc;

use crate::comm::{CommInner, Communicator, Rank, Tag};
use crate::error::{Error, Result};
use crate::group::Group;
use crate::matching::Group as Ranks;

/// What an intercommunicator holds beyond its two groups.
pub(crate) struct Inter {
    /// The local group's own intracommunicator (a duplicate of the one the
    /// intercommunicator was made from): every step within one group runs on it.
    /// `None` on the MPI backend, where MPI does those steps.
    pub(crate) local: Option<Communicator>,
}

/// Tags of the leaders' messages in the hidden context.
const TAG_MERGE: Tag = 1;
const TAG_DUP: Tag = 2;

/// A failed leader, in what it broadcasts to its group.
const FAILED: u64 = u64::MAX;

/// The error of a collective called on an intercommunicator.
pub(crate) fn no_collectives(call: &str) -> Error {
    Error::Usage(format!(
        "{call}: collective operations on an intercommunicator are not available in \
         shmpi's Rust API; merge it into an intracommunicator (`merge`) for them"
    ))
}

fn not_inter(call: &str) -> Error {
    Error::Usage(format!(
        "{call}: the communicator is not an intercommunicator"
    ))
}

/// What a leader tells its group after talking to the other leader: `words`, or that
/// it failed (the others cannot know why; the leader returns its own error).
fn told(
    local: &Communicator,
    leader: Rank,
    mine: Option<Result<Vec<u64>>>,
    call: &str,
) -> Result<Vec<u64>> {
    let (out, err) = match mine {
        Some(Ok(w)) => (Some(w), None),
        Some(Err(e)) => (Some(vec![FAILED]), Some(e)),
        None => (None, None),
    };
    let words: Vec<u64> = local.bcast(out, leader)?;
    if let Some(e) = err {
        return Err(e);
    }
    if words.first() == Some(&FAILED) {
        return Err(Error::Usage(format!(
            "{call}: the group's leader (rank {leader}) failed to agree with the other group's \
             (its own error says why)"
        )));
    }
    Ok(words)
}

/// The collective area of an intercommunicator, which runs no collectives: a
/// private one of this rank alone, so that it takes nothing from the segment's pool.
fn unused_area(i: &CommInner) -> Rc<crate::shmcoll::Area> {
    let me = Ranks::new(vec![i.group.ranks[i.rank]], i.group.inv.len());
    crate::shmcoll::Area::new_private(i.coll.seg.clone(), Rc::new(me))
}

impl Communicator {
    /// The MPI communicator of a collective call on the MPI backend (`None` on the
    /// shared segment, whose collectives refuse intercommunicators in their first
    /// step): an intercommunicator's is refused as on the segment.
    #[cfg(feature = "mpi")]
    #[inline]
    pub(crate) fn coll_mpi(&self) -> Result<Option<&Rc<crate::mpi::Comm>>> {
        if self.inner.inter.is_some() {
            return Err(no_collectives("a collective"));
        }
        Ok(self.inner.mpi.as_ref())
    }

    /// Whether this is an intercommunicator (`MPI_Comm_test_inter`, mpi4py
    /// `comm.Is_inter()`).
    ///
    /// MPI 4.1 §7.6.1.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// assert!(!world.is_inter());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn is_inter(&self) -> bool {
        self.inner.inter.is_some()
    }

    /// The size of the remote group of an intercommunicator
    /// (`MPI_Comm_remote_size`); an intracommunicator's own size.
    ///
    /// MPI 4.1 §7.6.1.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// assert_eq!(world.remote_size(), world.size());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn remote_size(&self) -> Rank {
        self.inner.peers.size() as Rank
    }

    /// The remote group of an intercommunicator (`MPI_Comm_remote_group`): the ranks
    /// its point-to-point calls name, in their order; an intracommunicator's own
    /// group. This process is not a member of an intercommunicator's remote group.
    ///
    /// MPI 4.1 §7.6.1.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// assert_eq!(world.remote_group(), world.group());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn remote_group(&self) -> Group {
        Group::of_members(self.inner.peers.ranks.clone(), self.world_rank() as usize)
    }

    /// An intercommunicator between this communicator's group and another, disjoint
    /// group (`MPI_Intercomm_create`, mpi4py `Intracomm.Create_intercomm`). Collective
    /// over both groups: every member of each calls it on its own group's
    /// communicator, naming its group's leader (`local_leader`, the same at every
    /// member) and the other group's leader as a rank of `peer`, a communicator of
    /// which both leaders are members (only the leaders use it, with `tag`, which
    /// must not clash with other messages between them on `peer`).
    ///
    /// MPI 4.1 §7.6.2.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRank`] when `local_leader` is not a rank here (at every
    ///   member) or `remote_leader` is not a rank of `peer` (at the leader; the
    ///   group's other members get an error naming the leader's invalid call);
    /// - [`Error::Usage`] when this is an intercommunicator, when the groups share a
    ///   process, and the errors of [`dup`](Communicator::dup), which makes the
    ///   group's own communicator;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// if world.size() >= 2 {
    ///     let low = world.rank() < world.size() / 2;
    ///     let half = world.split(low as i32, 0)?.expect("a color");
    ///     // Each half's leader is its rank 0; the other's, as a world rank.
    ///     let other = if low { world.size() / 2 } else { 0 };
    ///     let inter = half.intercomm_create(0, &world, other, 7)?;
    ///     assert_eq!(inter.size(), half.size());
    ///     // Rank 0 of each half greets rank 0 of the other.
    ///     if inter.rank() == 0 {
    ///         inter.send(&inter.size(), 0, 1)?;
    ///         let theirs: i32 = inter.recv(0, 1)?;
    ///         assert_eq!(theirs, inter.remote_size());
    ///     }
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn intercomm_create(
        &self,
        local_leader: Rank,
        peer: &Communicator,
        remote_leader: Rank,
        tag: Tag,
    ) -> Result<Communicator> {
        const CALL: &str = "intercomm_create";
        if self.is_inter() {
            return Err(Error::Usage(format!(
                "{CALL}: the local communicator must be an intracommunicator"
            )));
        }
        let n = self.size();
        if local_leader < 0 || local_leader >= n {
            return Err(Error::InvalidRank {
                rank: local_leader,
                size: n as usize,
                any_allowed: false,
            });
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return crate::mpi::intercomm_create(self, mc, local_leader, peer, remote_leader, tag);
        }
        let local = self.dup()?;
        let leads = self.rank() == local_leader;
        // The leaders swap their groups and a fresh context each: the context of the
        // leader of the lower world rank is the new communicator's.
        let mine = leads.then(|| -> Result<Vec<u64>> {
            let their_w = peer.world_rank_of(remote_leader)? as u64;
            // A remote leader of this group would wait for this one's message in the
            // same call: refused before any message, as disjoint groups require.
            if self.inner.group.rank_of(their_w as usize) >= 0 {
                return Err(Error::Usage(format!(
                    "{CALL}: the remote leader (rank {remote_leader} of the peer \
                     communicator, world rank {their_w}) is a member of this group; it must \
                     lead the other group, which shares no process with this one"
                )));
            }
            let ctx = u64::from(self.inner.coll.shm().new_ctx());
            let mut msg = vec![ctx];
            msg.extend(self.inner.group.ranks.iter().map(|&w| w as u64));
            peer.send_slice(&msg, remote_leader, tag)?;
            let (got, _) = peer.recv_vec::<u64>(remote_leader, tag)?;
            let Some((&their_ctx, remote)) = got.split_first() else {
                return Err(Error::Usage(format!(
                    "{CALL}: the remote leader sent no group"
                )));
            };
            if let Some(w) = remote
                .iter()
                .find(|&&w| self.inner.group.rank_of(w as usize) >= 0)
            {
                return Err(Error::Usage(format!(
                    "{CALL}: world rank {w} is in both groups; the groups of an \
                     intercommunicator must be disjoint"
                )));
            }
            let first = (self.world_rank() as u64) < their_w;
            let mut out = vec![if first { ctx } else { their_ctx }];
            out.extend_from_slice(remote);
            Ok(out)
        });
        let words = told(&local, local_leader, mine, CALL)?;
        let wn = self.inner.group.inv.len();
        let remote = Ranks::new(words[1..].iter().map(|&w| w as usize).collect(), wn);
        Ok(self.inter_of(words[0] as u32, Rc::new(remote), local))
    }

    /// An intercommunicator of this (intra)communicator's group and rank, `peers` as
    /// its remote group, in context `ctx`.
    fn inter_of(&self, ctx: u32, peers: Rc<Ranks>, local: Communicator) -> Communicator {
        let mut c = self.channel(ctx);
        let inner = Rc::get_mut(&mut c.inner).expect("a handle just made");
        inner.peers = peers;
        inner.inter = Some(Rc::new(Inter { local: Some(local) }));
        c
    }

    /// The leaders' channel of an intercommunicator: its groups in its hidden context.
    fn leaders(&self) -> Communicator {
        self.channel(self.inner.ctx | crate::collective::nbc::HIDDEN)
    }

    /// A handle for point-to-point messages of the runtime's own between this
    /// communicator's ranks, in context `ctx`, which no program's receive matches.
    pub(crate) fn channel(&self, ctx: u32) -> Communicator {
        let i = &self.inner;
        let mut c = Communicator::with_parts(
            i.eng.clone(),
            ctx,
            i.group.clone(),
            i.rank,
            i.coll.clone(),
            unused_area(i),
        );
        Rc::get_mut(&mut c.inner).expect("a handle just made").peers = i.peers.clone();
        c
    }

    fn local_comm(&self) -> &Communicator {
        self.inner
            .inter
            .as_ref()
            .and_then(|x| x.local.as_ref())
            .expect("an intercommunicator of the shared segment")
    }

    /// An intracommunicator of both groups of this intercommunicator
    /// (`MPI_Intercomm_merge`, mpi4py `intercomm.Merge(high)`): the group whose
    /// members pass `high = false` comes first; when both pass the same value, the
    /// group whose leader has the lower world rank does. Collective over both groups;
    /// every member of a group passes the same `high`.
    ///
    /// MPI 4.1 §7.6.2.
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when this is not an intercommunicator, or all communicator
    ///   areas of the segment are in use;
    /// - [`Error::PeerFailed`] when a member dies or leaves part-way.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// if world.size() >= 2 {
    ///     let low = world.rank() < world.size() / 2;
    ///     let half = world.split(low as i32, 0)?.expect("a color");
    ///     let inter = half.intercomm_create(0, &world, if low { world.size() / 2 } else { 0 }, 7)?;
    ///     // The low half first: the world's order again.
    ///     let all = inter.merge(!low)?;
    ///     assert_eq!((all.rank(), all.size()), (world.rank(), world.size()));
    /// }
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn merge(&self, high: bool) -> Result<Communicator> {
        const CALL: &str = "merge";
        if !self.is_inter() {
            return Err(not_inter(CALL));
        }
        #[cfg(feature = "mpi")]
        if let Some(mc) = &self.inner.mpi {
            return crate::mpi::merge(self, mc, high);
        }
        let local = self.local_comm();
        let n = self.inner.group.size() + self.inner.peers.size();
        // The leaders swap `high`; the leader of the group that goes first takes the
        // area and context of the new communicator and tells the other.
        let mine = (self.inner.rank == 0).then(|| -> Result<Vec<u64>> {
            let ch = self.leaders();
            ch.send_slice(&[u64::from(high)], 0, TAG_MERGE)?;
            let mut theirs = [0u64];
            ch.recv_into(&mut theirs, 0, TAG_MERGE)?;
            let me = (u64::from(high), self.world_rank() as u64);
            let first = me < (theirs[0], self.inner.peers.ranks[0] as u64);
            let mut got = [0u64; 2];
            if first {
                let shm = self.inner.coll.shm();
                let area = shm.alloc_area(n).ok_or_else(|| self.pool_exhausted(CALL));
                got = match &area {
                    Ok(a) => [*a as u64, u64::from(shm.new_ctx())],
                    Err(_) => [FAILED, 0],
                };
                ch.send_slice(&got, 0, TAG_MERGE)?;
                area?;
            } else {
                ch.recv_into(&mut got, 0, TAG_MERGE)?;
                if got[0] == FAILED {
                    return Err(self.pool_exhausted(CALL));
                }
            }
            Ok(vec![u64::from(first), got[0], got[1]])
        });
        let words = told(local, 0, mine, CALL)?;
        let (first, area, ctx) = (words[0] == 1, words[1] as usize, words[2] as u32);
        let (l, r) = (&self.inner.group.ranks, &self.inner.peers.ranks);
        let (members, rank) = if first {
            ([&l[..], &r[..]].concat(), self.inner.rank)
        } else {
            ([&r[..], &l[..]].concat(), r.len() + self.inner.rank)
        };
        let group = Rc::new(Ranks::new(members, self.inner.group.inv.len()));
        Ok(self.derived(ctx, group, rank, area))
    }

    /// `dup` of an intercommunicator: the same groups in a new context, with a new
    /// duplicate of the local communicator. Collective over both groups.
    pub(crate) fn inter_dup(&self) -> Result<Communicator> {
        const CALL: &str = "dup";
        let local = self.local_comm().dup()?;
        let mine = (self.inner.rank == 0).then(|| -> Result<Vec<u64>> {
            let ch = self.leaders();
            let ctx = u64::from(self.inner.coll.shm().new_ctx());
            ch.send_slice(&[ctx], 0, TAG_DUP)?;
            let mut theirs = [0u64];
            ch.recv_into(&mut theirs, 0, TAG_DUP)?;
            let first = self.world_rank() < self.inner.peers.ranks[0] as Rank;
            Ok(vec![if first { ctx } else { theirs[0] }])
        });
        let words = told(self.local_comm(), 0, mine, CALL)?;
        Ok(self.inter_of(words[0] as u32, self.inner.peers.clone(), local))
    }
}

/// An intercommunicator's handle over MPI communicator parts (the MPI backend).
#[cfg(feature = "mpi")]
pub(crate) fn mpi_inter(inner: &mut CommInner, peers: Rc<Ranks>) {
    inner.peers = peers;
    inner.inter = Some(Rc::new(Inter { local: None }));
}
