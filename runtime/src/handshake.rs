//! The mutual challenge–response that opens every rank-to-rank connection.
//!
//! Three fixed-size messages, HMAC-SHA256 over the job secret:
//!
//! ```text
//! connector → acceptor  Hello    magic, connector rank, nonce_c, architecture
//! acceptor → connector  Reply    greeting = magic, acceptor rank, nonce_s, architecture;
//!                                HMAC(secret, "pirun-s" | Hello | greeting)
//! connector → acceptor  Proof    HMAC(secret, "pirun-c" | Hello | greeting)
//! ```
//!
//! Each side proves it knows the secret by answering the other's fresh nonce; the labels
//! differ so a reply cannot be reflected back. Nothing else is read from a connection until
//! the proof checks out. The messages also carry each side's architecture (pointer width,
//! byte order, CPU name) so that raw `Pod` payloads whose layout differs between two ends
//! can be refused with a clear error instead of being misread.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::contract::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Magic and protocol version. Version 2: eager frames may carry the short header
/// (`frame::SHORT_EAGER`), which a version-1 rank would misread.
const MAGIC: &[u8; 8] = b"PIRUNv2\0";
/// The part of the magic every protocol version shares.
const MAGIC_STEM: &[u8; 6] = b"PIRUNv";
const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 32;
const ARCH_LEN: usize = 16;

/// Length of the connector's first message (and of the acceptor's greeting).
pub const HELLO_LEN: usize = 8 + 4 + NONCE_LEN + 2 + ARCH_LEN;
/// Length of the acceptor's reply.
pub const REPLY_LEN: usize = HELLO_LEN + MAC_LEN;
/// Length of the connector's proof.
pub const PROOF_LEN: usize = MAC_LEN;

/// A peer's architecture as announced in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arch {
    /// `usize` width in bytes.
    pub pointer_width: u8,
    /// Whether the peer is little-endian.
    pub little_endian: bool,
    /// CPU architecture name (`x86_64`, `aarch64`, `arm`, ...).
    pub name: String,
}

impl Arch {
    /// The architecture of this process.
    pub fn local() -> Arch {
        Arch {
            pointer_width: std::mem::size_of::<usize>() as u8,
            little_endian: cfg!(target_endian = "little"),
            name: std::env::consts::ARCH.to_string(),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}-bit, {}-endian)",
            self.name,
            self.pointer_width as u32 * 8,
            if self.little_endian { "little" } else { "big" }
        )
    }
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The peer did not open with the pirun magic: a stranger or garbage.
    BadMagic,
    /// The peer is a pirun rank of another protocol version (the byte after `PIRUNv`).
    Version(u8),
    /// The peer claims a rank outside the job, or our own.
    BadRank(u32),
    /// The peer does not know the job secret.
    BadMac,
    /// The peer's byte order differs: raw payloads cannot be exchanged.
    ByteOrder(String),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::BadMagic => write!(f, "not a pirun peer (bad handshake magic)"),
            HandshakeError::Version(v) => write!(
                f,
                "peer speaks pirun protocol version {}, this rank version {}: build every \
                 rank of the job with the same pirun",
                char::from(*v),
                char::from(MAGIC[6])
            ),
            HandshakeError::BadRank(r) => write!(f, "peer claims an invalid rank {r}"),
            HandshakeError::BadMac => write!(f, "peer failed authentication (wrong job secret)"),
            HandshakeError::ByteOrder(a) => write!(
                f,
                "peer is {a}, whose byte order differs from this host's; pirun does not convert"
            ),
        }
    }
}

/// The fields common to `Hello` and `Reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Sender's rank.
    pub rank: u32,
    /// Sender's fresh nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Sender's architecture.
    pub arch: Arch,
}

