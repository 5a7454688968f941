//! The runtime's side of the collectives contract: [`PointToPoint`] for a
//! [`Communicator`], on the communicator's collective context so collective traffic never
//! matches user messages.

use pirun_collectives::{PointToPoint, Tag};

use crate::comm::{Communicator, Source, TagFilter};
use crate::datatype::TypeInfo;
use crate::error::{Error, Result};

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

impl PointToPoint for Communicator {
    type Error = Error;

    fn rank(&self) -> usize {
        Communicator::rank(self)
    }

    fn size(&self) -> usize {
        Communicator::size(self)
    }

    fn send_bytes(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<()> {
        let d = self.world_rank(dest)?;
        self.engine()
            .send(d, self.coll_ctx(), tag, TypeInfo::BYTES, data)
    }

    fn recv_bytes_into(&self, src: usize, tag: Tag, buf: &mut [u8]) -> Result<()> {
        let want = buf.len();
        let st = self.recv_user_on(
            self.coll_ctx(),
            Source::Rank(src),
            TagFilter::Tag(tag),
            TypeInfo::BYTES,
            buf,
        )?;
        self.exact(src, tag, st.len_bytes(), want)
    }

    fn recv_bytes(&self, src: usize, tag: Tag) -> Result<Vec<u8>> {
        let s = self.world_rank(src)?;
        let id = self.engine().post_recv(
            self.coll_ctx(),
            Some(s),
            Some(tag),
            TypeInfo::BYTES,
            crate::matching::SinkSpec::Owned { align: 1 },
            false,
        )?;
        let out = self.engine().wait(id);
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
        let want = buf.len();
        let st = self.sendrecv_on(
            self.coll_ctx(),
            dest,
            send_tag,
            TypeInfo::BYTES,
            data,
            Source::Rank(src),
            TagFilter::Tag(recv_tag),
            TypeInfo::BYTES,
            buf,
        )?;
        self.exact(src, recv_tag, st.len_bytes(), want)
    }
}
