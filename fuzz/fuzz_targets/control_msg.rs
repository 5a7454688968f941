//! The launcher–rank control protocol (u32 length prefix + postcard body) on arbitrary
//! input.
//!
//! Input: bytes 0..4 are a length prefix, the rest a frame body; the whole input is also
//! read as a stream of frames with `ControlMsg::read_from`.
//!
//! Checks: nothing panics; `body_len` accepts exactly the prefixes up to
//! `MAX_CONTROL_FRAME`; `from_body` either rejects the body or returns a message that
//! survives `to_frame` → `body_len` → `from_body` unchanged; no single allocation made
//! while parsing exceeds `MAX_CONTROL_FRAME` (a length prefix is never trusted beyond it,
//! and the postcard decoder does not preallocate from lengths inside the body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirun::contract::{ControlMsg, MAX_CONTROL_FRAME};
use pirun_fuzz::{take, PeakAlloc};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

fn round_trips(msg: &ControlMsg) {
    let frame = msg.to_frame();
    let len = ControlMsg::body_len(take(&frame, 0)).expect("own frame within the limit");
    assert_eq!(len, frame.len() - 4);
    assert_eq!(&ControlMsg::from_body(&frame[4..]).expect("own frame decodes"), msg);
}

fuzz_target!(|data: &[u8]| {
    let prefix: [u8; 4] = take(data, 0);
    let body = data.get(4..).unwrap_or(&[]);

    PeakAlloc::reset();
    let announced = u32::from_le_bytes(prefix) as usize;
    match ControlMsg::body_len(prefix) {
        Ok(len) => {
            assert!(len <= MAX_CONTROL_FRAME, "accepted a {len}-byte control frame");
            assert_eq!(len, announced);
        }
        Err(e) => assert!(announced > MAX_CONTROL_FRAME, "refused {announced} bytes: {e}"),
    }

    // The body as a whole, and the body cut to its announced length (what a reader does).
    let mut decoded = Vec::new();
    if let Ok(msg) = ControlMsg::from_body(body) {
        decoded.push(msg);
    }
    if announced <= body.len() {
        if let Ok(msg) = ControlMsg::from_body(&body[..announced]) {
            decoded.push(msg);
        }
    }

    // The whole input as a stream of frames.
    let mut r = data;
    for _ in 0..=data.len() / 4 {
        match ControlMsg::read_from(&mut r) {
            Ok(Some(msg)) => decoded.push(msg),
            Ok(None) | Err(_) => break,
        }
    }
    let peak = PeakAlloc::peak();
    assert!(
        peak <= MAX_CONTROL_FRAME,
        "a {}-byte input made the control decoder allocate {peak} bytes at once",
        data.len()
    );

    for msg in &decoded {
        round_trips(msg);
    }
});
