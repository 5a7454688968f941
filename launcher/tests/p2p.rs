//! Point-to-point behaviour of the runtime, tested as real processes under `pirun`.
//!
//! Each test is its own rank program (see `common::scenario`). Every launch is bounded by
//! a hard timeout and cleaned up by the harness.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{assert_ok, scenario, stderr, Running, SCENARIO};
use pirun::prelude::*;
use pirun::{Error, ANY_SOURCE, ANY_TAG};

#[test]
fn any_source_and_any_tag_receive_everything_with_its_status() {
    let out = scenario(
        "any_source_and_any_tag_receive_everything_with_its_status",
        5,
        |w| {
            if w.rank() == 0 {
                let mut seen = vec![false; w.size()];
                for _ in 1..w.size() {
                    let (v, st) = w.recv::<u32>(ANY_SOURCE, ANY_TAG)?;
                    assert_eq!(st.tag(), 100 + st.source() as i32);
                    assert_eq!(v, vec![st.source() as u32; st.source()]);
                    assert_eq!(st.count::<u32>(), st.source());
                    seen[st.source()] = true;
                }
                assert!(seen[1..].iter().all(|&s| s));
            } else {
                w.send(0, 100 + w.rank() as i32, &vec![w.rank() as u32; w.rank()])?;
            }
            Ok(())
        },
    );
    assert_ok(&out);
}

#[test]
fn messages_from_one_sender_with_one_tag_keep_their_order_across_sizes() {
    // On one host: small messages over the local channel, payloads over TCP.
    let out = scenario(
        "messages_from_one_sender_with_one_tag_keep_their_order_across_sizes",
        2,
        mixed_sizes_in_order,
    );
    assert_ok(&out);
}

#[test]
fn messages_keep_their_order_with_the_local_channel_off() {
    let out = common::scenario_with(
        "messages_keep_their_order_with_the_local_channel_off",
        2,
        &["-x", "PIRUN_LOCAL_CHANNEL=tcp"],
        mixed_sizes_in_order,
    );
    assert_ok(&out);
}

/// Rank 0 sends rank 1 300 messages on one tag, of eager and rendezvous sizes (the limit
/// is 128 KiB), blocking and not; rank 1 checks they arrive in order.
fn mixed_sizes_in_order(w: &pirun::Communicator) -> pirun::Result<()> {
    let sizes = [0usize, 1, 100, 70_000, 3, 200_000, 8, 140_000];
    if w.rank() == 0 {
        let mut reqs = Vec::new();
        for i in 0..300u64 {
            let n = sizes[i as usize % sizes.len()];
            let mut msg = vec![i; n / 8 + 1];
            msg[0] = i;
            if i % 3 == 0 {
                reqs.push(w.isend(1, 7, msg)?);
            } else {
                w.send(1, 7, &msg)?;
            }
        }
        pirun::wait_all(reqs)?;
    } else {
        for i in 0..300u64 {
            let (v, _) = w.recv::<u64>(0, 7)?;
            assert_eq!(v[0], i, "message {i} overtaken");
        }
    }
    Ok(())
}

#[test]
fn payloads_in_pieces_cross_both_ways_and_keep_their_order() {
    // Pieces of 4 KiB (across hosts they are 64 KiB; on one host whole by default): both
    // ranks send a large message to each other at once, so each one's clear-to-send
    // crosses the other's payload, and eager messages queued behind a payload stay behind
    // the messages sent before them.
    let out = common::scenario_with(
        "payloads_in_pieces_cross_both_ways_and_keep_their_order",
        2,
        &["-x", "PIRUN_DATA_PIECE=4096"],
        |w| {
            let (me, peer) = (w.rank(), 1 - w.rank());
            let pattern = |r: usize, n: usize| -> Vec<u32> {
                (0..n as u32)
                    .map(|i| i.wrapping_mul(2_654_435_761) ^ r as u32)
                    .collect()
            };
            for round in 0..5usize {
                let n = 300_001 + round * 77_777; // never a whole number of pieces
                let big = w.isend(peer, 1, pattern(me, n))?;
                let small = w.isend(peer, 2, vec![round as u64; 3])?;
                let mut got = vec![0u32; n];
                w.recv_into(peer, 1, &mut got)?;
                assert!(
                    got == pattern(peer, n),
                    "round {round}: payload from {peer} intact"
                );
                let (v, _) = w.recv::<u64>(peer, 2)?;
                assert_eq!(v, vec![round as u64; 3]);
                pirun::wait_all(vec![big, small])?;
            }
            Ok(())
        },
    );
    assert_ok(&out);
}

