//! Matched probes ([`Message`], `MPI_Mprobe`/`MPI_Mrecv`) and messages received
//! without knowing their type ([`RawMessage`]).
//!
//! [`Communicator::mprobe`](crate::Communicator::mprobe) takes a message out of
//! matching at probe time: no other receive, wildcard or not, can take it afterwards,
//! and only the returned [`Message`] receives it. A receive through the `Message` that
//! cannot take it (a buffer too short, another type) is an error that leaves the
//! `Message` as it was, so it can be received again another way. A message still
//! streaming in when it is probed stays bound to its `Message` while the rest arrives;
//! the `Message`'s receive waits for it.
//!
//! Dropping a `Message` without receiving it discards the message (MPI leaves that
//! erroneous; here it is defined). A synchronous send's message is acknowledged when it
//! is probed: that is when it is matched.
//!
//! A probe of [`PROC_NULL`](crate::PROC_NULL) gives the null message
//! (`MPI_MESSAGE_NO_PROC`): receiving it completes at once with the null status and
//! leaves the buffer untouched.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use bytemuck::Pod;
use rkyv::util::AlignedVec;

use crate::call::Call;
use crate::codec::{self, Decode};
use crate::comm::{Status, null_recv_error};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::matching::{Group, Want};
use crate::progress::{Claimed, Engine, WaitDesc, WaitOp};

/// A message taken out of matching by a matched probe (mpi4py's `Message`, from
/// `comm.mprobe()`): only its own receive methods can receive it.
#[must_use = "a Message dropped without receiving it discards its message"]
pub struct Message {
    eng: Weak<RefCell<Engine>>,
    group: Rc<Group>,
    ctx: u32,
    status: Status,
    state: State,
}

enum State {
    /// The null message (a probe of `PROC_NULL`).
    Null,
    /// All its bytes, owned here.
    Whole(Envelope, AlignedVec),
    /// Still streaming in: the engine's claimed message with this id.
    Bound(Envelope, u64),
    /// Received already.
    Received,
}

impl Message {
    pub(crate) fn new(
        eng: &Rc<RefCell<Engine>>,
        group: Rc<Group>,
        ctx: u32,
        status: Status,
        env: Envelope,
        claimed: Claimed,
    ) -> Self {
        let state = match claimed {
            Claimed::Whole(env, data) => State::Whole(env, data),
            Claimed::Bound(id) => State::Bound(env, id),
        };
        Message {
            eng: Rc::downgrade(eng),
            group,
            ctx,
            status,
            state,
        }
    }

    /// A message received whole already (the MPI backend's matched probe).
    #[cfg(feature = "mpi")]
    pub(crate) fn whole(
        eng: &Rc<RefCell<Engine>>,
        group: Rc<Group>,
        ctx: u32,
        status: Status,
        env: Envelope,
        data: AlignedVec,
    ) -> Self {
        Message {
            eng: Rc::downgrade(eng),
            group,
            ctx,
            status,
            state: State::Whole(env, data),
        }
    }

    pub(crate) fn null(eng: &Rc<RefCell<Engine>>, group: Rc<Group>, ctx: u32) -> Self {
        Message {
            eng: Rc::downgrade(eng),
            group,
            ctx,
            status: Status::null(),
            state: State::Null,
        }
    }

