//! Message matching: the posted-receive queue and the unexpected-message queue of each
//! communicator context.
//!
//! An arriving message matches the earliest posted receive whose source and tag filters
//! accept it; a newly posted receive matches the earliest unexpected message it accepts.
//! Because each sender's messages are handed over in the order they arrived on one
//! connection, two messages from one sender with one tag are never overtaken (MPI's
//! ordering rule). Any-source and any-tag receives are filters set to `None`.
//!
//! Unexpected messages are queued per sender and stamped with their arrival order, so a
//! receive naming its source looks only at that sender's messages (and usually takes the
//! first), while an any-source receive still takes the earliest arrival over all senders.
//! One queue for all senders made a root that gathers from its peers in rank order scan
//! and shift past everything the later ranks had sent ahead: with 50 back-to-back 1 KiB
//! gathers on 4 ranks, 25 % of the root's time went to that scan and its `memmove`.

use std::collections::VecDeque;

use crate::buf::{AlignedBuf, RawParts};
use crate::datatype::TypeInfo;
use crate::frame::Header;
use crate::request::{IdMap, ReqId};

/// Where a receive wants its payload.
pub(crate) enum SinkSpec {
    /// The caller's buffer, which outlives the receive (a blocking `recv_into`), possibly
    /// in parts (a collective's header and payload).
    User(RawParts),
    /// A new buffer of the message's length, aligned for the element type.
    Owned { align: usize },
}

// SAFETY: the pointer in `User` is only dereferenced under the engine lock while the
// blocking call that lent the buffer is waiting for this very receive.
unsafe impl Send for SinkSpec {}

/// A receive waiting for its message.
pub(crate) struct Posted {
    pub req: ReqId,
    /// World rank of the wanted sender, `None` for any source.
    pub src: Option<u32>,
    /// Wanted tag, `None` for any tag.
    pub tag: Option<i32>,
    /// Expected element type.
    pub ty: TypeInfo,
    pub sink: SinkSpec,
}

impl Posted {
    fn accepts(&self, src: u32, tag: i32) -> bool {
        self.src.is_none_or(|s| s == src) && self.tag.is_none_or(|t| t == tag)
    }
}

/// A message that arrived before a receive for it was posted.
pub(crate) enum Unexpected {
    /// A complete eager message.
    Eager {
        src: u32,
        hdr: Header,
        data: AlignedBuf,
    },
    /// An announced large message; its payload stays with the sender until matched.
    Rts { src: u32, hdr: Header },
}

impl Unexpected {
    pub fn src(&self) -> u32 {
        match self {
            Unexpected::Eager { src, .. } | Unexpected::Rts { src, .. } => *src,
        }
    }

    pub fn hdr(&self) -> &Header {
        match self {
            Unexpected::Eager { hdr, .. } | Unexpected::Rts { hdr, .. } => hdr,
        }
    }
}

#[derive(Default)]
struct Queues {
    posted: VecDeque<Posted>,
    /// Unexpected messages by world rank of the sender, each queue in arrival order.
    unexpected: IdMap<u32, VecDeque<Stamped>>,
    /// Arrival stamp of the next unexpected message.
    next_seq: u64,
}

/// An unexpected message and its place in the context's arrival order.
struct Stamped {
    seq: u64,
    msg: Unexpected,
}

/// Index in one sender's queue of its earliest message the tag filter accepts.
fn first_with(q: &VecDeque<Stamped>, tag: Option<i32>) -> Option<usize> {
    q.iter()
        .position(|u| tag.is_none_or(|t| t == u.msg.hdr().tag))
}

impl Queues {
    /// Sender and index in its queue of the earliest unexpected message the tag filter
    /// accepts, over every sender (an any-source receive).
    fn earliest(&self, tag: Option<i32>) -> Option<(u32, usize)> {
        self.unexpected
            .iter()
            .filter_map(|(&s, q)| first_with(q, tag).map(|i| (q[i].seq, s, i)))
            .min()
            .map(|(_, s, i)| (s, i))
    }
}

/// The matching state of every context.
#[derive(Default)]
pub(crate) struct Matcher {
    ctxs: IdMap<u32, Queues>,
}

impl Matcher {
    /// Removes and returns the earliest posted receive in `ctx` accepting (src, tag).
    pub fn take_posted(&mut self, ctx: u32, src: u32, tag: i32) -> Option<Posted> {
        let q = self.ctxs.get_mut(&ctx)?;
        let i = q.posted.iter().position(|p| p.accepts(src, tag))?;
        q.posted.remove(i)
    }

    /// Removes and returns the earliest unexpected message in `ctx` accepted by the filters.
    pub fn take_unexpected(
        &mut self,
        ctx: u32,
        src: Option<u32>,
        tag: Option<i32>,
    ) -> Option<Unexpected> {
        let q = self.ctxs.get_mut(&ctx)?;
        let s = match src {
            Some(s) => s,
            None => q.earliest(tag)?.0,
        };
        let from = q.unexpected.get_mut(&s)?;
        let i = first_with(from, tag)?;
        from.remove(i).map(|u| u.msg)
    }

    /// The earliest unexpected message accepted by the filters, left in place (probe).
    pub fn peek_unexpected(
        &self,
        ctx: u32,
        src: Option<u32>,
        tag: Option<i32>,
    ) -> Option<&Unexpected> {
        let q = self.ctxs.get(&ctx)?;
        let (s, i) = match src {
            Some(s) => (s, first_with(q.unexpected.get(&s)?, tag)?),
            None => q.earliest(tag)?,
        };
        Some(&q.unexpected[&s][i].msg)
    }