/// The CPUs the calling thread may run on (pirun::init binds the thread that calls it).
fn cpus_allowed() -> String {
    let status =
        std::fs::read_to_string("/proc/thread-self/status").expect("read /proc/thread-self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/thread-self/status")
        .trim()
        .to_string()
}

/// Every rank's CPU set, gathered on rank 0.
fn cpu_sets(w: &pirun::Communicator) -> pirun::Result<Option<Vec<String>>> {
    w.gather_value(0, &cpus_allowed())
}

#[test]
fn ranks_that_outnumber_the_cores_bind_to_them_in_contiguous_blocks() {
    let out = scenario(
        "ranks_that_outnumber_the_cores_bind_to_them_in_contiguous_blocks",
        6,
        |w| {
            // Counted after init: 1 if init bound this thread, every CPU if it did not.
            let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
            let Some(all) = cpu_sets(w)? else {
                return Ok(());
            };
            if usable >= 6 {
                // A core each: `auto` leaves the ranks where they are.
                let mine = cpus_allowed();
                assert!(all.iter().all(|c| *c == mine), "nobody bound: {all:?}");
            } else {
                let cpus: Vec<u32> = all
                    .iter()
                    .map(|c| {
                        c.parse()
                            .unwrap_or_else(|_| panic!("one CPU per rank: {all:?}"))
                    })
                    .collect();
                let mut sorted = cpus.clone();
                sorted.sort_unstable();
                assert_eq!(cpus, sorted, "neighbouring ranks share a CPU: {all:?}");
                assert!(cpus[0] != cpus[5], "the ranks are spread: {all:?}");
            }
            Ok(())
        },
    );
    assert_ok(&out);
}

#[test]
fn bind_to_none_leaves_the_ranks_unbound() {
    let out = common::scenario_with(
        "bind_to_none_leaves_the_ranks_unbound",
        6,
        &["--bind-to", "none"],
        |w| {
            if let Some(all) = cpu_sets(w)? {
                let mine = cpus_allowed();
                assert!(all.iter().all(|c| *c == mine), "nobody bound: {all:?}");
            }
            Ok(())
        },
    );
    assert_ok(&out);
}

#[test]
fn send_to_self_zero_length_and_serde_values() {
    let out = scenario("send_to_self_zero_length_and_serde_values", 2, |w| {
        w.send::<f64>(w.rank(), 1, &[])?;
        let (v, st) = w.recv::<f64>(w.rank(), 1)?;
        assert!(v.is_empty());
        assert_eq!(st.len_bytes(), 0);
        let peer = 1 - w.rank();
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Config {
            name: String,
            limits: Vec<u64>,
        }
        let c = Config {
            name: format!("from {}", w.rank()),
            limits: vec![1, 2, 3],
        };
        w.send_value(peer, 2, &c)?;
        let (got, _) = w.recv_value::<Config>(peer, 2)?;
        assert_eq!(got.name, format!("from {peer}"));
        assert_eq!(got.limits, vec![1, 2, 3]);
        Ok(())
    });
    assert_ok(&out);
}

#[test]
fn probe_then_receive_and_sendrecv_ring() {
    let out = scenario("probe_then_receive_and_sendrecv_ring", 3, |w| {
        let (n, r) = (w.size(), w.rank());
        let (next, prev) = ((r + 1) % n, (r + n - 1) % n);
        let (got, st) = w.sendrecv::<u64, u64>(next, 5, &[r as u64; 1000], prev, 5)?;
        assert_eq!(got, vec![prev as u64; 1000]);
        assert_eq!(st.source(), prev);
        if r == 0 {
            assert!(w.iprobe(1, 9)?.is_none() || w.size() > 0);
            w.send(1, 9, &[7u16; 33])?;
        } else if r == 1 {
            let st = w.probe(0, ANY_TAG)?;
            assert_eq!((st.tag(), st.count::<u16>()), (9, 33));
            let mut buf = vec![0u16; st.count::<u16>()];
            w.recv_into(0, 9, &mut buf)?;
            assert_eq!(buf, vec![7u16; 33]);
        }
        Ok(())
    });
    assert_ok(&out);
}