impl Greeting {
    /// A greeting from `rank` with a fresh random nonce.
    pub fn new(rank: u32) -> std::io::Result<Greeting> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(std::io::Error::from)?;
        Ok(Greeting {
            rank,
            nonce,
            arch: Arch::local(),
        })
    }

    fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&self.rank.to_le_bytes());
        b[12..44].copy_from_slice(&self.nonce);
        b[44] = self.arch.pointer_width;
        b[45] = self.arch.little_endian as u8;
        let name = self.arch.name.as_bytes();
        let n = name.len().min(ARCH_LEN);
        b[46..46 + n].copy_from_slice(&name[..n]);
        b
    }

    /// Parses a greeting; `size` bounds the rank and `me` must differ from it.
    fn decode(b: &[u8], size: u32, me: u32) -> Result<Greeting, HandshakeError> {
        if &b[..8] != MAGIC {
            return Err(if b[..6] == MAGIC_STEM[..] && b[6].is_ascii_digit() {
                HandshakeError::Version(b[6])
            } else {
                HandshakeError::BadMagic
            });
        }
        let rank = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        if rank >= size || rank == me {
            return Err(HandshakeError::BadRank(rank));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[12..44]);
        let name_bytes = &b[46..46 + ARCH_LEN];
        let end = name_bytes.iter().position(|&c| c == 0).unwrap_or(ARCH_LEN);
        let arch = Arch {
            pointer_width: b[44],
            little_endian: b[45] != 0,
            name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
        };
        if arch.little_endian != cfg!(target_endian = "little") {
            return Err(HandshakeError::ByteOrder(arch.to_string()));
        }
        Ok(Greeting { rank, nonce, arch })
    }
}

/// HMAC over a label and both greetings exactly as they travelled (ranks, nonces and
/// architectures included, so none of them can be altered in flight).
fn mac(secret: &Secret, label: &[u8], hello: &[u8], reply_greeting: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    m.update(label);
    m.update(hello);
    m.update(reply_greeting);
    m
}

const SERVER: &[u8] = b"pirun-s";
const CLIENT: &[u8] = b"pirun-c";

/// The connecting side's state between its `Hello` and the acceptor's `Reply`.
pub struct Connector {
    secret: Secret,
    me: u32,
    hello: [u8; HELLO_LEN],
    size: u32,
}

impl Connector {
    /// Starts a handshake from rank `me` of `size`; returns the state and the `Hello` bytes.
    pub fn start(
        secret: Secret,
        me: u32,
        size: u32,
    ) -> std::io::Result<(Connector, [u8; HELLO_LEN])> {
        let hello = Greeting::new(me)?.encode();
        Ok((
            Connector {
                secret,
                me,
                hello,
                size,
            },
            hello,
        ))
    }

    /// Checks the acceptor's `Reply`, expecting it to come from `expect_rank`; returns its
    /// greeting and the `Proof` to send.
    pub fn finish(
        &self,
        reply: &[u8; REPLY_LEN],
        expect_rank: u32,
    ) -> Result<(Greeting, [u8; PROOF_LEN]), HandshakeError> {
        let (greeting, tag) = reply.split_at(HELLO_LEN);
        let theirs = Greeting::decode(greeting, self.size, self.me)?;
        if theirs.rank != expect_rank {
            return Err(HandshakeError::BadRank(theirs.rank));
        }
        mac(&self.secret, SERVER, &self.hello, greeting)
            .verify_slice(tag)
            .map_err(|_| HandshakeError::BadMac)?;
        let proof = mac(&self.secret, CLIENT, &self.hello, greeting)
            .finalize()
            .into_bytes();
        Ok((theirs, proof.into()))
    }
}

/// The accepting side's state between its `Reply` and the connector's `Proof`.
pub struct Acceptor {
    secret: Secret,
    theirs: Greeting,
    hello: [u8; HELLO_LEN],
    mine: [u8; HELLO_LEN],
}

impl Acceptor {
    /// Answers a connector's `Hello` as rank `me` of `size`; returns the state and the
    /// `Reply` bytes.
    pub fn answer(
        secret: Secret,
        me: u32,
        size: u32,
        hello: &[u8; HELLO_LEN],
    ) -> Result<(Acceptor, [u8; REPLY_LEN]), HandshakeError> {
        let theirs = Greeting::decode(hello, size, me)?;
        let mine = Greeting::new(me)
            .map_err(|_| HandshakeError::BadMac)?
            .encode();
        let mut reply = [0u8; REPLY_LEN];
        reply[..HELLO_LEN].copy_from_slice(&mine);
        let tag = mac(&secret, SERVER, hello, &mine).finalize().into_bytes();
        reply[HELLO_LEN..].copy_from_slice(&tag);
        Ok((
            Acceptor {
                secret,
                theirs,
                hello: *hello,
                mine,
            },
            reply,
        ))
    }