    /// The probed message's status (source, tag, length).
    ///
    /// MPI 4.1 §3.8.2 (the status `MPI_Mprobe` returns).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&1u32, me, 5)?;
    /// let (mut msg, st) = world.mprobe(me, 5)?;
    /// assert_eq!((msg.status(), msg.status().tag()), (st, 5));
    /// let _: u32 = msg.recv()?;
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether this is the null message of a probe of `PROC_NULL`.
    ///
    /// MPI 4.1 §3.11 (`MPI_MESSAGE_NO_PROC`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// let (msg, st) = world.mprobe(shmpi::PROC_NULL, 0)?;
    /// assert!(msg.is_null());
    /// assert_eq!(st.source(), shmpi::PROC_NULL);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn is_null(&self) -> bool {
        matches!(self.state, State::Null)
    }

    /// All the message's bytes, waiting for the rest of a streamed one. `None` for the
    /// null message.
    fn bytes(&mut self) -> Result<Option<(Envelope, &AlignedVec)>> {
        if let State::Bound(env, id) = self.state {
            let eng = self
                .eng
                .upgrade()
                .ok_or_else(|| Error::Usage("Message received after this rank finalized".into()))?;
            let desc = WaitDesc {
                op: WaitOp::Recv,
                call: Call::Mrecv,
                peer: Some(env.src),
                tag: env.tag,
                ctx: self.ctx,
                group: &self.group,
            };
            let u = eng.borrow_mut().wait_claimed(id, &desc)?;
            self.state = State::Whole(u.env, u.data);
        }
        match &self.state {
            State::Null => Ok(None),
            State::Whole(env, data) => Ok(Some((*env, data))),
            State::Received => Err(Error::Usage(
                "this Message was received already: a matched message is received once".into(),
            )),
            State::Bound(..) => unreachable!("waited for above"),
        }
    }

    /// Receives the message as an object of type `T` (mpi4py `msg.recv()`). A message
    /// of another type is [`Error::TypeMismatch`] and the `Message` stays receivable.
    /// The null message has no value: an error.
    ///
    /// MPI 4.1 §3.8.3 (`MPI_Mrecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] of class [`ErrorClass::Rank`](crate::ErrorClass::Rank) for
    ///   the null message, which has no `T`;
    /// - [`Error::Usage`] when the message was received already, or when it was still
    ///   streaming in and this rank has finalized since;
    /// - [`Error::TypeMismatch`] when the message is not a `T`: the `Message` stays
    ///   receivable;
    /// - [`Error::InvalidArchive`] when its bytes fail validation: the `Message` stays
    ///   receivable (as bytes, with [`recv_raw`](Self::recv_raw));
    /// - [`Error::PeerFailed`] when the sender dies or leaves before a message that was still
    ///   streaming in at the probe has all arrived; [`Error::Aborted`] when the job is
    ///   aborted meanwhile; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&vec![1u8, 2], me, 0)?;
    /// let (mut msg, _) = world.mprobe(me, 0)?;
    /// assert!(msg.recv::<String>().is_err()); // not a String: the Message keeps it
    /// assert_eq!(msg.recv::<Vec<u8>>()?, [1, 2]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv<T: Decode>(&mut self) -> Result<T> {
        let st = self.status;
        let Some((env, data)) = self.bytes()? else {
            return Err(null_recv_error("Message::recv", codec::type_name::<T>()));
        };
        let want = Want::Object {
            type_id: codec::type_id::<T>(),
            type_name: codec::type_name::<T>(),
        };
        check(want, st, &env, data)?;
        let v = codec::decode::<T>(data, st.source(), st.tag())?;
        self.state = State::Received;
        Ok(v)
    }

    /// Receives the message into `buf` (mpi4py `msg.Recv(buf)`). A message longer than
    /// `buf` is [`Error::Truncated`] and the `Message` stays receivable. The null
    /// message leaves `buf` untouched.
    ///
    /// MPI 4.1 §3.8.3 (`MPI_Mrecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when `T` is zero-sized;
    /// - [`Error::Usage`] when the message was received already, or when it was still
    ///   streaming in and this rank has finalized since;
    /// - [`Error::Truncated`] when the message is longer than `buf`, [`Error::ElementSize`] when
    ///   its length is not a whole number of `T`s, [`Error::TypeMismatch`] when it was sent as
    ///   an object: the `Message` stays receivable;
    /// - [`Error::PeerFailed`] when the sender dies or leaves before a message that was still
    ///   streaming in at the probe has all arrived; [`Error::Aborted`] when the job is
    ///   aborted meanwhile; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[1u16, 2, 3], me, 0)?;
    /// let (mut msg, _) = world.mprobe(me, 0)?;
    /// let mut small = [0u16; 2];
    /// assert!(matches!(msg.recv_into(&mut small), Err(shmpi::Error::Truncated { .. })));
    /// let mut buf = [0u16; 3];
    /// msg.recv_into(&mut buf)?;
    /// assert_eq!(buf, [1, 2, 3]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_into<T: Pod>(&mut self, buf: &mut [T]) -> Result<Status> {
        let st = self.status;
        let elem = elem_size::<T>()?;
        let Some((env, data)) = self.bytes()? else {
            return Ok(st);
        };
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf);
        let want = Want::Bytes {
            cap: bytes.len(),
            elem,
            elem_type: codec::type_name::<T>(),
        };
        check(want, st, &env, data)?;
        bytes[..data.len()].copy_from_slice(data);
        self.state = State::Received;
        Ok(st)
    }

    /// Receives the message into a new `Vec` of exactly its size (empty for the null
    /// message).
    ///
    /// MPI 4.1 §3.8.3 (`MPI_Mrecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when `T` is zero-sized;
    /// - [`Error::Usage`] when the message was received already, or when it was still
    ///   streaming in and this rank has finalized since;
    /// - [`Error::ElementSize`] when the message's length is not a whole number of `T`s,
    ///   [`Error::TypeMismatch`] when it was sent as an object: the `Message` stays receivable;
    /// - [`Error::PeerFailed`] when the sender dies or leaves before a message that was still
    ///   streaming in at the probe has all arrived; [`Error::Aborted`] when the job is
    ///   aborted meanwhile; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[5u32; 6], me, 0)?;
    /// let (mut msg, st) = world.mprobe(me, 0)?;
    /// let (v, _) = msg.recv_vec::<u32>()?;
    /// assert_eq!((v.len(), st.count::<u32>()), (6, Some(6)));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_vec<T: Pod>(&mut self) -> Result<(Vec<T>, Status)> {
        let st = self.status;
        let elem = elem_size::<T>()?;
        let Some((env, data)) = self.bytes()? else {
            return Ok((Vec::new(), st));
        };
        let want = Want::Bytes {
            cap: env.len,
            elem,
            elem_type: codec::type_name::<T>(),
        };
        check(want, st, &env, data)?;
        let mut v = vec![T::zeroed(); env.len / elem];
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(data);
        self.state = State::Received;
        Ok((v, st))
    }

    /// Receives the message whatever it is, as bytes and the sender's type name.
    ///
    /// MPI 4.1 §3.8.3 (`MPI_Mrecv`).
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when the message was received already, or when it was still
    ///   streaming in and this rank has finalized since;
    /// - [`Error::PeerFailed`] when the sender dies or leaves before a message that was still
    ///   streaming in at the probe has all arrived; [`Error::Aborted`] when the job is
    ///   aborted meanwhile; [`Error::Corrupted`] when a ring fails a consistency check.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&3.5f64, me, 0)?;
    /// let (mut msg, _) = world.mprobe(me, 0)?;
    /// let raw = msg.recv_raw()?;
    /// assert_eq!(raw.decode::<f64>()?, 3.5);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn recv_raw(&mut self) -> Result<RawMessage> {
        let st = self.status;
        let raw = match self.bytes()? {
            None => RawMessage {
                data: AlignedVec::new(),
                type_id: 0,
                status: st,
            },
            Some((env, _)) => {
                let type_id = env.type_id;
                let State::Whole(_, data) = std::mem::replace(&mut self.state, State::Received)
                else {
                    unreachable!("bytes() made it whole")
                };
                RawMessage {
                    data,
                    type_id,
                    status: st,
                }
            }
        };
        self.state = State::Received;
        Ok(raw)
    }
}