#[test]
fn wrong_type_and_too_small_buffer_are_errors_and_the_job_goes_on() {
    let out = scenario(
        "wrong_type_and_too_small_buffer_are_errors_and_the_job_goes_on",
        2,
        |w| {
            if w.rank() == 0 {
                w.send(1, 1, &[1.5f64, 2.5])?;
                w.send(1, 2, &[1u8; 100])?;
                w.send(1, 3, &vec![3u32; 100_000])?; // rendezvous-sized, received too small
                w.send(1, 4, &[42u64])?;
            } else {
                match w.recv::<u64>(0, 1) {
                    Err(Error::TypeMismatch { source_rank: 0, .. }) => {}
                    other => panic!("expected a type mismatch, got {other:?}"),
                }
                let mut small = [0u8; 10];
                match w.recv_into(0, 2, &mut small) {
                    Err(Error::Truncated {
                        len: 100,
                        capacity: 10,
                        ..
                    }) => {}
                    other => panic!("expected truncation, got {other:?}"),
                }
                let mut small = vec![0u32; 10];
                assert!(matches!(
                    w.recv_into(0, 3, &mut small),
                    Err(Error::Truncated { .. })
                ));
                let (v, _) = w.recv::<u64>(0, 4)?;
                assert_eq!(v, [42]);
            }
            Ok(())
        },
    );
    assert_ok(&out);
}

