//! The frame header of the rank-to-rank data path, and its validating decoder.
//!
//! Every message between two ranks travels behind a 40-byte header (20 bytes for most eager
//! messages, see below), optionally followed by a payload. All fields are fixed-width
//! little-endian (never `usize`): one cluster may mix 32-bit armv7 and 64-bit aarch64
//! boards.
//!
//! ```text
//!  0  u8   magic (0xB7)          1  u8  kind          2  u8 flags      3  u8 reserved (0)
//!  4  u32  context (communicator)                    8  i32 tag
//! 12  u32  type signature        16  u32 element size 20  u32 reserved (0)
//! 24  u64  message length in bytes
//! 32  u64  rendezvous id (0 for eager)
//! ```
//!
//! An eager message whose element size fits a byte travels with a 20-byte header instead
//! (wire kind [`SHORT_EAGER`]); it decodes to the same [`Header`] of kind [`Kind::Eager`]:
//!
//! ```text
//!  0  u8   magic (0xB7)          1  u8  6 (short eager) 2  u8 flags      3  u8 element size
//!  4  u32  context (communicator)                    8  i32 tag
//! 12  u32  type signature        16  u32 message length in bytes
//! ```
//!
//! Small messages are where the header is most of the bytes: on a 100 Mbit/s link an 8-byte
//! message with its 20-byte collective header, TCP/IP and Ethernet took 134 bytes on the
//! wire with the long header, and back-to-back small collectives are bound by exactly that
//! (`benches/compare/README.md`, testbed finding 6).
//!
//! A payload of `len` bytes follows only [`Kind::Eager`] and [`Kind::Data`] frames. The
//! decoder rejects anything malformed with an error — unknown kinds, non-zero reserved
//! bytes, lengths above the limits — so no caller ever allocates from an unchecked length.

use std::fmt;

/// Size of an encoded header (the long form, and the most any header takes).
pub const HEADER_LEN: usize = 40;

/// Size of the short form of an eager header.
pub const SHORT_LEN: usize = 20;

/// Wire kind byte of the short eager header; it decodes to [`Kind::Eager`].
pub const SHORT_EAGER: u8 = 6;

/// First byte of every header.
pub const MAGIC: u8 = 0xB7;

/// Largest eager payload any rank accepts, whatever its own eager limit is configured to.
pub const EAGER_HARD_MAX: u64 = 1 << 20;

/// Flag: the payload is a postcard-encoded serde value rather than raw `Pod` bytes.
pub const FLAG_SERDE: u8 = 1;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A whole small message; the payload follows.
    Eager = 1,
    /// Ready-to-send: announces a large message of `len` bytes; no payload.
    Rts = 2,
    /// Clear-to-send for the rendezvous `id`; no payload.
    Cts = 3,
    /// The payload of rendezvous `id`; `len` bytes follow.
    Data = 4,
    /// The sender finalized normally and will send nothing more.
    Goodbye = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Eager,
            2 => Kind::Rts,
            3 => Kind::Cts,
            4 => Kind::Data,
            5 => Kind::Goodbye,
            _ => return None,
        })
    }

    /// Whether `len` payload bytes follow a header of this kind on the wire.
    pub fn has_payload(self) -> bool {
        matches!(self, Kind::Eager | Kind::Data)
    }
}

/// A decoded, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the frame is.
    pub kind: Kind,
    /// [`FLAG_SERDE`] or 0.
    pub flags: u8,
    /// Communicator context the message belongs to.
    pub ctx: u32,
    /// Message tag (>= 0 on the wire).
    pub tag: i32,
    /// Signature of the element type (see `datatype`), 0 for untyped bytes.
    pub type_sig: u32,
    /// Size of one element in bytes, 0 for untyped bytes and serde values.
    pub elem_size: u32,
    /// Message length in bytes.
    pub len: u64,
    /// Rendezvous id for `Rts`, `Cts` and `Data`; 0 otherwise.
    pub id: u64,
}

