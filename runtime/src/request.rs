//! The engine's table of outstanding operations and what a finished one yields.

use std::collections::HashMap;

use crate::buf::AlignedBuf;
use crate::error::Error;

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

struct Slot {
    /// Non-blocking: the background thread progresses it while it is pending.
    background: bool,
    result: Option<Result<Outcome, Error>>,
}

/// Outstanding and finished-but-unclaimed operations.
#[derive(Default)]
pub(crate) struct Requests {
    next: ReqId,
    table: HashMap<ReqId, Slot>,
    /// Pending operations marked `background`.
    background: usize,
}

impl Requests {
    /// Registers a new pending operation.
    pub fn open(&mut self) -> ReqId {
        self.next += 1;
        self.table.insert(
            self.next,
            Slot {
                background: false,
                result: None,
            },
        );
        self.next
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
        if !self.is_done(id) {
            return None;
        }
        self.table.remove(&id).and_then(|s| s.result)
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