    pub fn push_posted(&mut self, ctx: u32, p: Posted) {
        self.ctxs.entry(ctx).or_default().posted.push_back(p);
    }

    pub fn push_unexpected(&mut self, ctx: u32, msg: Unexpected) {
        let q = self.ctxs.entry(ctx).or_default();
        let seq = q.next_seq;
        q.next_seq += 1;
        let from = q.unexpected.entry(msg.src()).or_default();
        from.push_back(Stamped { seq, msg });
    }

    /// Removes the posted receive of `req`, if it is still waiting.
    pub fn cancel(&mut self, req: ReqId) -> Option<Posted> {
        for q in self.ctxs.values_mut() {
            if let Some(i) = q.posted.iter().position(|p| p.req == req) {
                return q.posted.remove(i);
            }
        }
        None
    }

    /// Removes every posted receive for which `doomed` says yes.
    pub fn drain_posted(&mut self, mut doomed: impl FnMut(&Posted) -> bool) -> Vec<Posted> {
        let mut out = Vec::new();
        for q in self.ctxs.values_mut() {
            let mut keep = VecDeque::with_capacity(q.posted.len());
            for p in q.posted.drain(..) {
                if doomed(&p) {
                    out.push(p);
                } else {
                    keep.push_back(p);
                }
            }
            q.posted = keep;
        }
        out
    }

    /// Drops the unexpected rendezvous announcements from `src` (their payload can no
    /// longer come).
    pub fn forget_rts_from(&mut self, src: u32) {
        for q in self.ctxs.values_mut() {
            if let Some(from) = q.unexpected.get_mut(&src) {
                from.retain(|u| !matches!(u.msg, Unexpected::Rts { .. }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Kind;

    fn eager(src: u32, tag: i32, byte: u8) -> Unexpected {
        let mut hdr = Header::new(Kind::Eager);
        hdr.tag = tag;
        hdr.len = 1;
        let mut data = AlignedBuf::zeroed(1, 1).unwrap();
        data.as_mut_slice()[0] = byte;
        Unexpected::Eager { src, hdr, data }
    }

    fn posted(req: ReqId, src: Option<u32>, tag: Option<i32>) -> Posted {
        Posted {
            req,
            src,
            tag,
            ty: TypeInfo::BYTES,
            sink: SinkSpec::Owned { align: 1 },
        }
    }

    /// A matcher to which one-byte eager messages (source, tag, byte) arrived in context 0.
    fn arrived(msgs: &[(u32, i32, u8)]) -> Matcher {
        let mut m = Matcher::default();
        for &(src, tag, byte) in msgs {
            m.push_unexpected(0, eager(src, tag, byte));
        }
        m
    }

    /// The byte of the eager message `take_unexpected` returns in context 0.
    fn first(m: &mut Matcher, src: Option<u32>, tag: Option<i32>) -> u8 {
        match m.take_unexpected(0, src, tag) {
            Some(Unexpected::Eager { data, .. }) => data.as_slice()[0],
            _ => panic!("no eager message matches {src:?}, {tag:?}"),
        }
    }

    #[test]
    fn unexpected_messages_match_in_arrival_order_per_filter() {
        let mut m = arrived(&[(1, 5, b'a'), (2, 5, b'b'), (1, 5, b'c')]);
        m.push_unexpected(1, eager(1, 5, b'x'));
        assert_eq!(first(&mut m, Some(1), Some(5)), b'a');
        assert_eq!(first(&mut m, None, None), b'b');
        assert_eq!(first(&mut m, None, Some(5)), b'c');
        assert!(m.take_unexpected(0, None, None).is_none());
        assert!(m.peek_unexpected(1, Some(1), None).is_some());
    }

    #[test]
    fn any_source_takes_the_earliest_arrival_over_every_sender() {
        let mut m = arrived(&[(3, 7, b'a'), (1, 5, b'b'), (3, 5, b'c'), (2, 5, b'd')]);
        m.push_unexpected(
            0,
            Unexpected::Rts {
                src: 2,
                hdr: Header::new(Kind::Rts),
            },
        );
        m.push_unexpected(0, eager(1, 7, b'e'));
        // A named sender skips the others' messages and its own of other tags.
        assert_eq!(first(&mut m, Some(3), Some(5)), b'c');
        assert_eq!(m.peek_unexpected(0, None, Some(5)).unwrap().src(), 1);
        assert_eq!(first(&mut m, None, Some(5)), b'b');
        assert_eq!(first(&mut m, None, None), b'a');
        // Forgetting a sender's announcements keeps its eager messages.
        m.forget_rts_from(2);
        assert_eq!(first(&mut m, None, None), b'd');
        assert_eq!(first(&mut m, None, None), b'e');
        assert!(m.take_unexpected(0, None, None).is_none());
        assert!(m.take_unexpected(0, Some(9), None).is_none());
    }

    #[test]
    fn posted_receives_match_earliest_accepting() {
        let mut m = Matcher::default();
        m.push_posted(0, posted(1, Some(3), None));
        m.push_posted(0, posted(2, None, Some(9)));
        m.push_posted(0, posted(3, None, None));
        assert_eq!(m.take_posted(0, 4, 9).unwrap().req, 2);
        assert_eq!(m.take_posted(0, 3, 9).unwrap().req, 1);
        assert_eq!(m.take_posted(0, 3, 9).unwrap().req, 3);
        assert!(m.take_posted(0, 3, 9).is_none());
        m.push_posted(0, posted(4, None, None));
        assert_eq!(m.cancel(4).unwrap().req, 4);
        assert!(m.cancel(4).is_none());
    }
}
