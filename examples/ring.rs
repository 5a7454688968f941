//! A token travels around the ring of ranks `LAPS` times (default 3); each rank adds its
//! rank to it, and rank 0 prints the result, which it checks against the closed form.
//!
//! `pirun -n 4 target/release/examples/ring 10`

use std::process::ExitCode;

const TAG: pirun::Tag = 1;

fn main() -> pirun::Result<ExitCode> {
    let world = pirun::init()?;
    let laps: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let (rank, size) = (world.rank(), world.size());
    let next = (rank + 1) % size;
    let prev = (rank + size - 1) % size;
    let mut token = [0u64];
    for _ in 0..laps {
        if rank == 0 {
            world.send(next, TAG, &token)?;
            world.recv_into(prev, TAG, &mut token)?;
        } else {
            world.recv_into(prev, TAG, &mut token)?;
            token[0] += rank as u64;
            world.send(next, TAG, &token)?;
        }
    }
    if rank == 0 {
        let size = size as u64;
        let expected = laps * size * (size - 1) / 2;
        println!(
            "ring: {laps} laps over {size} ranks, token = {} (expected {expected})",
            token[0]
        );
        if token[0] != expected {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
