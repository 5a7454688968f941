//! Peers that are gone: recording why, and failing every operation that involves them.
//!
//! A peer is gone when its connection ends (after a `Goodbye`: it finished; without: it
//! failed), when the launcher reports its exit and no connection to it is left, or when
//! it broke the protocol. From then on every pending and later operation naming it —
//! and every any-source receive, when the peer failed — returns an error naming its rank
//! and host.

use crate::conn::{Incoming, Then};
use crate::engine::{Engine, State};
use crate::error::Error;
use crate::request::ReqId;

/// Why a peer can no longer be talked to.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    /// It ended normally (said goodbye or exited with code 0).
    pub finished: bool,
    pub detail: String,
}

impl State {
    /// The error for operations involving `rank`, if it can no longer be reached.
    pub fn fault_of(&self, rank: u32) -> Option<Error> {
        if let Some(why) = &self.launcher_gone {
            return Some(Error::LauncherGone {
                rank: self.me as usize,
                detail: why.clone(),
            });
        }
        let p = self.peers.get(rank as usize)?;
        let f = p.fault.as_ref()?;
        Some(if f.finished {
            Error::PeerFinished {
                rank: rank as usize,
                host: p.info.host.clone(),
                how: f.detail.clone(),
            }
        } else {
            Error::PeerFailed {
                rank: rank as usize,
                host: p.info.host.clone(),
                detail: f.detail.clone(),
            }
        })
    }

    /// The error for an any-source receive: some rank failed (not merely finished), or
    /// every other rank has finished.
    pub fn any_source_fault(&self) -> Option<Error> {
        if self.launcher_gone.is_some() {
            return self.fault_of(self.me);
        }
        let failed = (0..self.size).find(|&r| {
            self.peers[r as usize]
                .fault
                .as_ref()
                .is_some_and(|f| !f.finished)
        });
        if let Some(r) = failed {
            return self.fault_of(r);
        }
        let all_finished = self.size > 1
            && (0..self.size)
                .filter(|&r| r != self.me)
                .all(|r| self.peers[r as usize].fault.is_some());
        if all_finished {
            return self.fault_of((self.me + 1) % self.size);
        }
        None
    }

    /// Marks `rank` unreachable and fails every operation that involves it.
    pub fn fail_peer(&mut self, eng: &Engine, rank: u32, finished: bool, detail: String) {
        let Some(peer) = self.peers.get_mut(rank as usize) else {
            return;
        };
        if peer.fault.is_some() {
            return;
        }
        peer.fault = Some(Fault { finished, detail });
        self.faults += 1;
        peer.send_conn = None;
        peer.bulk_conn = None;
        self.changed = true;
        // Close its connections; requests waiting on their queued frames fail.
        for ci in 0..self.conns.len() {
            if self.conns[ci]
                .as_ref()
                .is_some_and(|c| c.peer == Some(rank))
            {
                let c = self.remove_conn(eng, ci).expect("checked above");
                let reqs = c.tx.iter().filter_map(|it| it.done);
                let in_flight = match c.incoming {
                    Some(Incoming {
                        then: Then::Complete(req, _),
                        ..
                    }) => Some(req),
                    _ => None,
                };
                for req in reqs.chain(in_flight).collect::<Vec<_>>() {
                    let e = self.fault_of(rank).unwrap_or_else(|| err_gone(rank));
                    self.reqs.complete(req, Err(e));
                }
            }
        }
        let doomed: Vec<ReqId> = self
            .rdv_sends
            .iter()
            .filter(|(_, s)| s.dest == rank)
            .map(|(_, s)| s.req)
            .collect();
        self.rdv_sends.retain(|_, s| s.dest != rank);
        let doomed_recvs: Vec<ReqId> = self
            .rdv_recvs
            .iter()
            .filter(|((src, _), _)| *src == rank)
            .map(|(_, r)| r.req)
            .collect();
        self.rdv_recvs.retain(|(src, _), _| *src != rank);
        self.matcher.forget_rts_from(rank);
        let posted = self
            .matcher
            .drain_posted(|p| p.src == Some(rank) || (p.src.is_none() && !finished));
        let all_finished = self.any_source_fault().is_some();
        let posted_any = if all_finished {
            self.matcher.drain_posted(|p| p.src.is_none())
        } else {
            Vec::new()
        };
        for req in doomed.into_iter().chain(doomed_recvs) {
            let e = self.fault_of(rank).unwrap_or_else(|| err_gone(rank));
            self.reqs.complete(req, Err(e));
        }
        for p in posted.into_iter().chain(posted_any) {
            let e = match p.src {
                Some(_) => self.fault_of(rank),
                None => self.any_source_fault(),
            }
            .unwrap_or_else(|| err_gone(rank));
            self.reqs.complete(p.req, Err(e));
        }
    }
}

fn err_gone(rank: u32) -> Error {
    Error::PeerFailed {
        rank: rank as usize,
        host: "?".into(),
        detail: "connection lost".into(),
    }
}