/// Why a header was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The first byte is not [`MAGIC`]: not a pirun frame, or the stream is out of step.
    BadMagic(u8),
    /// The kind byte names no known frame kind.
    UnknownKind(u8),
    /// A reserved field or unknown flag is set.
    Reserved,
    /// The tag is negative.
    NegativeTag(i32),
    /// The length is above what this kind of frame may carry.
    TooLong {
        /// Kind of the frame.
        kind: Kind,
        /// Length it claimed.
        len: u64,
        /// The limit for that kind.
        limit: u64,
    },
    /// A control frame (`Cts`, `Goodbye`) claims a non-zero length.
    UnexpectedLength(Kind),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::BadMagic(b) => write!(f, "bad magic byte {b:#04x} (not a pirun frame)"),
            HeaderError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            HeaderError::Reserved => write!(f, "reserved header bits are set"),
            HeaderError::NegativeTag(t) => write!(f, "negative tag {t} on the wire"),
            HeaderError::TooLong { kind, len, limit } => {
                write!(
                    f,
                    "{kind:?} frame claims {len} bytes, above the limit of {limit}"
                )
            }
            HeaderError::UnexpectedLength(kind) => {
                write!(f, "{kind:?} frame claims a non-zero length")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

impl Header {
    /// A header with the given kind and everything else zero.
    pub fn new(kind: Kind) -> Header {
        Header {
            kind,
            flags: 0,
            ctx: 0,
            tag: 0,
            type_sig: 0,
            elem_size: 0,
            len: 0,
            id: 0,
        }
    }

    /// Encodes the header into its 40 wire bytes.
    ///
    /// ```
    /// use pirun::frame::{Header, Kind, Limits};
    /// let mut h = Header::new(Kind::Eager);
    /// h.tag = 7;
    /// h.len = 3;
    /// let bytes = h.encode();
    /// assert_eq!(Header::decode(&bytes, &Limits::default()), Ok(h));
    /// ```
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = MAGIC;
        b[1] = self.kind as u8;
        b[2] = self.flags;
        b[4..8].copy_from_slice(&self.ctx.to_le_bytes());
        b[8..12].copy_from_slice(&self.tag.to_le_bytes());
        b[12..16].copy_from_slice(&self.type_sig.to_le_bytes());
        b[16..20].copy_from_slice(&self.elem_size.to_le_bytes());
        b[24..32].copy_from_slice(&self.len.to_le_bytes());
        b[32..40].copy_from_slice(&self.id.to_le_bytes());
        b
    }

    /// Decodes and validates a header against `limits`.
    pub fn decode(b: &[u8; HEADER_LEN], limits: &Limits) -> Result<Header, HeaderError> {
        if b[0] != MAGIC {
            return Err(HeaderError::BadMagic(b[0]));
        }
        let kind = Kind::from_u8(b[1]).ok_or(HeaderError::UnknownKind(b[1]))?;
        let flags = b[2];
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        if flags & !FLAG_SERDE != 0 || b[3] != 0 || u32_at(20) != 0 {
            return Err(HeaderError::Reserved);
        }
        let tag = u32_at(8) as i32;
        if tag < 0 {
            return Err(HeaderError::NegativeTag(tag));
        }
        let len = u64_at(24);
        // Never more than this host can address (a 32-bit board cannot hold 4 GiB).
        let addressable = usize::MAX as u64;
        let limit = match kind {
            Kind::Eager => limits.eager_max.min(EAGER_HARD_MAX),
            Kind::Rts | Kind::Data => limits.message_max.min(addressable),
            Kind::Cts | Kind::Goodbye => 0,
        };
        if len > limit {
            return Err(if kind.has_payload() || kind == Kind::Rts {
                HeaderError::TooLong { kind, len, limit }
            } else {
                HeaderError::UnexpectedLength(kind)
            });
        }
        Ok(Header {
            kind,
            flags,
            ctx: u32_at(4),
            tag,
            type_sig: u32_at(12),
            elem_size: u32_at(16),
            len,
            id: u64_at(32),
        })
    }

    /// Whether the header goes in the short form: an eager message whose element size
    /// fits a byte.
    fn is_short(&self) -> bool {
        self.kind == Kind::Eager
            && self.elem_size <= u32::from(u8::MAX)
            && self.id == 0
            && self.len <= u64::from(u32::MAX)
    }

    /// Encodes the header in its wire form — short when it can be — into the start of
    /// `out`, and returns how many bytes that took.
    ///
    /// ```
    /// use pirun::frame::{Header, Kind, Limits, SHORT_LEN, HEADER_LEN};
    /// let mut h = Header::new(Kind::Eager);
    /// h.elem_size = 8;
    /// h.len = 64;
    /// let mut out = [0u8; HEADER_LEN];
    /// let n = h.encode_wire(&mut out);
    /// assert_eq!(n, SHORT_LEN);
    /// assert_eq!(Header::wire_len(&out[..2]), Ok(SHORT_LEN));
    /// assert_eq!(Header::decode_wire(&out[..n], &Limits::default()), Ok(h));
    /// ```
    pub fn encode_wire(&self, out: &mut [u8; HEADER_LEN]) -> usize {
        if !self.is_short() {
            *out = self.encode();
            return HEADER_LEN;
        }
        out[0] = MAGIC;
        out[1] = SHORT_EAGER;
        out[2] = self.flags;
        out[3] = self.elem_size as u8;
        out[4..8].copy_from_slice(&self.ctx.to_le_bytes());
        out[8..12].copy_from_slice(&self.tag.to_le_bytes());
        out[12..16].copy_from_slice(&self.type_sig.to_le_bytes());
        out[16..20].copy_from_slice(&(self.len as u32).to_le_bytes());
        SHORT_LEN
    }

    /// Length of the header that starts with `first` (at least its first two bytes):
    /// [`SHORT_LEN`] or [`HEADER_LEN`]. Only the magic byte is checked here; the kind and
    /// everything else are checked by [`Header::decode_wire`].
    pub fn wire_len(first: &[u8]) -> Result<usize, HeaderError> {
        match first {
            [MAGIC, SHORT_EAGER, ..] => Ok(SHORT_LEN),
            [MAGIC, _, ..] => Ok(HEADER_LEN),
            [b, ..] => Err(HeaderError::BadMagic(*b)),
            [] => Err(HeaderError::BadMagic(0)),
        }
    }

    /// Decodes and validates a header in either wire form; `b` is exactly the
    /// [`Header::wire_len`] bytes of it.
    pub fn decode_wire(b: &[u8], limits: &Limits) -> Result<Header, HeaderError> {
        if let Ok(long) = <&[u8; HEADER_LEN]>::try_from(b) {
            return Header::decode(long, limits);
        }
        let Ok(b) = <&[u8; SHORT_LEN]>::try_from(b) else {
            return Err(HeaderError::BadMagic(b.first().copied().unwrap_or(0)));
        };
        if b[0] != MAGIC {
            return Err(HeaderError::BadMagic(b[0]));
        }
        if b[1] != SHORT_EAGER {
            return Err(HeaderError::UnknownKind(b[1]));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let flags = b[2];
        if flags & !FLAG_SERDE != 0 {
            return Err(HeaderError::Reserved);
        }
        let tag = u32_at(8) as i32;
        if tag < 0 {
            return Err(HeaderError::NegativeTag(tag));
        }
        let len = u64::from(u32_at(16));
        let limit = limits.eager_max.min(EAGER_HARD_MAX);
        if len > limit {
            return Err(HeaderError::TooLong {
                kind: Kind::Eager,
                len,
                limit,
            });
        }
        Ok(Header {
            kind: Kind::Eager,
            flags,
            ctx: u32_at(4),
            tag,
            type_sig: u32_at(12),
            elem_size: u32::from(b[3]),
            len,
            id: 0,
        })
    }
}

/// Length limits the decoder enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest eager payload accepted.
    pub eager_max: u64,
    /// Largest message (rendezvous) accepted.
    pub message_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            eager_max: EAGER_HARD_MAX,
            message_max: 1 << 36,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Eager),
            Just(Kind::Rts),
            Just(Kind::Cts),
            Just(Kind::Data),
            Just(Kind::Goodbye),
        ]
    }

    prop_compose! {
        fn arb_header()(kind in arb_kind(), serde in any::<bool>(), ctx in any::<u32>(),
                        tag in 0..=i32::MAX, type_sig in any::<u32>(), elem_size in any::<u32>(),
                        len in 0..=EAGER_HARD_MAX, id in any::<u64>()) -> Header {
            let len = if matches!(kind, Kind::Cts | Kind::Goodbye) { 0 } else { len };
            Header { kind, flags: if serde { FLAG_SERDE } else { 0 }, ctx, tag, type_sig, elem_size, len, id }
        }
    }

    proptest! {
        #[test]
        fn valid_headers_round_trip(h in arb_header()) {
            prop_assert_eq!(Header::decode(&h.encode(), &Limits::default()), Ok(h));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_respect_limits(bytes in proptest::array::uniform32(any::<u8>()), tail in any::<[u8; 8]>()) {
            let mut b = [0u8; HEADER_LEN];
            b[..32].copy_from_slice(&bytes);
            b[32..].copy_from_slice(&tail);
            let limits = Limits { eager_max: 4096, message_max: 1 << 20 };
            if let Ok(h) = Header::decode(&b, &limits) {
                prop_assert!(h.tag >= 0);
                match h.kind {
                    Kind::Eager => prop_assert!(h.len <= 4096),
                    Kind::Rts | Kind::Data => prop_assert!(h.len <= 1 << 20),
                    Kind::Cts | Kind::Goodbye => prop_assert_eq!(h.len, 0),
                }
                prop_assert_eq!(h.encode(), b);
            }
        }

        #[test]
        fn wire_forms_round_trip_and_say_their_length(h in arb_header()) {
            let mut out = [0u8; HEADER_LEN];
            let n = h.encode_wire(&mut out);
            let short = h.kind == Kind::Eager && h.elem_size <= 255 && h.id == 0;
            prop_assert_eq!(n, if short { SHORT_LEN } else { HEADER_LEN });
            prop_assert_eq!(Header::wire_len(&out[..2]), Ok(n));
            prop_assert_eq!(Header::decode_wire(&out[..n], &Limits::default()), Ok(h));
        }

        #[test]
        fn arbitrary_short_headers_never_panic_and_respect_limits(mut b in any::<[u8; SHORT_LEN]>(), short in any::<bool>()) {
            if short {
                b[0] = MAGIC;
                b[1] = SHORT_EAGER;
            }
            let limits = Limits { eager_max: 4096, message_max: 1 << 20 };
            if let Ok(h) = Header::decode_wire(&b, &limits) {
                prop_assert_eq!(h.kind, Kind::Eager);
                prop_assert!(h.tag >= 0 && h.len <= 4096);
                let mut out = [0u8; HEADER_LEN];
                prop_assert_eq!(h.encode_wire(&mut out), SHORT_LEN);
                prop_assert_eq!(&out[..SHORT_LEN], &b[..]);
            }
        }

        #[test]
        fn any_single_byte_corruption_of_magic_kind_or_reserved_is_rejected(h in arb_header(), pos in prop_oneof![Just(0usize), Just(3), 20..24usize], v in 1..=255u8) {
            let mut b = h.encode();
            b[pos] ^= v;
            prop_assert!(Header::decode(&b, &Limits::default()).is_err());
        }
    }

    #[test]
    fn oversized_eager_is_rejected() {
        let mut h = Header::new(Kind::Eager);
        h.len = EAGER_HARD_MAX + 1;
        assert!(matches!(
            Header::decode(&h.encode(), &Limits::default()),
            Err(HeaderError::TooLong { .. })
        ));
    }

    #[test]
    fn cts_with_length_is_rejected() {
        let mut h = Header::new(Kind::Cts);
        h.len = 1;
        assert_eq!(
            Header::decode(&h.encode(), &Limits::default()),
            Err(HeaderError::UnexpectedLength(Kind::Cts))
        );
    }
}
