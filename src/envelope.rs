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
//! | `Ack` | `token` | none: the receiver matched the synchronous send `token` |
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

/// Decodes the envelope of a starting record; `None` for a `Cont`, `Sync` or `Ack`
/// record.
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
        Kind::Cont | Kind::Sync | Kind::Ack => return None,
    };
    Some(Envelope {
        ctx,
        src,
        tag,
        len,
        type_id,
    })
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
        for kind in [Kind::Cont, Kind::Sync, Kind::Ack] {
            assert_eq!(Kind::from_u8(kind as u8), Some(kind));
            assert_eq!(decode_start(kind, &[7, 0, 0], 0, 1), None, "{kind:?}");
        }
        assert_eq!(Kind::from_u8(0), None);
        assert_eq!(Kind::from_u8(7), None);
    }
}
