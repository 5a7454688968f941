//! The message layer under every algorithm: the one tag collectives use, the small header
//! that each collective message starts with, and [`Ctx`], which sends and receives
//! header + payload and checks that incoming messages belong to the same call.
//!
//! All collective traffic uses a single tag, so a rank that calls a different collective
//! than its peers receives their messages and detects the mismatch from the header instead
//! of waiting forever for a tag that never comes.

use crate::{select, CollectiveError, PointToPoint, Tag};

/// The tag of every collective message (collectives run on their own context).
pub(crate) const TAG: Tag = 0x0C01;

/// Length of the encoded [`Header`], in bytes.
pub(crate) const HEADER_LEN: usize = 20;

/// Bodies up to this many bytes are received whole and copied, see [`Ctx::recv_into`].
const SMALL: usize = 8192;

/// Bodies from this many bytes on travel with a go-ahead from the receiver, see
/// [`Ctx::put`]. Messages above the transport's eager limit (128 KiB by default) need it to
/// fail rather than hang when calls do not match, but below 512 KiB its extra message
/// cost 10–40 % (64 KiB gather, bcast, reduce and scatter on 2 to 8 ranks, loopback,
/// measured when 64 KiB went by rendezvous), against 0–4 % at 1 MiB; so mismatched rooted
/// calls of 128 to 512 KiB may wait forever, as they do under MPI.
const GUARDED: usize = 512 * 1024;

/// Root field value of calls that have no root.
const NO_ROOT: u32 = u32::MAX;

macro_rules! op_codes {
    ($($variant:ident = $code:literal => $name:literal),* $(,)?) => {
        /// Which collective (or which phase of one) a message belongs to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum OpCode { $($variant = $code),* }

        impl OpCode {
            fn from_u8(v: u8) -> Option<OpCode> {
                match v { $($code => Some(OpCode::$variant),)* _ => None }
            }
            /// The user-facing name of the call.
            pub(crate) fn name(self) -> &'static str {
                match self { $(OpCode::$variant => $name),* }
            }
        }
    };
}

op_codes! {
    Barrier = 1 => "barrier",
    Bcast = 2 => "bcast",
    BcastValue = 3 => "bcast_value",
    Reduce = 4 => "reduce",
    Allreduce = 5 => "allreduce",
    Gather = 6 => "gather",
    Gatherv = 7 => "gatherv",
    GatherValue = 8 => "gather_value",
    Scatter = 9 => "scatter",
    Scatterv = 10 => "scatterv",
    Allgather = 11 => "allgather",
    AllgathervCounts = 12 => "allgatherv (exchange of counts)",
    Allgatherv = 13 => "allgatherv",
    AllgatherValue = 14 => "allgather_value",
    Alltoall = 15 => "alltoall",
    AlltoallvCounts = 16 => "alltoallv (exchange of counts)",
    Alltoallv = 17 => "alltoallv",
    Scan = 18 => "scan",
    Exscan = 19 => "exscan",
    ReduceScatterBlock = 20 => "reduce_scatter_block",
}

/// Identifies the call a message belongs to. Every field must agree between sender and
/// receiver; `n` is a count the call defines (0 where counts legitimately differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub op: OpCode,
    pub algo: u8,
    pub elem: u32,
    pub root: u32,
    pub n: u64,
}

impl Header {
    /// A header for `op` with algorithm code `algo`, element size `elem` bytes, an optional
    /// root and the call's agreed count `n`.
    pub(crate) fn new(op: OpCode, algo: u8, elem: usize, root: Option<usize>, n: usize) -> Self {
        Header {
            op,
            algo,
            elem: elem as u32,
            root: root.map_or(NO_ROOT, |r| r as u32),
            n: n as u64,
        }
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.op as u8;
        b[1] = self.algo;
        b[4..8].copy_from_slice(&self.elem.to_le_bytes());
        b[8..12].copy_from_slice(&self.root.to_le_bytes());
        b[12..20].copy_from_slice(&self.n.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER_LEN {
            return Err(format!("{} bytes is shorter than a header", b.len()));
        }
        let op = OpCode::from_u8(b[0]).ok_or_else(|| format!("unknown operation code {}", b[0]))?;
        let word = |r: std::ops::Range<usize>| u32::from_le_bytes(b[r].try_into().unwrap());
        Ok(Header {
            op,
            algo: b[1],
            elem: word(4..8),
            root: word(8..12),
            n: u64::from_le_bytes(b[12..20].try_into().unwrap()),
        })
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{} (algorithm {}, {}-byte elements",
            self.op.name(),
            select::algorithm_name(self.op, self.algo),
            self.elem
        );
        if self.root != NO_ROOT {
            s += &format!(", root {}", self.root);
        }
        s + ")"
    }
}

/// One rank's view of one collective call: the communicator and the header its messages
/// carry. Every send prepends the header; every receive checks it.
pub(crate) struct Ctx<'a, C: PointToPoint + ?Sized> {
    comm: &'a C,
    hdr: Header,
    head: [u8; HEADER_LEN],
    pub rank: usize,
    pub size: usize,
}

