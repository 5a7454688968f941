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
