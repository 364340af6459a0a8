//! The envelope: what a record on the wire says about the message it carries.
//!
//! A message travels as one record (`Eager`, `EagerTyped`) when it fits, else as a
//! `First` record followed by `Cont` records carrying the rest of the bytes in order.
//! The source is implied by the ring. Header words after the ring's seal:
//!
//! | kind | words | payload |
//! |---|---|---|
//! | `Eager` | `ctx:32 | tag:32` | the whole message (raw bytes: a slice) |
//! | `EagerTyped` | `ctx | tag`, `type_id` | the whole message (an object archive + type name) |
//! | `First` | `ctx | tag`, `total_len`, `type_id` | the first bytes of a long message |
//! | `Cont` | none | the next bytes of the message in progress on this ring |
//! | `Sync` | `token` | none: the next message on this ring is a synchronous send |
//! | `Ack` | `token` | none: the receiver matched the synchronous send `token` (or read offer `token`) |
//! | `Offer` | `ctx | tag`, `total_len`, `type_id` | `pid`, `addr`, `token`: the message is at `addr` in process `pid` |
//!
//! `type_id` is 0 for raw bytes, else a fingerprint of the object's type.
//!
//! A synchronous send (`ssend`) is an ordinary message preceded by a `Sync` record
//! carrying the sender's token; when a receive matches the message, the receiver sends
//! an `Ack` record with that token back through the reverse ring, which completes the
//! sender's call. Ordinary messages carry no flag and no extra word, and the receive
//! fast paths never see a `Sync` record (a pending one marks its ring busy), so they
//! cost exactly what they did before. `Ack` records may arrive between the records of
//! a streamed message, and are handled apart from it.
//!
//! A large non-blocking send where ranks may read each other's memory (`sys::cma`)
//! sends an `Offer` instead of its bytes: the receive that matches it copies the
//! message straight from the sender's buffer (one copy instead of two through the
//! ring) and answers with an `Ack` carrying the offer's token, which completes the
//! send and lets its buffer go.

/// Record kinds (the ring reserves 0 and 0xff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Eager = 1,
    EagerTyped = 2,
    First = 3,
    Cont = 4,
    Sync = 5,
    Ack = 6,
    Offer = 7,
}

impl Kind {
    pub(crate) fn from_u8(k: u8) -> Option<Kind> {
        Some(match k {
            1 => Kind::Eager,
            2 => Kind::EagerTyped,
            3 => Kind::First,
            4 => Kind::Cont,
            5 => Kind::Sync,
            6 => Kind::Ack,
            7 => Kind::Offer,
            _ => return None,
        })
    }
}

/// What every receive matches on and learns about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// Communicator context id.
    pub(crate) ctx: u32,
    /// World rank of the sender.
    pub(crate) src: usize,
    pub(crate) tag: i32,
    /// Bytes in the whole message.
    pub(crate) len: usize,
    /// 0 for raw bytes, else the object type's fingerprint.
    pub(crate) type_id: u64,
}

#[inline]
pub(crate) fn pack_ctx_tag(ctx: u32, tag: i32) -> u64 {
    ctx as u64 | (tag as u32 as u64) << 32
}

#[inline]
pub(crate) fn unpack_ctx_tag(w: u64) -> (u32, i32) {
    (w as u32, (w >> 32) as u32 as i32)
}

/// The header words of the record that starts a message.
pub(crate) fn start_words(env: &Envelope, whole: bool) -> (Kind, [u64; 3], usize) {
    let ct = pack_ctx_tag(env.ctx, env.tag);
    match (whole, env.type_id) {
        (true, 0) => (Kind::Eager, [ct, 0, 0], 1),
        (true, t) => (Kind::EagerTyped, [ct, t, 0], 2),
        (false, t) => (Kind::First, [ct, env.len as u64, t], 3),
    }
}

