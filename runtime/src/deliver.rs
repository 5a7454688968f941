//! What happens when a message meets its receive: checks of type and size, copying into
//! the receiver's buffer, clear-to-send for announced large messages, and messages to
//! this rank itself.

use crate::buf::{AlignedBuf, RawParts};
use crate::conn::{Incoming, Target, Then, TxItem};
use crate::engine::{RdvRecv, State};
use crate::error::{Error, Result};
use crate::frame::{Header, Kind, FLAG_SERDE};
use crate::matching::{Posted, SinkSpec, Unexpected};
use crate::request::{Outcome, RawStatus};

impl State {
    /// A send to this rank itself: straight into matching.
    pub(crate) fn deliver_local(&mut self, hdr: Header, parts: RawParts) {
        let mut buf = AlignedBuf::zeroed(parts.total(), AlignedBuf::guess_align(hdr.elem_size))
            .expect("a buffer the size of existing slices can be allocated");
        let mut at = 0;
        // SAFETY: the sender lends `parts` for the duration of this call.
        for s in unsafe { parts.slices() } {
            buf.as_mut_slice()[at..at + s.len()].copy_from_slice(s);
            at += s.len();
        }
        let me = self.me;
        match self.matcher.take_posted(hdr.ctx, me, hdr.tag) {
            Some(p) => self.fill_posted(p, me, hdr, buf),
            None => self.matcher.push_unexpected(
                hdr.ctx,
                Unexpected::Eager {
                    src: me,
                    hdr,
                    data: buf,
                },
            ),
        }
        self.changed = true;
    }

    /// Completes a posted receive with a complete message held in `data`.
    pub fn fill_posted(&mut self, p: Posted, src: u32, hdr: Header, data: AlignedBuf) {
        let status = RawStatus {
            src,
            tag: hdr.tag,
            len: hdr.len as usize,
        };
        let r = match self.check_posted(&p, src, &hdr) {
            Err(e) => Err(e),
            Ok(()) => match p.sink {
                SinkSpec::User(parts) => {
                    // SAFETY: check_posted verified the message fits; the lender waits on
                    // `p.req`.
                    unsafe { parts.copy_in(data.as_slice()) };
                    Ok(Outcome::Received { status, data: None })
                }
                SinkSpec::Owned { .. } => Ok(Outcome::Received {
                    status,
                    data: Some(data),
                }),
            },
        };
        self.reqs.complete(p.req, r);
        self.changed = true;
    }

    /// Checks type and size of a message against the receive it matched.
    pub fn check_posted(&self, p: &Posted, src: u32, hdr: &Header) -> Result<()> {
        if let Err(detail) =
            p.ty.check(hdr.type_sig, hdr.elem_size, hdr.flags & FLAG_SERDE != 0)
        {
            return Err(Error::TypeMismatch {
                source_rank: src as usize,
                tag: hdr.tag,
                expected: p.ty.name,
                detail,
            });
        }
        if let SinkSpec::User(parts) = &p.sink {
            let cap = parts.total();
            if hdr.len as usize > cap {
                return Err(Error::Truncated {
                    source_rank: src as usize,
                    tag: hdr.tag,
                    len: hdr.len as usize,
                    capacity: cap,
                });
            }
        }
        Ok(())
    }

    /// A newly posted receive found its message among the unexpected ones.
    pub(crate) fn match_unexpected(&mut self, p: Posted, u: Unexpected) {
        match u {
            Unexpected::Eager { src, hdr, data } => self.fill_posted(p, src, hdr, data),
            Unexpected::Rts { src, hdr } => self.accept_rendezvous(p, src, hdr),
        }
    }

    /// Answers an announcement with clear-to-send and prepares where the data will go.
    pub fn accept_rendezvous(&mut self, p: Posted, src: u32, hdr: Header) {
        let (target, error) = match self.check_posted(&p, src, &hdr) {
            Err(e) => (Target::Discard, Some(e)),
            Ok(()) => match p.sink {
                SinkSpec::User(parts) => (Target::User(parts), None),
                SinkSpec::Owned { align } => match AlignedBuf::zeroed(hdr.len as usize, align) {
                    Some(b) => (Target::Owned(b), None),
                    None => (
                        Target::Discard,
                        Some(Error::Io {
                            rank: self.me as usize,
                            what: format!(
                                "allocate {} bytes for a message from rank {src}",
                                hdr.len
                            ),
                            source: std::io::ErrorKind::OutOfMemory.into(),
                        }),
                    ),
                },
            },
        };
        self.reqs.set_payload(p.req, crate::request::Payload::In);
        self.rdv_recvs.insert(
            (src, hdr.id),
            RdvRecv {
                hdr,
                filled: 0,
                target,
                req: p.req,
                error,
            },
        );
        let mut cts = Header::new(Kind::Cts);
        cts.id = hdr.id;
        self.outbox.push((src, TxItem::clear_to_send(cts)));
        self.changed = true;
    }

    /// Starts receiving a payload announced by `hdr` on connection `c` from `src`.
    pub fn begin_incoming(&mut self, src: u32, hdr: Header) -> Incoming {
        match self.matcher.take_posted(hdr.ctx, src, hdr.tag) {
            Some(p) => {
                let (target, err) = match self.check_posted(&p, src, &hdr) {
                    Err(e) => (Target::Discard, Some(e)),
                    Ok(()) => match p.sink {
                        SinkSpec::User(parts) => (Target::User(parts), None),
                        SinkSpec::Owned { align } => (
                            Target::Owned(
                                AlignedBuf::zeroed(hdr.len as usize, align)
                                    .expect("eager lengths are bounded by the decoder"),
                            ),
                            None,
                        ),
                    },
                };
                Incoming {
                    hdr,
                    filled: 0,
                    end: hdr.len as usize,
                    target,
                    then: Then::Complete(p.req, err),
                }
            }
            None => Incoming {
                hdr,
                filled: 0,
                end: hdr.len as usize,
                target: Target::Owned(
                    AlignedBuf::zeroed(hdr.len as usize, AlignedBuf::guess_align(hdr.elem_size))
                        .expect("eager lengths are bounded by the decoder"),
                ),
                then: Then::Deliver,
            },
        }
    }
}