impl<'a, C: PointToPoint + ?Sized> Ctx<'a, C> {
    pub(crate) fn new(comm: &'a C, hdr: Header) -> Self {
        Ctx {
            comm,
            hdr,
            head: hdr.encode(),
            rank: comm.rank(),
            size: comm.size(),
        }
    }

    /// The communicator.
    pub(crate) fn comm(&self) -> &'a C {
        self.comm
    }

    /// The name of the call, for error messages.
    pub(crate) fn call(&self) -> &'static str {
        self.hdr.op.name()
    }

    /// An [`CollectiveError::InvalidArgument`] for this call.
    pub(crate) fn arg_error(&self, detail: impl Into<String>) -> C::Error {
        CollectiveError::arg(self.call(), self.rank, detail).into()
    }

    fn check(&self, peer: usize, head: &[u8]) -> Result<(), CollectiveError> {
        let got = Header::decode(head).map_err(|detail| CollectiveError::Malformed {
            rank: self.rank,
            peer,
            detail,
        })?;
        let exp = &self.hdr;
        if (got.op, got.algo, got.elem, got.root) != (exp.op, exp.algo, exp.elem, exp.root) {
            return Err(CollectiveError::Mismatch {
                rank: self.rank,
                peer,
                expected: exp.describe(),
                found: got.describe(),
            });
        }
        if got.n != exp.n {
            return Err(CollectiveError::CountMismatch {
                call: exp.op.name().to_string(),
                rank: self.rank,
                peer,
                expected: exp.n,
                found: got.n,
            });
        }
        Ok(())
    }

    /// Sends header + the concatenation of `parts` to `dest`.
    pub(crate) fn send(&self, dest: usize, parts: &[&[u8]]) -> Result<(), C::Error> {
        match parts {
            [] => self.comm.send_parts(dest, TAG, &[&self.head]),
            [a] => self.comm.send_parts(dest, TAG, &[&self.head, a]),
            _ => {
                let mut all: Vec<&[u8]> = vec![&self.head];
                all.extend_from_slice(parts);
                self.comm.send_parts(dest, TAG, &all)
            }
        }
    }

    /// Receives a message of exactly `HEADER_LEN + body.len()` bytes from `src` into `body`.
    pub(crate) fn recv_into(&self, src: usize, body: &mut [u8]) -> Result<(), C::Error> {
        self.recv_parts_into(src, &mut [body])
    }

    /// Receives a message from `src` whose body is exactly as long as `parts` together and
    /// splits the body across them in order.
    ///
    /// A small message is received whole and its header checked before its length, so that
    /// a mismatched call is reported as such even when the lengths differ too; a large one
    /// goes straight into the parts (a length mismatch is then the transport's error).
    pub(crate) fn recv_parts_into(
        &self,
        src: usize,
        parts: &mut [&mut [u8]],
    ) -> Result<(), C::Error> {
        let want: usize = parts.iter().map(|p| p.len()).sum();
        if want <= SMALL {
            let msg = self.recv_vec(src)?;
            if msg.len() != want {
                return Err(CollectiveError::LengthMismatch {
                    rank: self.rank,
                    peer: src,
                    expected: want + HEADER_LEN,
                    found: msg.len() + HEADER_LEN,
                }
                .into());
            }
            crate::p2p::scatter_into(&msg, parts);
            return Ok(());
        }
        let mut head = [0u8; HEADER_LEN];
        match parts {
            [a] => self.comm.recv_parts_into(src, TAG, &mut [&mut head, a])?,
            [a, b] => self
                .comm
                .recv_parts_into(src, TAG, &mut [&mut head, a, b])?,
            _ => {
                let mut all: Vec<&mut [u8]> = vec![&mut head];
                all.extend(parts.iter_mut().map(|p| &mut **p));
                self.comm.recv_parts_into(src, TAG, &mut all)?
            }
        }
        Ok(self.check(src, &head)?)
    }

    /// Sends header + the concatenation of `parts` to `dest`, which receives it with
    /// [`Ctx::take`] (a message of a length both know).
    ///
    /// A body of [`GUARDED`] bytes or more (one a transport sends by rendezvous) goes out
    /// while the receiver's go-ahead (a bare header) comes in, as one
    /// [`PointToPoint::sendrecv_parts_into`]. So a rank sending a large message always has
    /// a receive posted for its destination: when two ranks' calls do not match and both
    /// send to each other (a bcast's root against a reduce's leaf), each receives the
    /// other's message and fails instead of both waiting forever for the other to
    /// receive. Costs one header-sized message per large transfer, sent while the
    /// transfer's own handshake is in flight.
    pub(crate) fn put(&self, dest: usize, parts: &[&[u8]]) -> Result<(), C::Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len < GUARDED {
            return self.send(dest, parts);
        }
        let mut all: Vec<&[u8]> = vec![&self.head];
        all.extend_from_slice(parts);
        let mut head = [0u8; HEADER_LEN];
        self.comm
            .sendrecv_parts_into(dest, TAG, &all, dest, TAG, &mut [&mut head])?;
        Ok(self.check(dest, &head)?)
    }

    /// Receives what `src` sends with [`Ctx::put`] into `parts` (as
    /// [`Ctx::recv_parts_into`]), sending the go-ahead a large message waits for.
    pub(crate) fn take(&self, src: usize, parts: &mut [&mut [u8]]) -> Result<(), C::Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len < GUARDED {
            return self.recv_parts_into(src, parts);
        }
        let mut head = [0u8; HEADER_LEN];
        let mut all: Vec<&mut [u8]> = vec![&mut head];
        all.extend(parts.iter_mut().map(|p| &mut **p));
        self.comm
            .sendrecv_parts_into(src, TAG, &[&self.head], src, TAG, &mut all)?;
        Ok(self.check(src, &head)?)
    }

    /// [`Ctx::put`] of `block(a)` to every rank `a` of `dests` (the root of a linear
    /// scatter). Large blocks are all on their way before any is waited for, each with its
    /// go-ahead coming back; small ones go eagerly anyway, and simply one after the other
    /// (which allocates nothing).
    pub(crate) fn put_each<'b>(
        &self,
        dests: impl Iterator<Item = usize> + Clone,
        block: impl Fn(usize) -> &'b [u8],
    ) -> Result<(), C::Error> {
        if dests.clone().all(|a| block(a).len() <= SMALL) {
            for a in dests {
                self.put(a, &[block(a)])?;
            }
            return Ok(());
        }
        let msgs: Vec<(usize, [&[u8]; 2])> =
            dests.map(|a| (a, [&self.head[..], block(a)])).collect();
        let sends: Vec<(usize, Tag, &[&[u8]])> =
            msgs.iter().map(|(a, m)| (*a, TAG, &m[..])).collect();
        // The go-aheads of the large blocks: a bare header each.
        let go_aheads: Vec<(usize, &mut [u8])> = msgs
            .iter()
            .filter(|(_, m)| m[1].len() >= GUARDED)
            .map(|&(a, _)| (a, &mut [][..]))
            .collect();
        self.exchange_headed(&sends, go_aheads)
    }

    /// [`Ctx::take`] of one message from each of several ranks: `blocks` are (source,
    /// buffer for the body), and every receive is posted (and every large one's go-ahead
    /// sent) before any is waited for (the root of a linear gather).
    pub(crate) fn take_all(&self, blocks: &mut [(usize, &mut [u8])]) -> Result<(), C::Error> {
        if blocks.iter().all(|(_, b)| b.len() <= SMALL) {
            // Small messages come eagerly, and receiving them whole one after the other
            // checks each header before its length (see `recv_parts_into`).
            for (src, body) in blocks.iter_mut() {
                self.take_into(*src, body)?;
            }
            return Ok(());
        }
        let go_ahead = [&self.head[..]];
        let sends: Vec<(usize, Tag, &[&[u8]])> = blocks
            .iter()
            .filter(|(_, b)| b.len() >= GUARDED)
            .map(|&(src, _)| (src, TAG, &go_ahead[..]))
            .collect();
        let froms = blocks.iter_mut().map(|(src, b)| (*src, &mut **b)).collect();
        self.exchange_headed(&sends, froms)
    }

    /// Runs `sends` and one receive from each rank of `froms` — a header, then the body
    /// into the given buffer (possibly empty) — all in flight at once, then checks each
    /// header as [`Ctx::take`] does for one.
    fn exchange_headed(
        &self,
        sends: &[(usize, Tag, &[&[u8]])],
        froms: Vec<(usize, &mut [u8])>,
    ) -> Result<(), C::Error> {
        let srcs: Vec<usize> = froms.iter().map(|&(src, _)| src).collect();
        let mut heads = vec![[0u8; HEADER_LEN]; froms.len()];
        let mut parts: Vec<[&mut [u8]; 2]> = (heads.iter_mut().zip(froms))
            .map(|(h, (_, body))| [&mut h[..], body])
            .collect();
        let mut recvs: Vec<(usize, Tag, &mut [&mut [u8]])> = (srcs.iter().zip(&mut parts))
            .map(|(&src, p)| (src, TAG, &mut p[..]))
            .collect();
        self.comm.exchange(sends, &mut recvs)?;
        drop(recvs);
        drop(parts);
        for (&src, head) in srcs.iter().zip(&heads) {
            self.check(src, head)?;
        }
        Ok(())
    }

    /// [`Ctx::take`] into one buffer.
    pub(crate) fn take_into(&self, src: usize, body: &mut [u8]) -> Result<(), C::Error> {
        self.take(src, &mut [body])
    }

    /// Receives a message of any length from `src`; returns its body.
    pub(crate) fn recv_vec(&self, src: usize) -> Result<Body, C::Error> {
        let msg = self.comm.recv_bytes(src, TAG)?;
        self.check(src, &msg)?;
        Ok(Body(msg))
    }

    /// Sends `body` to `dest` while receiving exactly `rbody.len()` bytes from `src`.
    pub(crate) fn sendrecv(
        &self,
        dest: usize,
        body: &[u8],
        src: usize,
        rbody: &mut [u8],
    ) -> Result<(), C::Error> {
        let mut head = [0u8; HEADER_LEN];
        self.comm.sendrecv_parts_into(
            dest,
            TAG,
            &[&self.head, body],
            src,
            TAG,
            &mut [&mut head, rbody],
        )?;
        Ok(self.check(src, &head)?)
    }

    /// A malformed-message error naming `peer`.
    pub(crate) fn malformed(&self, peer: usize, detail: impl Into<String>) -> C::Error {
        CollectiveError::Malformed {
            rank: self.rank,
            peer,
            detail: detail.into(),
        }
        .into()
    }
}

/// Encodes counts as little-endian `u64`s (metadata is fixed-width, never `usize`).
pub(crate) fn encode_counts(counts: &[usize]) -> Vec<u8> {
    counts
        .iter()
        .flat_map(|&c| (c as u64).to_le_bytes())
        .collect()
}

/// Decodes `k` little-endian `u64` counts from the front of `b`; returns them and the rest.
pub(crate) fn decode_counts(b: &[u8], k: usize) -> Option<(Vec<usize>, &[u8])> {
    let len = k.checked_mul(8)?;
    if b.len() < len {
        return None;
    }
    let (head, rest) = b.split_at(len);
    let counts = head
        .chunks_exact(8)
        .map(|c| usize::try_from(u64::from_le_bytes(c.try_into().unwrap())).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((counts, rest))
}

/// A received collective message seen as its body (the bytes after the header), without
/// moving the body to the front: a megabyte memmove per message showed in the profile
/// of a 1 MiB gather.
pub(crate) struct Body(Vec<u8>);

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0[HEADER_LEN..]
    }
}

impl Body {
    /// The body as an owned vector (this one moves it).
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.0.drain(..HEADER_LEN);
        self.0
    }
}