    /// Checks the connector's `Proof`; on success the connection belongs to the returned
    /// greeting's rank.
    pub fn finish(self, proof: &[u8; PROOF_LEN]) -> Result<Greeting, HandshakeError> {
        mac(&self.secret, CLIENT, &self.hello, &self.mine)
            .verify_slice(proof)
            .map_err(|_| HandshakeError::BadMac)?;
        Ok(self.theirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_authenticate_with_the_same_secret() {
        let secret = [9u8; 32];
        let (conn, hello) = Connector::start(secret, 1, 4).unwrap();
        let (acc, reply) = Acceptor::answer(secret, 3, 4, &hello).unwrap();
        let (theirs, proof) = conn.finish(&reply, 3).unwrap();
        assert_eq!(theirs.rank, 3);
        assert_eq!(acc.finish(&proof).unwrap().rank, 1);
    }

    #[test]
    fn a_wrong_secret_fails_on_both_sides() {
        let (conn, hello) = Connector::start([1; 32], 1, 4).unwrap();
        let (_acc, reply) = Acceptor::answer([2; 32], 3, 4, &hello).unwrap();
        assert_eq!(conn.finish(&reply, 3).err(), Some(HandshakeError::BadMac));

        // A connector without the secret cannot produce a valid proof either.
        let (_conn, hello) = Connector::start([1; 32], 1, 4).unwrap();
        let (acc, _reply) = Acceptor::answer([2; 32], 3, 4, &hello).unwrap();
        assert_eq!(acc.finish(&[0u8; 32]).err(), Some(HandshakeError::BadMac));
    }

    #[test]
    fn a_rank_of_another_protocol_version_is_named_as_such() {
        let (_c, mut hello) = Connector::start([1; 32], 1, 4).unwrap();
        hello[6] = b'1';
        let e = Acceptor::answer([1; 32], 0, 4, &hello).err().unwrap();
        assert_eq!(e, HandshakeError::Version(b'1'));
        assert!(
            e.to_string().contains("version 1, this rank version 2"),
            "{e}"
        );
    }

    #[test]
    fn garbage_and_bad_ranks_are_refused() {
        let garbage = [0x41u8; HELLO_LEN];
        assert_eq!(
            Acceptor::answer([1; 32], 0, 2, &garbage).err().unwrap(),
            HandshakeError::BadMagic
        );
        let (_c, hello) = Connector::start([1; 32], 7, 8).unwrap();
        assert_eq!(
            Acceptor::answer([1; 32], 0, 4, &hello).err().unwrap(),
            HandshakeError::BadRank(7)
        );
        let (_c, hello) = Connector::start([1; 32], 2, 4).unwrap();
        assert_eq!(
            Acceptor::answer([1; 32], 2, 4, &hello).err().unwrap(),
            HandshakeError::BadRank(2)
        );
    }

    #[test]
    fn tampering_with_the_announced_architecture_breaks_the_handshake() {
        let secret = [3u8; 32];
        let (conn, mut hello) = Connector::start(secret, 1, 4).unwrap();
        hello[44] ^= 0x0C; // pointer width, as an attacker in the middle would rewrite it
        let (_acc, reply) = Acceptor::answer(secret, 3, 4, &hello).unwrap();
        assert_eq!(conn.finish(&reply, 3).err(), Some(HandshakeError::BadMac));

        let (conn, hello) = Connector::start(secret, 1, 4).unwrap();
        let (_acc, mut reply) = Acceptor::answer(secret, 3, 4, &hello).unwrap();
        reply[46] ^= 1; // CPU name
        assert_eq!(conn.finish(&reply, 3).err(), Some(HandshakeError::BadMac));
    }

    #[test]
    fn a_reply_cannot_be_reflected_as_a_proof() {
        let secret = [5u8; 32];
        let (_conn, hello) = Connector::start(secret, 1, 4).unwrap();
        let (acc, reply) = Acceptor::answer(secret, 3, 4, &hello).unwrap();
        let mut reflected = [0u8; PROOF_LEN];
        reflected.copy_from_slice(&reply[HELLO_LEN..]);
        assert_eq!(acc.finish(&reflected).err(), Some(HandshakeError::BadMac));
    }
}
