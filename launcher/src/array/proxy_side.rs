//! The proxy's part of a job array (`pirun --proxy` on a remote host): a [`TaskRunner`]
//! built from the job the proxy prepared, orders from the launcher, and the runner's
//! events sent back in batches. [`crate::proxy`] calls these three functions; the rest
//! of the proxy (hello, program check, heartbeats, ending) is the same as for ranks.

use std::time::Instant;

use super::protocol::{ArraySpec, TaskEvent};
use super::runner::{TaskContext, TaskRunner};
use crate::error::LaunchError;
use crate::host::HostLaunch;
use crate::wire::{FromProxy, OutQueue, ToProxy};

/// Largest batch of events in one frame (well below [`crate::wire::MAX_FRAME`]).
const BATCH_BYTES: usize = 1 << 20;

/// The runner for the job the proxy prepared.
pub fn proxy_runner(launch: &HostLaunch, array: &ArraySpec) -> Result<TaskRunner, LaunchError> {
    TaskRunner::new(
        TaskContext {
            host: launch.host.clone(),
            program: launch.program.clone(),
            arg0: launch.arg0.clone(),
            env: launch.env.clone(),
            wdir: launch.wdir.clone(),
        },
        array.slots as usize,
    )
}

/// Carries out a message of the launcher while tasks run.
pub fn proxy_order(tasks: &mut TaskRunner, msg: ToProxy) {
    match msg {
        ToProxy::Tasks(orders) => {
            for order in orders {
                tasks.order(order);
            }
        }
        ToProxy::Signal(sig) => tasks.signal(sig),
        // Stdin is not forwarded to tasks; nothing else concerns them.
        ToProxy::Stdin(_) | ToProxy::StdinEnd | ToProxy::Peers(_) => {}
        _ => eprintln!("pirun --proxy: ignoring an unexpected message in a job array"),
    }
}

/// One turn of the proxy's loop: sends stdout that has waited long enough and queues the
/// runner's events for the launcher, in batches. Returns when to be called again.
pub fn proxy_turn(tasks: &mut TaskRunner, uplink: &mut OutQueue) -> Option<Instant> {
    let next = tasks.tick(Instant::now());
    if tasks.has_events() {
        let mut events = Vec::new();
        tasks.drain_events(&mut events);
        send_batches(events, uplink);
    }
    next
}

fn send_batches(events: Vec<TaskEvent>, uplink: &mut OutQueue) {
    let mut batch = Vec::new();
    let mut bytes = 0;
    for e in events {
        bytes += e.weight();
        batch.push(e);
        if bytes >= BATCH_BYTES {
            uplink.send(&FromProxy::Tasks(std::mem::take(&mut batch)));
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        uplink.send(&FromProxy::Tasks(batch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, Bytes};

    #[test]
    fn big_batches_are_cut_into_frames() {
        let events: Vec<TaskEvent> = (0..5)
            .map(|seq| TaskEvent::Output {
                seq,
                stderr: false,
                data: Bytes(vec![b'x'; 400 * 1024]),
            })
            .collect();
        let mut q = OutQueue::default();
        send_batches(events, &mut q);
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut &b, &mut all).unwrap();
            all
        });
        while !q.is_empty() {
            use std::os::fd::AsRawFd;
            crate::poller::wait_writable(a.as_raw_fd());
            q.flush(a.as_raw_fd()).unwrap();
        }
        drop(a);
        let all = reader.join().unwrap();
        let mut frames = Vec::new();
        let mut rest = &all[..];
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            let FromProxy::Tasks(batch) = decode::<FromProxy>(&rest[4..4 + len]).unwrap() else {
                panic!("not a batch");
            };
            frames.push(batch.len());
            rest = &rest[4 + len..];
        }
        assert_eq!(frames, [3, 2]);
    }
}
