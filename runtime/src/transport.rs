//! The runtime's side of the collectives contract: [`PointToPoint`] for a
//! [`Communicator`], on the communicator's collective context so collective traffic never
//! matches user messages. The `*_parts` methods hand the collective's header and payload
//! to the engine as separate slices: one `writev` on the way out, filled in place on the
//! way in, never copied together.

use pirun_collectives::{scatter_parts, PointToPoint, Tag};

use crate::buf::RawParts;
use crate::comm::{lend, Communicator, Source, TagFilter};
use crate::datatype::TypeInfo;
use crate::error::{Error, Result};
use crate::matching::SinkSpec;

impl Communicator {
    /// Checks that a collective message filled its buffer exactly.
    fn exact(&self, src: usize, tag: Tag, got: usize, want: usize) -> Result<()> {
        if got != want {
            return Err(Error::LengthMismatch {
                source_rank: src,
                tag,
                len: got,
                expected: want,
            });
        }
        Ok(())
    }
}

/// Total length of parts.
fn total(parts: &[&mut [u8]]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

impl PointToPoint for Communicator {
    type Error = Error;

    fn rank(&self) -> usize {
        Communicator::rank(self)
    }

    fn size(&self) -> usize {
        Communicator::size(self)
    }

    /// From the hosts the launch contract names for every rank (`PIRUN_HOST` of each,
    /// exchanged at the fence).
    /// Worked out once when the communicator is made.
    fn spans_hosts(&self) -> bool {
        Communicator::spans_hosts(self)
    }

    /// From `PIRUN_LOCAL_SIZE` and `PIRUN_HOST_CORES` of the launch contract, as the
    /// engine's spin policy read them at start-up.
    fn oversubscribed(&self) -> bool {
        self.engine().spin.oversubscribed()
    }

    fn send_bytes(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<()> {
        self.send_parts(dest, tag, &[data])
    }

    fn recv_bytes_into(&self, src: usize, tag: Tag, buf: &mut [u8]) -> Result<()> {
        self.recv_parts_into(src, tag, &mut [buf])
    }

    fn recv_bytes(&self, src: usize, tag: Tag) -> Result<Vec<u8>> {
        let s = self.world_rank(src)?;
        let id = self.engine().post_recv(
            self.coll_ctx(),
            Some(s),
            Some(tag),
            TypeInfo::BYTES,
            SinkSpec::Owned { align: 1 },
            false,
        )?;
        let out = self.engine().wait_in(id, self.group_for(self.coll_ctx()));
        if out.is_err() {
            self.engine().cancel(id);
        }
        let (buf, _) = self.received(out)?;
        Ok(buf.into_vec().expect("byte buffers convert to Vec<u8>"))
    }

    fn sendrecv_bytes_into(
        &self,
        dest: usize,
        send_tag: Tag,
        data: &[u8],
        src: usize,
        recv_tag: Tag,
        buf: &mut [u8],
    ) -> Result<()> {
        self.sendrecv_parts_into(dest, send_tag, &[data], src, recv_tag, &mut [buf])
    }

    fn send_parts(&self, dest: usize, tag: Tag, parts: &[&[u8]]) -> Result<()> {
        let d = self.world_rank(dest)?;
        if parts.len() > RawParts::MAX {
            return self.send_parts(dest, tag, &[&parts.concat()]);
        }
        self.engine().send_parts(
            d,
            self.coll_ctx(),
            tag,
            TypeInfo::BYTES,
            lend(parts),
            self.group_for(self.coll_ctx()),
        )
    }

    fn recv_parts_into(&self, src: usize, tag: Tag, parts: &mut [&mut [u8]]) -> Result<()> {
        let want = total(parts);
        if parts.len() > RawParts::MAX {
            let mut buf = vec![0u8; want];
            self.recv_parts_into(src, tag, &mut [&mut buf])?;
            scatter_parts(&buf, parts);
            return Ok(());
        }
        let st = self.recv_user_on(
            self.coll_ctx(),
            Source::Rank(src),
            TagFilter::Tag(tag),
            TypeInfo::BYTES,
            parts,
        )?;
        self.exact(src, tag, st.len_bytes(), want)
    }

    fn exchange(
        &self,
        sends: &[(usize, Tag, &[&[u8]])],
        recvs: &mut [(usize, Tag, &mut [&mut [u8]])],
    ) -> Result<()> {
        if sends.iter().any(|s| s.2.len() > RawParts::MAX)
            || recvs.iter().any(|r| r.2.len() > RawParts::MAX)
        {
            // More parts than the engine takes: every message through one contiguous copy.
            let joined: Vec<Vec<u8>> = sends.iter().map(|s| s.2.concat()).collect();
            let whole: Vec<[&[u8]; 1]> = joined.iter().map(|j| [j.as_slice()]).collect();
            let sends: Vec<(usize, Tag, &[&[u8]])> = (sends.iter().zip(&whole))
                .map(|(s, w)| (s.0, s.1, &w[..]))
                .collect();
            let mut bufs: Vec<Vec<u8>> = recvs.iter().map(|r| vec![0u8; total(r.2)]).collect();
            let mut slots: Vec<[&mut [u8]; 1]> =
                bufs.iter_mut().map(|b| [b.as_mut_slice()]).collect();
            let mut into: Vec<(usize, Tag, &mut [&mut [u8]])> = (recvs.iter().zip(&mut slots))
                .map(|(r, s)| (r.0, r.1, &mut s[..]))
                .collect();
            self.exchange(&sends, &mut into)?;
            drop(into);
            for (r, b) in recvs.iter_mut().zip(&bufs) {
                scatter_parts(b, r.2);
            }
            return Ok(());
        }
        let statuses = self.exchange_on(self.coll_ctx(), TypeInfo::BYTES, sends, recvs)?;
        for (r, st) in recvs.iter().zip(&statuses) {
            self.exact(r.0, r.1, st.len_bytes(), total(r.2))?;
        }
        Ok(())
    }

    fn sendrecv_parts_into(
        &self,
        dest: usize,
        send_tag: Tag,
        send: &[&[u8]],
        src: usize,
        recv_tag: Tag,
        recv: &mut [&mut [u8]],
    ) -> Result<()> {
        if send.len() > RawParts::MAX {
            return self.sendrecv_parts_into(
                dest,
                send_tag,
                &[&send.concat()],
                src,
                recv_tag,
                recv,
            );
        }
        let want = total(recv);
        if recv.len() > RawParts::MAX {
            let mut buf = vec![0u8; want];
            self.sendrecv_parts_into(dest, send_tag, send, src, recv_tag, &mut [&mut buf])?;
            scatter_parts(&buf, recv);
            return Ok(());
        }
        let st = self.sendrecv_on(
            self.coll_ctx(),
            dest,
            send_tag,
            TypeInfo::BYTES,
            send,
            Source::Rank(src),
            TagFilter::Tag(recv_tag),
            TypeInfo::BYTES,
            recv,
        )?;
        self.exact(src, recv_tag, st.len_bytes(), want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::wait::tests::{bounded, world};

    /// World communicators of `n` ranks in this process.
    fn comms(n: usize) -> Vec<Communicator> {
        world(n, Duration::from_micros(50))
            .into_iter()
            .map(Communicator::world)
            .collect()
    }

    /// The root of a linear scatter and gather at once: rank 0 sends every other rank a
    /// rendezvous-sized message and receives one from each in one `exchange`, rank 2's
    /// pair in more parts than the engine takes (the copying path); ranks 1 and 2 answer
    /// with one `sendrecv` each. Every byte must land where the parts say.
    #[test]
    fn exchange_moves_every_message_into_its_parts() {
        bounded(60, || {
            let comms = comms(3);
            let big = |r: usize| -> Vec<u8> { (0..300_000).map(|i| (i * 7 + r) as u8).collect() };
            std::thread::scope(|s| {
                let (root, others) = comms.split_first().expect("three ranks");
                let peers: Vec<_> = others
                    .iter()
                    .map(|c| {
                        s.spawn(move || {
                            let r = c.rank();
                            let mut got = vec![0u8; 300_000];
                            c.sendrecv_parts_into(0, 5, &[&big(r)], 0, 6, &mut [&mut got])
                                .expect("peer's sendrecv");
                            got
                        })
                    })
                    .collect();
                let (to1, to2) = (big(11), big(12));
                let two: Vec<&[u8]> = to2.chunks(60_000).collect(); // five parts
                let mut from1 = vec![0u8; 300_000];
                let mut from2 = vec![0u8; 300_000];
                let (a, rest) = from2.split_at_mut(1000);
                let (b, rest) = rest.split_at_mut(1000);
                let (c, rest) = rest.split_at_mut(1000);
                let (d, e) = rest.split_at_mut(1000);
                let mut into2: [&mut [u8]; 5] = [a, b, c, d, e];
                root.exchange(
                    &[(1, 6, &[&to1[..]]), (2, 6, &two)],
                    &mut [(1, 5, &mut [&mut from1[..]]), (2, 5, &mut into2)],
                )
                .expect("root's exchange");
                assert!(from1 == big(1), "rank 1's message in place");
                assert!(from2 == big(2), "rank 2's message across its five parts");
                let got: Vec<Vec<u8>> =
                    peers.into_iter().map(|h| h.join().expect("peer")).collect();
                assert!(
                    got[0] == to1 && got[1] == to2,
                    "each peer got its own message"
                );
            });
        });
    }

    /// A message of the wrong length in an `exchange` is an error naming its source.
    #[test]
    fn exchange_reports_a_short_message() {
        bounded(60, || {
            let comms = comms(2);
            std::thread::scope(|s| {
                let peer = &comms[1];
                s.spawn(move || peer.send_parts(0, 5, &[&[1u8; 10]]).expect("send"));
                let mut buf = [0u8; 16];
                let err = comms[0]
                    .exchange(&[], &mut [(1, 5, &mut [&mut buf[..]])])
                    .expect_err("10 bytes into 16");
                assert!(
                    matches!(
                        err,
                        Error::LengthMismatch {
                            source_rank: 1,
                            len: 10,
                            ..
                        }
                    ),
                    "{err}"
                );
            });
        });
    }
}