/// Decodes the envelope of a starting record; `None` for a `Cont`, `Sync`, `Ack` or
/// `Offer` record (an offer's envelope is [`offer_envelope`]'s).
pub(crate) fn decode_start(
    kind: Kind,
    words: &[u64; 3],
    payload_len: usize,
    src: usize,
) -> Option<Envelope> {
    let (ctx, tag) = unpack_ctx_tag(words[0]);
    let (len, type_id) = match kind {
        Kind::Eager => (payload_len, 0),
        Kind::EagerTyped => (payload_len, words[1]),
        Kind::First => (words[1] as usize, words[2]),
        Kind::Cont | Kind::Sync | Kind::Ack | Kind::Offer => return None,
    };
    Some(Envelope {
        ctx,
        src,
        tag,
        len,
        type_id,
    })
}

/// Where an offered message's bytes are: in process `pid`, at `addr`; `token`
/// identifies the send in the acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remote {
    pub(crate) pid: i32,
    pub(crate) addr: u64,
    pub(crate) token: u64,
}

impl Remote {
    pub(crate) fn to_payload(self) -> [u8; 24] {
        let mut p = [0u8; 24];
        p[..8].copy_from_slice(&(self.pid as u32 as u64).to_le_bytes());
        p[8..16].copy_from_slice(&self.addr.to_le_bytes());
        p[16..].copy_from_slice(&self.token.to_le_bytes());
        p
    }

    pub(crate) fn from_payload(p: &[u8]) -> Option<Remote> {
        let w = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        (p.len() == 24).then(|| Remote {
            pid: w(0) as u32 as i32,
            addr: w(8),
            token: w(16),
        })
    }
}

/// The header words of an `Offer` record.
pub(crate) fn offer_words(env: &Envelope) -> [u64; 3] {
    [pack_ctx_tag(env.ctx, env.tag), env.len as u64, env.type_id]
}

/// The envelope of an `Offer` record from `src`.
pub(crate) fn offer_envelope(words: &[u64; 3], src: usize) -> Envelope {
    let (ctx, tag) = unpack_ctx_tag(words[0]);
    Envelope {
        ctx,
        src,
        tag,
        len: words[1] as usize,
        type_id: words[2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_through_header_words() {
        for (env, whole) in [
            (
                Envelope {
                    ctx: 7,
                    src: 3,
                    tag: 0x7fff_ffff,
                    len: 5,
                    type_id: 0,
                },
                true,
            ),
            (
                Envelope {
                    ctx: u32::MAX,
                    src: 1,
                    tag: 0,
                    len: 9,
                    type_id: 42,
                },
                true,
            ),
            (
                Envelope {
                    ctx: 2,
                    src: 0,
                    tag: 11,
                    len: 1 << 33,
                    type_id: 5,
                },
                false,
            ),
        ] {
            let (kind, words, _) = start_words(&env, whole);
            let payload = if whole { env.len } else { 100 };
            assert_eq!(decode_start(kind, &words, payload, env.src), Some(env));
        }
    }

    #[test]
    fn control_records_start_no_message() {
        for kind in [Kind::Cont, Kind::Sync, Kind::Ack, Kind::Offer] {
            assert_eq!(Kind::from_u8(kind as u8), Some(kind));
            assert_eq!(decode_start(kind, &[7, 0, 0], 0, 1), None, "{kind:?}");
        }
        assert_eq!(Kind::from_u8(0), None);
        assert_eq!(Kind::from_u8(8), None);
    }

    #[test]
    fn offers_round_trip_and_refuse_a_wrong_length() {
        let env = Envelope {
            ctx: 3,
            src: 2,
            tag: 9,
            len: 1 << 20,
            type_id: 0,
        };
        assert_eq!(offer_envelope(&offer_words(&env), 2), env);
        let r = Remote {
            pid: 4242,
            addr: 0x7f00_dead_b000,
            token: 77,
        };
        assert_eq!(Remote::from_payload(&r.to_payload()), Some(r));
        assert_eq!(Remote::from_payload(&r.to_payload()[..16]), None);
    }
}