#[test]
fn a_256_mib_message_arrives_intact() {
    let out = scenario("a_256_mib_message_arrives_intact", 2, |w| {
        const N: usize = 256 << 20 >> 3;
        if w.rank() == 0 {
            let v: Vec<u64> = (0..N as u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect();
            w.send(1, 1, &v)?;
        } else {
            let (v, st) = w.recv::<u64>(0, 1)?;
            assert_eq!(st.len_bytes(), 256 << 20);
            assert!(v
                .iter()
                .enumerate()
                .all(|(i, &x)| x == (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        }
        Ok(())
    });
    assert_ok(&out);
}

#[test]
fn non_blocking_transfers_progress_while_the_ranks_compute() {
    let out = scenario(
        "non_blocking_transfers_progress_while_the_ranks_compute",
        2,
        |w| {
            const N: usize = 16 << 20;
            let peer = 1 - w.rank();
            let recv = w.irecv::<u8>(peer, 1)?;
            let send = w.isend(peer, 1, vec![w.rank() as u8; N])?;
            // Compute without calling pirun: only the background thread can move the data.
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_secs(2) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
            let mut recv = recv;
            let got = recv.test()?;
            let (v, _) = got.expect("the receive did not progress during the compute phase");
            assert_eq!(v.len(), N);
            assert!(v.iter().all(|&b| b == peer as u8));
            send.wait()?;
            Ok(())
        },
    );
    assert_ok(&out);
}

#[test]
fn wait_any_returns_the_first_completed_request() {
    let out = scenario("wait_any_returns_the_first_completed_request", 2, |w| {
        if w.rank() == 0 {
            let mut reqs = vec![
                w.irecv::<u8>(1, 1)?,
                w.irecv::<u8>(1, 2)?,
                w.irecv::<u8>(1, 3)?,
            ];
            w.send::<u8>(1, 10, &[])?; // tell rank 1 we are ready
            let (i, (v, _)) = pirun::wait_any(&mut reqs)?;
            assert_eq!((i, v), (2, vec![3]));
            w.send::<u8>(1, 11, &[])?;
            let rest = pirun::wait_all(reqs)?;
            assert_eq!(
                rest.into_iter().map(|(v, _)| v[0]).collect::<Vec<_>>(),
                [1, 2]
            );
        } else {
            w.recv::<u8>(0, 10)?;
            w.send(0, 3, &[3u8])?;
            w.recv::<u8>(0, 11)?;
            w.send(0, 1, &[1u8])?;
            w.send(0, 2, &[2u8])?;
        }
        Ok(())
    });
    assert_ok(&out);
}

#[test]
fn a_peer_that_exits_early_turns_into_an_error_within_a_second() {
    let out = scenario(
        "a_peer_that_exits_early_turns_into_an_error_within_a_second",
        3,
        |w| {
            match w.rank() {
                1 => {
                    // Leave without finalizing, as a crash would (exit code 0, so the
                    // launcher does not end the job).
                    w.send::<u8>(0, 1, &[])?;
                    std::process::exit(0);
                }
                0 => {
                    w.recv::<u8>(1, 1)?;
                    let t = Instant::now();
                    let err = w.recv::<u8>(1, 2).expect_err("rank 1 is gone");
                    let waited = t.elapsed();
                    let text = err.to_string();
                    assert!(
                        text.contains("rank 1"),
                        "error does not name rank 1: {text}"
                    );
                    assert!(waited < Duration::from_secs(1), "took {waited:?}");
                    assert!(
                        w.send(1, 3, &[1u8]).is_err(),
                        "a later send to rank 1 must fail"
                    );
                    eprintln!("rank 0 saw: {text}");
                    w.send(2, 4, &[1u8])?;
                }
                _ => {
                    w.recv::<u8>(0, 4)?;
                }
            }
            Ok(())
        },
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("rank 0 saw: rank 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_killed_peer_fails_the_pending_receive_naming_it() {
    let out = scenario(
        "a_killed_peer_fails_the_pending_receive_naming_it",
        2,
        |w| {
            if w.rank() == 1 {
                w.send::<u8>(0, 1, &[])?;
                std::thread::sleep(Duration::from_millis(200));
                // SAFETY: the rank ends itself the hard way, as an OOM kill would.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            } else {
                // Survive pirun's SIGTERM long enough to report (SIGKILL follows the grace).
                // SAFETY: ignoring a signal is always sound.
                unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
                w.recv::<u8>(1, 1)?;
                let err = w.recv::<u8>(1, 2).expect_err("rank 1 was killed");
                eprintln!("rank 0 saw: {err}");
                std::process::exit(0);
            }
            Ok(())
        },
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rank 0 saw: rank 1 on host"), "{err}");
}

#[test]
fn strangers_and_garbage_on_a_ranks_port_are_dropped_and_the_job_goes_on() {
    let out = scenario(
        "strangers_and_garbage_on_a_ranks_port_are_dropped_and_the_job_goes_on",
        2,
        |w| {
            if w.rank() == 1 {
                let addr = w.listen_addr().expect("rank 1 listens").to_string();
                w.send_value(0, 1, &addr)?;
                // Rank 1 keeps working while rank 0 attacks its port.
                let (v, _) = w.recv::<u64>(0, 2)?;
                assert_eq!(v, [1, 2, 3]);
                w.send(0, 3, &[4u64])?;
            } else {
                let (addr, _) = w.recv_value::<String>(1, 1)?;
                attack(&addr);
                w.send(1, 2, &[1u64, 2, 3])?;
                let (v, _) = w.recv::<u64>(1, 3)?;
                assert_eq!(v, [4]);
            }
            Ok(())
        },
    );
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("did not complete the pirun handshake"),
        "{err}"
    );
}

/// Opens bad connections to `addr`: garbage, a forged frame header without a handshake,
/// a header claiming a huge length, and a handshake with the wrong secret.
fn attack(addr: &str) {
    let mut forged = pirun::frame::Header::new(pirun::frame::Kind::Eager);
    forged.len = u64::MAX;
    let attempts: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.0\r\n\r\n".repeat(10),
        forged.encode().to_vec(),
        vec![0xFF; 4096],
    ];
    for bytes in attempts {
        let mut s = TcpStream::connect(addr).expect("connect to rank 1");
        let _ = s.write_all(&bytes);
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sink = [0u8; 256];
        // The rank drops us: read returns EOF or an error, never frames.
        while let Ok(n) = s.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
    // A well-formed handshake from someone without the job's secret.
    let (connector, hello) = pirun::handshake::Connector::start([0x55; 32], 0, 2).expect("nonce");
    let mut s = TcpStream::connect(addr).expect("connect to rank 1");
    s.write_all(&hello).expect("send hello");
    let mut reply = [0u8; pirun::handshake::REPLY_LEN];
    s.read_exact(&mut reply)
        .expect("rank 1 answers a well-formed hello");
    assert!(
        connector.finish(&reply, 1).is_err(),
        "a wrong secret must not verify"
    );
    let _ = s.write_all(&[0u8; pirun::handshake::PROOF_LEN]);
    let mut sink = [0u8; 16];
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    assert!(
        matches!(s.read(&mut sink), Ok(0) | Err(_)),
        "a bad proof must be dropped"
    );
}

#[test]
fn a_program_started_without_pirun_is_a_singleton() {
    if std::env::var(SCENARIO).is_ok() {
        return; // only meaningful outside pirun
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Running::start(
        std::process::Command::new(exe)
            .args(["singleton_rank", "--exact", "--nocapture", "--ignored"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .wait(30);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("singleton ok"));
}

#[test]
#[ignore = "run by a_program_started_without_pirun_is_a_singleton in a process of its own"]
fn singleton_rank() {
    let w = pirun::init().expect("init without pirun");
    assert_eq!((w.rank(), w.size()), (0, 1));
    w.send(0, 0, &[1u8, 2, 3]).unwrap();
    assert_eq!(w.recv::<u8>(0, 0).unwrap().0, [1, 2, 3]);
    assert!(matches!(
        w.send(1, 0, &[1u8]),
        Err(Error::InvalidRank { rank: 1, size: 1 })
    ));
    println!("singleton ok");
}

#[test]
fn split_and_dup_keep_traffic_apart_even_with_collectives_in_flight_at_once() {
    let out = scenario(
        "split_and_dup_keep_traffic_apart_even_with_collectives_in_flight_at_once",
        5,
        |w| {
            use pirun::prelude::*;
            // Same tag, same peers, different communicators: never confused.
            let dup = w.dup()?;
            let peer = (w.rank() + 1) % w.size();
            let from = (w.rank() + w.size() - 1) % w.size();
            w.send(peer, 3, &[1u32])?;
            dup.send(peer, 3, &[2u32])?;
            assert_eq!(dup.recv::<u32>(from, 3)?.0, [2]);
            assert_eq!(w.recv::<u32>(from, 3)?.0, [1]);

            // Split by parity, reversed order inside each half.
            let color = (w.rank() % 2) as u32;
            let half = w
                .split(Some(color), -(w.rank() as i64))?
                .expect("every rank has a color");
            let members: Vec<usize> = (0..w.size())
                .filter(|r| r % 2 == w.rank() % 2)
                .rev()
                .collect();
            assert_eq!(half.size(), members.len());
            assert_eq!(members[half.rank()], w.rank());
            let sum = half.allreduce(&[w.rank() as u64], Sum)?;
            assert_eq!(sum[0], members.iter().map(|&r| r as u64).sum::<u64>());
            // A rank without a color joins nothing.
            let none = w.split((w.rank() != 0).then_some(7), 0)?;
            assert_eq!(none.is_none(), w.rank() == 0);

            // Two threads run collectives on two communicators at the same time.
            let (a, b) = (w.dup()?, w.dup()?);
            let size = w.size() as u64;
            std::thread::scope(|s| -> pirun::Result<()> {
                let ta = s.spawn(|| -> pirun::Result<()> {
                    for i in 0..50u64 {
                        assert_eq!(a.allreduce(&[i], Sum)?[0], i * size);
                    }
                    Ok(())
                });
                let tb = s.spawn(|| -> pirun::Result<()> {
                    for i in 0..50u64 {
                        let mut v = [if b.rank() == 1 { i + 1000 } else { 0 }];
                        b.bcast(1, &mut v)?;
                        assert_eq!(v[0], i + 1000);
                    }
                    Ok(())
                });
                ta.join().expect("thread a")?;
                tb.join().expect("thread b")
            })?;
            Ok(())
        },
    );
    assert_ok(&out);
}

#[test]
fn a_rank_that_panics_has_its_message_shown_by_pirun() {
    let out = scenario(
        "a_rank_that_panics_has_its_message_shown_by_pirun",
        3,
        |w| {
            if w.rank() == 2 {
                panic!("boom in rank two");
            }
            // The others wait for it, and are ended by pirun.
            w.recv::<u8>(2, 0)?;
            Ok(())
        },
    );
    assert_eq!(out.status.code(), Some(101));
    let err = stderr(&out);
    let report = err
        .lines()
        .find(|l| l.starts_with("pirun: rank 2"))
        .unwrap_or_default();
    assert!(
        report.contains("boom in rank two") && report.contains("p2p.rs"),
        "{err}"
    );
}

#[test]
fn thousands_of_small_messages_queued_before_the_receiver_looks_all_arrive() {
    let out = scenario(
        "thousands_of_small_messages_queued_before_the_receiver_looks_all_arrive",
        2,
        |w| {
            // More frames than one progress turn handles, all staged at once.
            const N: u64 = 5000;
            if w.rank() == 0 {
                for i in 0..N {
                    w.send(1, 5, &[i])?;
                }
                w.send::<u8>(1, 6, &[])?;
            } else {
                w.recv::<u8>(0, 6)?; // everything has arrived (same sender, in order)
                for i in 0..N {
                    assert_eq!(w.recv::<u64>(0, 5)?.0, [i]);
                }
            }
            Ok(())
        },
    );
    assert_ok(&out);
}
