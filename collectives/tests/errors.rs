//! Misuse is detected and reported with the ranks involved, instead of hanging or
//! returning wrong data: mismatched calls, counts that disagree, bad roots and arguments,
//! undecodable values, and a failing rank.

mod common;

use common::*;
use pirun_collectives::local::{self, LocalError};
use pirun_collectives::op::Sum;
use pirun_collectives::select::{AllreduceAlgorithm, BcastAlgorithm, ReduceAlgorithm};
use pirun_collectives::{algorithms, CollectiveError, Collectives, PointToPoint};

fn fails<R: Send>(
    p: usize,
    f: impl Fn(&local::LocalComm) -> Result<R, LocalError> + Sync,
) -> String {
    match local::run_with(p, &config(1), f) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn different_collectives_are_a_mismatch() {
    with_timeout(30, || {
        let e = fails(2, |c| {
            let mut buf = [0u64; 4];
            if c.rank() == 0 {
                algorithms::bcast(c, 0, &mut buf, BcastAlgorithm::Binomial)
            } else {
                algorithms::allreduce(c, &mut buf, Sum, AllreduceAlgorithm::RecursiveDoubling)
            }
        });
        assert!(
            e.contains("rank 1 is in allreduce")
                && e.contains("bcast")
                && e.contains("from rank 0"),
            "{e}"
        );
    });
}

#[test]
fn rooted_calls_that_both_send_large_messages_fail_instead_of_deadlocking() {
    // A bcast's root and a reduce's leaf both start by sending to the other; above the
    // rendezvous size neither send can finish until the other side receives (guarded
    // from 512 KiB).
    with_timeout(30, || {
        for n in [1 << 16, 1 << 19] {
            let e = fails(2, |c| {
                let mut buf = vec![1u64; n];
                if c.rank() == 0 {
                    c.bcast(0, &mut buf)
                } else {
                    c.reduce(0, &buf, Sum).map(drop)
                }
            });
            assert!(!e.contains("waited more than"), "{n} elements: {e}");
            assert!(e.contains("rank 0") && e.contains("rank 1"), "{e}");
        }
    });
}

#[test]
fn different_algorithms_are_a_mismatch() {
    with_timeout(30, || {
        let e = fails(2, |c| {
            let alg = [
                AllreduceAlgorithm::RecursiveDoubling,
                AllreduceAlgorithm::ReduceBcast,
            ][c.rank()];
            algorithms::allreduce(c, &mut [1u32; 64], Sum, alg)
        });
        assert!(
            e.contains("recursive_doubling") && e.contains("reduce_bcast"),
            "{e}"
        );
    });
}

#[test]
fn different_element_types_are_a_mismatch() {
    with_timeout(30, || {
        let e = fails(2, |c| {
            if c.rank() == 0 {
                c.bcast(0, &mut [0u32; 2])
            } else {
                c.bcast(0, &mut [0u64; 1])
            }
        });
        assert!(
            e.contains("4-byte elements") && e.contains("8-byte elements"),
            "{e}"
        );
    });
}

#[test]
fn counts_that_disagree() {
    with_timeout(30, || {
        let e = fails(2, |c| c.gather(0, &vec![1u16; c.rank() + 1]));
        assert!(
            e.contains("gather") && e.contains("count of 1") && e.contains("count of 2"),
            "{e}"
        );
        let e = fails(2, |c| {
            let mut buf = vec![1u16; c.rank() + 1];
            algorithms::allreduce(c, &mut buf, Sum, AllreduceAlgorithm::RecursiveDoubling)
        });
        // Exchanges (sendrecv) have exact lengths, so the transport reports the difference.
        let expected = "rank 0 expected a message of 22 bytes from rank 1 but received 24";
        assert!(e.contains(expected), "{e}");
        let e = fails(2, |c| {
            let mut buf = vec![1u16; c.rank() + 1];
            algorithms::reduce(c, 0, &mut buf, Sum, ReduceAlgorithm::Binomial)
        });
        let expected =
            "rank 0 called reduce with a count of 1 but rank 1 called it with a count of 2";
        assert!(e.contains(expected), "{e}");
        let e = fails(1, |c| c.scatterv(0, Some((&[1u8, 2, 3][..], &[2][..]))));
        assert!(
            e.contains("scatterv") && e.contains("add up to 2") && e.contains("3 elements"),
            "{e}"
        );
        let e = fails(1, |c| c.scatter_value(0, Some(&[1u16, 2][..])));
        assert!(
            e.contains("scatter_value") && e.contains("2 values for 1 ranks"),
            "{e}"
        );
        let e = fails(1, |c| c.scatter_value::<u8>(0, None));
        assert!(e.contains("the root must pass the values"), "{e}");
        let e = fails(2, |c| c.allgatherv_into(&[1u8], &mut [0; 3], &[1, 2]));
        assert!(e.contains("allgatherv") && e.contains("rank 1"), "{e}");
        let e = fails(3, |c| c.alltoall(&[1u8; 4]));
        assert!(e.contains("not a multiple of the 3 ranks"), "{e}");
    });
}

#[test]
fn invalid_roots_and_missing_root_data() {
    with_timeout(30, || {
        let err = local::run(3, |c| c.reduce(3, &[1u8], Sum)).unwrap_err();
        assert_eq!(
            err,
            LocalError::Collective(CollectiveError::InvalidRoot { root: 3, size: 3 })
        );
        let e = fails(2, |c| c.bcast_value::<u32>(0, None));
        assert!(
            e.contains("rank 0: bcast_value: the root must pass a value"),
            "{e}"
        );
        let e = fails(2, |c| c.scatter::<u8>(1, None, 1));
        assert!(e.contains("rank 1: scatter: the root must pass"), "{e}");
        // A root whose receive buffer is missing or too short still takes part, so the
        // other ranks finish, and then reports the error.
        let e = fails(3, |c| c.gather_into(1, &[1u64; 2], None));
        assert!(
            e.contains("rank 1: gather: the root must pass a receive buffer"),
            "{e}"
        );
        let e = fails(3, |c| c.gather_into(0, &[1u64; 600], Some(&mut [0; 10])));
        assert!(e.contains("gather") && e.contains("receive buffer"), "{e}");
        let e = fails(2, |c| c.reduce_into(0, &[1u8], None, Sum));
        assert!(
            e.contains("rank 0: reduce: the root must pass a receive buffer"),
            "{e}"
        );
    });
}

#[test]
fn undecodable_values_name_their_rank() {
    with_timeout(30, || {
        let e = fails(3, |c| {
            if c.rank() == 2 {
                c.gather_value(0, &u32::MAX).map(|_| ())
            } else {
                c.gather_value(0, &String::from("ok")).map(|_| ())
            }
        });
        assert!(
            e.contains("rank 0 could not decode the value contributed by rank 2"),
            "{e}"
        );
    });
}

#[test]
fn a_rank_that_skips_a_collective_times_out_instead_of_hanging() {
    with_timeout(30, || {
        let cfg = local::Config {
            timeout: std::time::Duration::from_millis(200),
            ..config(1)
        };
        let err = local::run_with(
            4,
            &cfg,
            |c| if c.rank() == 3 { Ok(()) } else { c.barrier() },
        )
        .unwrap_err();
        assert!(matches!(err, LocalError::Timeout { .. }), "{err}");
    });
}
