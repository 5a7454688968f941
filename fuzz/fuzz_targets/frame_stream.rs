//! A receiver splitting an arbitrary byte stream into frames with the public API only.
//!
//! Input: bytes 0..4 and 4..8 pick the limits (little-endian u32s, reduced to
//! `eager_max <= EAGER_HARD_MAX` and `message_max <= 16 MiB` so that a length the decoder
//! rightly accepts can be allocated); the rest is the stream as read from a socket.
//!
//! The receiver reads a header as the runtime does (20 bytes, whose first two say whether
//! it is the 20-byte short eager form or the 40-byte long one, then the rest), decodes it,
//! and, for a kind that carries a payload, allocates a buffer of the announced length *before* the payload arrives (as
//! the runtime does), then fills it. It stops at the first rejected header (the runtime
//! drops the connection) or when the stream ends mid-frame.
//!
//! Checks: nothing panics; every allocation is sized by a length the decoder has
//! checked against the limit for the frame's kind (asserted before allocating, and
//! again through a global allocator that records the largest single allocation); the
//! frames re-encode, each in the form it came in, to exactly the bytes consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirun::frame::{Header, Limits, EAGER_HARD_MAX, HEADER_LEN, SHORT_LEN};
use pirun_fuzz::{limit_for, take, PeakAlloc};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

const MESSAGE_MAX_CAP: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        eager_max: u64::from(u32::from_le_bytes(take(data, 0))) % (EAGER_HARD_MAX + 1),
        message_max: u64::from(u32::from_le_bytes(take(data, 4))) % (MESSAGE_MAX_CAP + 1),
    };
    let stream = data.get(8..).unwrap_or(&[]);
    let bound = limits.eager_max.max(limits.message_max) as usize;

    PeakAlloc::reset();
    let mut pos = 0usize;
    let mut frames: Vec<(Header, usize, Vec<u8>)> = Vec::with_capacity(stream.len() / SHORT_LEN);
    loop {
        let Some(first) = stream.get(pos..pos + SHORT_LEN) else {
            break; // not even a short header yet
        };
        let Ok(n) = Header::wire_len(first) else {
            break; // protocol error: the connection is dropped
        };
        let Some(raw) = stream.get(pos..pos + n) else {
            break; // not a whole header yet
        };
        let Ok(h) = Header::decode_wire(raw, &limits) else {
            break; // protocol error: the connection is dropped
        };
        pos += n;
        let mut payload = Vec::new();
        if h.kind.has_payload() {
            // The only length a receiver ever allocates from comes from the wire.
            let limit = limit_for(h.kind, &limits);
            assert!(
                h.len <= limit,
                "{:?} frame of {} bytes accepted above its limit {limit}",
                h.kind,
                h.len
            );
            let len = usize::try_from(h.len).expect("checked length fits usize");
            payload.reserve_exact(len);
            let avail = (stream.len() - pos).min(len);
            payload.extend_from_slice(&stream[pos..pos + avail]);
            pos += avail;
            if avail < len {
                break; // stream ended mid-payload: the receiver waits for more
            }
        }
        frames.push((h, n, payload));
    }
    let peak = PeakAlloc::peak();

    // Nothing was allocated that the limits (or the input itself) do not account for.
    assert!(
        peak <= bound
            .max(frames.capacity() * std::mem::size_of::<(Header, usize, Vec<u8>)>())
            .max(64),
        "largest allocation {peak} bytes exceeds the checked bound {bound} ({limits:?})"
    );

    // Complete frames re-encode to the bytes consumed.
    let mut again = Vec::with_capacity(pos);
    for (h, n, p) in &frames {
        if *n == HEADER_LEN {
            again.extend_from_slice(&h.encode());
        } else {
            let mut wire = [0u8; HEADER_LEN];
            assert_eq!(
                h.encode_wire(&mut wire),
                *n,
                "a short header re-encodes short"
            );
            again.extend_from_slice(&wire[..*n]);
        }
        again.extend_from_slice(p);
    }
    assert_eq!(&stream[..again.len()], &again[..]);
});
