//! The engine's table of outstanding operations and what a finished one yields.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::buf::AlignedBuf;
use crate::error::Error;

/// Hashes the engine's integer keys (request ids, context ids) with a multiply per word:
/// they are small, mostly sequential and come from this process or authenticated peers,
/// and SipHash showed in the profile of the 8-byte round trip.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(Self::K);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// A hash map keyed by engine integers, hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Identifies an operation inside one engine.
pub(crate) type ReqId = u64;

/// Envelope of a received message, in world ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawStatus {
    pub src: u32,
    pub tag: i32,
    pub len: usize,
}

/// What a finished operation yields.
pub(crate) enum Outcome {
    /// A send completed: its buffer may be reused.
    Sent,
    /// A receive completed; `data` is set unless it went into the caller's buffer.
    Received {
        status: RawStatus,
        data: Option<AlignedBuf>,
    },
}

/// Which way a rendezvous payload moves, for a request waiting for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// Into a receive matched to the sender's announcement.
    In,
    /// Out of a large send that got its clear-to-send.
    Out,
}

struct Slot {
    /// Non-blocking: the background thread progresses it while it is pending.
    background: bool,
    /// The world rank whose frames the operation waits for (a receive's named source, a
    /// large send's receiver): where a thread waiting for it reads first.
    from: Option<u32>,
    /// It now waits for its rendezvous payload to move.
    payload: Option<Payload>,
    result: Option<Result<Outcome, Error>>,
}

/// Outstanding and finished-but-unclaimed operations.
#[derive(Default)]
pub(crate) struct Requests {
    next: ReqId,
    table: IdMap<ReqId, Slot>,
    /// Pending operations marked `background`.
    background: usize,
}

impl Requests {
    /// Registers a new pending operation.
    pub fn open(&mut self) -> ReqId {
        self.open_from(None)
    }

    /// Registers a new pending operation that waits for frames from world rank `from`
    /// (`None`: from any rank, or from none).
    pub fn open_from(&mut self, from: Option<u32>) -> ReqId {
        self.next += 1;
        self.table.insert(
            self.next,
            Slot {
                background: false,
                from,
                payload: None,
                result: None,
            },
        );
        self.next
    }

    /// The rank a pending operation waits for frames from, if it names one.
    pub fn source(&self, id: ReqId) -> Option<u32> {
        self.table.get(&id).and_then(|s| s.from)
    }

    /// Notes that a pending operation now waits for its rendezvous payload to move.
    pub fn set_payload(&mut self, id: ReqId, way: Payload) {
        if let Some(s) = self.table.get_mut(&id) {
            s.payload = Some(way);
        }
    }

    /// Which way the rendezvous payload a pending operation waits for moves, if it waits
    /// for one.
    pub fn awaits_payload(&self, id: ReqId) -> Option<Payload> {
        self.table.get(&id).and_then(|s| s.payload)
    }

    /// Marks a pending operation as one the background thread should progress.
    pub fn set_background(&mut self, id: ReqId) {
        if let Some(s) = self.table.get_mut(&id) {
            if s.result.is_none() && !s.background {
                s.background = true;
                self.background += 1;
            }
        }
    }

    /// Number of pending background operations.
    pub fn background(&self) -> usize {
        self.background
    }

    /// Records the result of `id`; ignored if it already has one or nobody waits for it.
    pub fn complete(&mut self, id: ReqId, r: Result<Outcome, Error>) {
        if let Some(s) = self.table.get_mut(&id) {
            if s.result.is_none() {
                s.result = Some(r);
                if s.background {
                    self.background -= 1;
                }
            }
        }
    }

    pub fn is_done(&self, id: ReqId) -> bool {
        self.table.get(&id).is_some_and(|s| s.result.is_some())
    }

    /// Takes the result of a finished operation, forgetting it.
    pub fn take(&mut self, id: ReqId) -> Option<Result<Outcome, Error>> {
        match self.table.entry(id) {
            Entry::Occupied(e) if e.get().result.is_some() => e.remove().result,
            _ => None,
        }
    }

    /// Forgets an operation whatever its state (its handle was dropped).
    pub fn forget(&mut self, id: ReqId) {
        if let Some(s) = self.table.remove(&id) {
            if s.background && s.result.is_none() {
                self.background -= 1;
            }
        }
    }

    /// Ids of every pending operation.
    pub fn pending(&self) -> Vec<ReqId> {
        self.table
            .iter()
            .filter(|(_, s)| s.result.is_none())
            .map(|(&id, _)| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_taken_once_and_only_when_finished() {
        let mut r = Requests::default();
        let a = r.open_from(Some(3));
        let b = r.open();
        assert_eq!((r.source(a), r.source(b)), (Some(3), None));
        assert!(r.take(a).is_none(), "pending");
        r.complete(a, Ok(Outcome::Sent));
        assert!(matches!(r.take(a), Some(Ok(Outcome::Sent))));
        assert!(r.take(a).is_none(), "already taken");
        assert_eq!(r.source(a), None, "forgotten with its result");
        assert_eq!(r.pending(), vec![b]);
    }

    #[test]
    fn many_sequential_ids_stay_apart() {
        let mut r = Requests::default();
        let ids: Vec<ReqId> = (0..10_000).map(|i| r.open_from(Some(i))).collect();
        for (i, &id) in ids.iter().enumerate().step_by(7) {
            assert_eq!(r.source(id), Some(i as u32));
        }
    }
}
