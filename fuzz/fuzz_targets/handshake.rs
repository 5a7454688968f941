//! The HMAC challenge–response fed arbitrary messages.
//!
//! Input layout (zero-padded if short):
//!
//! ```text
//!   0..32   job secret              32..36  rank `me` (u32 le)   36..40  `size` (u32 le)
//!  40..44   expected rank (u32 le)  44..46  tamper position (u16 le)  46  tamper xor byte
//!  47..     Hello (HELLO_LEN) | Reply (REPLY_LEN) | Proof (PROOF_LEN)
//! ```
//!
//! Checks (none may panic):
//! - the arbitrary Hello given to `Acceptor::answer`: accepted only with a valid rank;
//!   the arbitrary Proof given to `Acceptor::finish` never verifies, nor does the
//!   acceptor's own reply MAC reflected back as a proof;
//! - the arbitrary Reply given to `Connector::finish` never verifies: it was made without
//!   the connector's fresh nonce, so accepting it would mean the MAC can be forged;
//! - an honest handshake between two ranks succeeds; with one byte of the Hello, Reply or
//!   Proof altered anywhere the MAC covers (magic, rank, nonce, MAC), it fails; and it
//!   fails when the two sides hold different secrets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirun::handshake::{Acceptor, Connector, HandshakeError, HELLO_LEN, PROOF_LEN, REPLY_LEN};
use pirun_fuzz::take;

const MAGIC: &[u8; 8] = b"PIRUNv2\0";
/// Bytes of a Hello/Reply greeting covered by the MAC or checked exactly: magic, rank, nonce.
const AUTHENTICATED_GREETING: usize = 8 + 4 + 32;

fuzz_target!(|data: &[u8]| {
    let secret: [u8; 32] = take(data, 0);
    let me = u32::from_le_bytes(take(data, 32));
    let size = u32::from_le_bytes(take(data, 36));
    let expect = u32::from_le_bytes(take(data, 40));
    let tamper_pos = u16::from_le_bytes(take(data, 44)) as usize;
    let tamper_xor = take::<1>(data, 46)[0];
    let hello: [u8; HELLO_LEN] = take(data, 47);
    let reply: [u8; REPLY_LEN] = take(data, 47 + HELLO_LEN);
    let proof: [u8; PROOF_LEN] = take(data, 47 + HELLO_LEN + REPLY_LEN);

    // Arbitrary Hello to the acceptor, then an arbitrary Proof.
    match Acceptor::answer(secret, me, size, &hello) {
        Ok((acc, my_reply)) => {
            let claimed = u32::from_le_bytes(take(&hello, 8));
            assert_eq!(&hello[..8], MAGIC);
            assert!(
                claimed < size && claimed != me,
                "accepted rank {claimed} of {size} as {me}"
            );
            assert_eq!(&my_reply[..8], MAGIC);
            assert_eq!(u32::from_le_bytes(take(&my_reply, 8)), me);
            assert_eq!(
                acc.finish(&proof).err(),
                Some(HandshakeError::BadMac),
                "an arbitrary proof verified"
            );
            // Its own reply MAC reflected as the proof must not verify either.
            let (acc, my_reply) = Acceptor::answer(secret, me, size, &hello).unwrap();
            let reflected: [u8; PROOF_LEN] = take(&my_reply, HELLO_LEN);
            assert_eq!(acc.finish(&reflected).err(), Some(HandshakeError::BadMac));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    // Arbitrary Reply to a connector.
    if let Ok((conn, _hello)) = Connector::start(secret, me, size) {
        match conn.finish(&reply, expect) {
            Ok((theirs, _)) => panic!("an arbitrary reply verified (from rank {})", theirs.rank),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    // An honest handshake, with at most one byte altered on the way.
    if size < 2 {
        return;
    }
    let a = me % size;
    let mut c = expect % size;
    if c == a {
        c = (a + 1) % size;
    }
    let total = HELLO_LEN + REPLY_LEN + PROOF_LEN;
    let pos = tamper_pos % total;
    let flip = |buf: &mut [u8], base: usize| {
        if (base..base + buf.len()).contains(&pos) {
            buf[pos - base] ^= tamper_xor;
        }
    };
    let authenticated = tamper_xor != 0
        && (pos < AUTHENTICATED_GREETING
            || (HELLO_LEN..HELLO_LEN + AUTHENTICATED_GREETING).contains(&pos)
            || pos >= 2 * HELLO_LEN);

    let (conn, mut h) = Connector::start(secret, c, size).unwrap();
    flip(&mut h, 0);
    let outcome = Acceptor::answer(secret, a, size, &h).and_then(|(acc, mut r)| {
        flip(&mut r, HELLO_LEN);
        let (theirs, mut p) = conn.finish(&r, a)?;
        flip(&mut p, HELLO_LEN + REPLY_LEN);
        let peer = acc.finish(&p)?;
        Ok((theirs, peer))
    });
    match outcome {
        Ok((theirs, peer)) => {
            assert!(
                !authenticated,
                "handshake succeeded although byte {pos} was altered by {tamper_xor:#04x}"
            );
            assert_eq!(theirs.rank, a);
            assert_eq!(peer.rank, c);
        }
        Err(e) => assert!(
            tamper_xor != 0,
            "an untampered handshake between ranks {c} and {a} of {size} failed: {e}"
        ),
    }

    // Two sides holding different secrets never agree.
    let mut other = secret;
    other[tamper_pos % 32] ^= tamper_xor | 1;
    let (conn, h) = Connector::start(secret, c, size).unwrap();
    if let Ok((_acc, r)) = Acceptor::answer(other, a, size, &h) {
        assert_eq!(conn.finish(&r, a).err(), Some(HandshakeError::BadMac));
    }
});
