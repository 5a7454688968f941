//! `Header::decode` on 40 arbitrary bytes under arbitrary limits, and `Header::decode_wire`
//! on their first 20 as a short eager header.
//!
//! Input: bytes 0..40 are the header (zero-padded if short); if 56 bytes or more are
//! given, bytes 40..48 and 48..56 are `eager_max` and `message_max` (little-endian),
//! otherwise `Limits::default()` applies.
//!
//! Checks: decode never panics; it accepts exactly what an independent reading of the
//! wire format accepts; an accepted header re-encodes to the same 40 bytes, decodes again
//! to itself, and carries a length within the limit for its kind; every rejection names
//! the field that is actually wrong. The short form is accepted exactly when the same
//! independent reading accepts it, and re-encodes to its 20 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirun::frame::{
    Header, HeaderError, Kind, Limits, FLAG_SERDE, HEADER_LEN, MAGIC, SHORT_EAGER, SHORT_LEN,
};
use pirun_fuzz::{limit_for, take};

fuzz_target!(|data: &[u8]| {
    let b: [u8; HEADER_LEN] = take(data, 0);
    let limits = if data.len() >= HEADER_LEN + 16 {
        Limits {
            eager_max: u64::from_le_bytes(take(data, 40)),
            message_max: u64::from_le_bytes(take(data, 48)),
        }
    } else {
        Limits::default()
    };

    // Independent reading of the format (see the table at the top of frame.rs).
    let len = u64::from_le_bytes(take(&b, 24));
    let kind_limit = match b[1] {
        1 => Some(limit_for(Kind::Eager, &limits)),
        2 | 4 => Some(limit_for(Kind::Data, &limits)),
        3 | 5 => Some(0),
        _ => None,
    };

    // The short eager form: bytes 0..20, told apart by its kind byte.
    let short_len = u64::from(u32::from_le_bytes(take(&b, 16)));
    let short_ok = b[0] == MAGIC
        && b[1] == SHORT_EAGER
        && b[2] & !FLAG_SERDE == 0
        && b[11] & 0x80 == 0
        && short_len <= limit_for(Kind::Eager, &limits);
    match Header::decode_wire(&b[..SHORT_LEN], &limits) {
        Ok(h) => {
            assert!(
                short_ok,
                "accepted a malformed short header: {b:02x?} {limits:?}"
            );
            assert_eq!((h.kind, h.len, h.id), (Kind::Eager, short_len, 0));
            let mut again = [0u8; HEADER_LEN];
            assert_eq!(h.encode_wire(&mut again), SHORT_LEN);
            assert_eq!(again[..SHORT_LEN], b[..SHORT_LEN]);
        }
        Err(e) => assert!(
            !short_ok,
            "rejected a well-formed short header ({e}): {b:02x?}"
        ),
    }
    let well_formed = b[0] == MAGIC
        && kind_limit.is_some()
        && b[2] & !FLAG_SERDE == 0
        && b[3] == 0
        && b[20..24] == [0; 4]
        && b[11] & 0x80 == 0
        && kind_limit.is_some_and(|l| len <= l);

    match Header::decode(&b, &limits) {
        Ok(h) => {
            assert!(
                well_formed,
                "accepted a malformed header: {b:02x?} {limits:?}"
            );
            assert!(h.tag >= 0);
            assert_eq!(h.flags & !FLAG_SERDE, 0);
            assert!(
                h.len <= limit_for(h.kind, &limits),
                "{:?} frame of {} bytes accepted above its limit under {limits:?}",
                h.kind,
                h.len
            );
            assert_eq!(
                h.encode(),
                b,
                "encode does not reproduce the accepted bytes"
            );
            assert_eq!(Header::decode(&h.encode(), &limits), Ok(h));
        }
        Err(e) => {
            assert!(
                !well_formed,
                "rejected a well-formed header ({e}): {b:02x?} {limits:?}"
            );
            let _ = e.to_string();
            match e {
                HeaderError::BadMagic(m) => assert!(m == b[0] && m != MAGIC),
                HeaderError::UnknownKind(k) => {
                    assert!(b[0] == MAGIC && k == b[1] && kind_limit.is_none())
                }
                HeaderError::Reserved => {
                    assert!(b[2] & !FLAG_SERDE != 0 || b[3] != 0 || b[20..24] != [0; 4])
                }
                HeaderError::NegativeTag(t) => {
                    assert!(t < 0 && t == i32::from_le_bytes(take(&b, 8)))
                }
                HeaderError::TooLong {
                    kind,
                    len: l,
                    limit,
                } => {
                    assert!(l == len && limit == limit_for(kind, &limits) && l > limit);
                    assert_eq!(kind as u8, b[1]);
                }
                HeaderError::UnexpectedLength(kind) => {
                    assert!(limit_for(kind, &limits) == 0 && len > 0);
                    assert_eq!(kind as u8, b[1]);
                }
            }
        }
    }
});
