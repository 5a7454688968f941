//! The job-array part of the launcher ↔ proxy protocol ([`crate::wire`]): what travels in
//! `JobSpec::array`, `ToProxy::Tasks` and `FromProxy::Tasks`. The same orders and events
//! drive the [`TaskRunner`](super::TaskRunner) of the launcher's own host, without the
//! wire in between.
//!
//! Tasks are named by their sequence number `seq` (0, 1, 2, … in the order the array
//! lists them), which is unique within a run; `index` is what the task sees
//! (`PIRUN_ARRAY_INDEX`: the array index or the line number of `--array-file`).

use pirun::contract::ExitKind;
use serde::{Deserialize, Serialize};

use crate::wire::Bytes;

/// What a proxy needs to know about a job array besides the job itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArraySpec {
    /// How many tasks the launcher runs there at once (it may start the earliest
    /// unfinished task of an ordered run beyond that).
    pub slots: u32,
}

/// Start one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStart {
    /// Its sequence number.
    pub seq: u64,
    /// Its index (environment: `PIRUN_ARRAY_INDEX` and the batch systems' names).
    pub index: u64,
    /// Its arguments, placeholders already replaced (the program is the job's).
    pub args: Vec<Bytes>,
}

/// An order of the launcher about tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOrder {
    /// Start this task now.
    Start(TaskStart),
    /// Stop reading this task's stdout (the launcher holds too much of it): the task
    /// blocks once its pipe is full.
    Pause(u64),
    /// Read this task's stdout again.
    Resume(u64),
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskEvent {
    /// Output: raw stdout bytes (in order, cut anywhere), or whole stderr lines.
    Output {
        /// The task.
        seq: u64,
        /// `true` for stderr.
        stderr: bool,
        /// The bytes.
        data: Bytes,
    },
    /// The task's process ended; `out` is the rest of its stdout. Whatever it left in
    /// its process group was killed.
    Exited {
        /// The task.
        seq: u64,
        /// How it ended.
        how: ExitKind,
        /// The stdout not sent yet.
        out: Bytes,
    },
    /// The task could not be started (`fork`/`exec` failed).
    Failed {
        /// The task.
        seq: u64,
        /// Why, naming the program.
        message: String,
    },
    /// The task was not started: the run is being ended.
    Cancelled {
        /// The task.
        seq: u64,
    },
}

impl TaskEvent {
    /// The task concerned.
    pub fn seq(&self) -> u64 {
        match self {
            TaskEvent::Output { seq, .. }
            | TaskEvent::Exited { seq, .. }
            | TaskEvent::Failed { seq, .. }
            | TaskEvent::Cancelled { seq } => *seq,
        }
    }

    /// Rough encoded size, for cutting batches into frames.
    pub fn weight(&self) -> usize {
        match self {
            TaskEvent::Output { data, .. } | TaskEvent::Exited { out: data, .. } => {
                16 + data.0.len()
            }
            TaskEvent::Failed { message, .. } => 16 + message.len(),
            TaskEvent::Cancelled { .. } => 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, frame, FromProxy, ToProxy};

    #[test]
    fn task_messages_round_trip() {
        let orders = ToProxy::Tasks(vec![
            TaskOrder::Start(TaskStart {
                seq: 3,
                index: 1000,
                args: vec![Bytes(b"17".to_vec()), Bytes(vec![0xff])],
            }),
            TaskOrder::Pause(1),
            TaskOrder::Resume(1),
        ]);
        let f = frame(&orders);
        assert_eq!(decode::<ToProxy>(&f[4..]).unwrap(), orders);
        let events = FromProxy::Tasks(vec![
            TaskEvent::Output {
                seq: 3,
                stderr: true,
                data: Bytes(b"oops\n".to_vec()),
            },
            TaskEvent::Exited {
                seq: 3,
                how: ExitKind::Code(1),
                out: Bytes(b"17 is prime\n".to_vec()),
            },
            TaskEvent::Failed {
                seq: 4,
                message: "no".into(),
            },
            TaskEvent::Cancelled { seq: 5 },
        ]);
        let f = frame(&events);
        assert_eq!(decode::<FromProxy>(&f[4..]).unwrap(), events);
        assert!(
            f.len() < 64,
            "a batch of small events is small: {}",
            f.len()
        );
    }
}