impl Drop for Message {
    /// Discards a message that was not received.
    fn drop(&mut self) {
        if let State::Bound(_, id) = self.state {
            if let Some(eng) = self.eng.upgrade() {
                if let Ok(mut eng) = eng.try_borrow_mut() {
                    eng.drop_claimed(id);
                }
            }
        }
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("status", &self.status)
            .field("null", &self.is_null())
            .field("received", &matches!(self.state, State::Received))
            .finish()
    }
}

fn check(want: Want, st: Status, env: &Envelope, data: &AlignedVec) -> Result<()> {
    want.check(env, st.source(), || {
        codec::sent_type_name(data, env.type_id)
    })
}

fn elem_size<T>() -> Result<usize> {
    match std::mem::size_of::<T>() {
        0 => Err(Error::Usage(format!(
            "zero-sized element type `{}` cannot be received",
            codec::type_name::<T>()
        ))),
        n => Ok(n),
    }
}

/// A message received without naming its type
/// ([`Communicator::recv_raw`](crate::Communicator::recv_raw),
/// [`Message::recv_raw`]): its bytes, and the sender's type name for an object.
pub struct RawMessage {
    data: AlignedVec,
    type_id: u64,
    status: Status,
}

impl RawMessage {
    /// The raw-bytes message `data` with status `status`.
    pub(crate) fn bytes_of(data: AlignedVec, status: Status) -> Self {
        RawMessage {
            data,
            type_id: 0,
            status,
        }
    }

    /// Whether it was sent as an object (`send`), not as a slice (`send_slice`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&1u8, me, 0)?;
    /// world.send_slice(&[1u8], me, 1)?;
    /// assert!(world.recv_raw(me, 0)?.0.is_object());
    /// assert!(!world.recv_raw(me, 1)?.0.is_object());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn is_object(&self) -> bool {
        self.type_id != 0
    }

    /// The sender's type name (`std::any::type_name` of what it sent) for an object;
    /// `None` for a slice, which carries no type.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&String::from("s"), me, 0)?;
    /// let (raw, _) = world.recv_raw(me, 0)?;
    /// assert_eq!(raw.type_name(), Some(std::any::type_name::<String>()));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn type_name(&self) -> Option<&str> {
        if self.type_id == 0 {
            return None;
        }
        codec::split(&self.data).map(|(_, name)| name)
    }

    /// The bytes: an object's rkyv archive, or a slice's data.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[1u8, 2, 3], me, 0)?;
    /// assert_eq!(world.recv_raw(me, 0)?.0.bytes(), [1, 2, 3]);
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn bytes(&self) -> &[u8] {
        if self.type_id == 0 {
            return &self.data;
        }
        codec::split(&self.data).map_or(&self.data[..0], |(archive, _)| archive)
    }

    /// The status of the message it came from.
    ///
    /// MPI 4.1 §3.2.5 (`MPI_Status`).
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[0u8; 5], me, 4)?;
    /// let (raw, st) = world.recv_raw(me, 4)?;
    /// assert_eq!((raw.status(), raw.status().len()), (st, 5));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn status(&self) -> Status {
        self.status
    }

    /// Decodes it as an object of type `T` (validated), as
    /// [`recv`](crate::Communicator::recv) would have: [`Error::TypeMismatch`] if it was
    /// sent as something else. `recv_raw` then `decode::<Value>()` receives mpi4py-style
    /// dynamic values.
    ///
    /// # Errors
    ///
    /// - [`Error::TypeMismatch`] when the message is not a `T` (another type, or a slice);
    /// - [`Error::InvalidArchive`] when its bytes fail validation.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send(&(1u8, 'a'), me, 0)?;
    /// let (raw, _) = world.recv_raw(me, 0)?;
    /// assert!(raw.decode::<u8>().is_err());
    /// assert_eq!(raw.decode::<(u8, char)>()?, (1, 'a'));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn decode<T: Decode>(&self) -> Result<T> {
        let (source, tag) = (self.status.source(), self.status.tag());
        if self.type_id != codec::type_id::<T>() {
            return Err(Error::TypeMismatch {
                source_rank: source,
                tag,
                sent: codec::sent_type_name(&self.data, self.type_id),
                expected: codec::type_name::<T>(),
            });
        }
        codec::decode::<T>(&self.data, source, tag)
    }

    /// Copies a slice message out as `T`s: [`Error::TypeMismatch`] for an object,
    /// [`Error::ElementSize`] if its length is not a whole number of `T`s.
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] when `T` is zero-sized;
    /// - [`Error::TypeMismatch`] when the message was sent as an object;
    /// - [`Error::ElementSize`] when its length is not a whole number of `T`s.
    ///
    /// # Examples
    ///
    /// ```
    /// let world = shmpi::init()?.world();
    /// let me = world.rank();
    /// world.send_slice(&[1u16, 2], me, 0)?;
    /// let (raw, _) = world.recv_raw(me, 0)?;
    /// assert_eq!(raw.to_vec::<u16>()?, [1, 2]);
    /// assert!(matches!(raw.to_vec::<u32>(), Ok(v) if v.len() == 1));
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    pub fn to_vec<T: Pod>(&self) -> Result<Vec<T>> {
        let elem = elem_size::<T>()?;
        let (source, tag) = (self.status.source(), self.status.tag());
        if self.type_id != 0 {
            return Err(Error::TypeMismatch {
                source_rank: source,
                tag,
                sent: codec::sent_type_name(&self.data, self.type_id),
                expected: codec::type_name::<T>(),
            });
        }
        if self.data.len() % elem != 0 {
            return Err(Error::ElementSize {
                source_rank: source,
                tag,
                message_len: self.data.len(),
                elem_size: elem,
                elem_type: codec::type_name::<T>(),
            });
        }
        let mut v = vec![T::zeroed(); self.data.len() / elem];
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(&self.data);
        Ok(v)
    }
}

impl std::fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMessage")
            .field("type_name", &self.type_name())
            .field("len", &self.bytes().len())
            .field("status", &self.status)
            .finish()
    }
}
