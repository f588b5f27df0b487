//! The four server patterns of `uvio::server`, each on every engine, against a tokio multi-thread server (the
//! way tokio users spread connections: one listener, tasks on a work-stealing pool), same machine, same run.
//!
//! `cargo bench --bench patterns -- [D] [R]` (defaults: 2 s per cell, 3 rounds): every server serves on two
//! threads, and one client thread (uvio on its default engine) drives two workloads against it:
//! - **keepalive**: 100 connections, each a loop of 64-byte request/response round trips;
//! - **connect**: 50 tasks, each a loop of connect, one 64-byte round trip, close: the accept path and the
//!   spreading of new connections dominate.
//!
//! Reported per cell: the median round trips (or connections) per second over R rounds (servers take turns
//! within a round), the whole process's CPU time per operation (server and client share it, so compare rows,
//! not absolute values), and how evenly the two workers shared the connections (the smaller worker's share;
//! 50% is even). Every echoed byte is checked. The client shares the machine's cores with the server: on a
//! two-core machine this measures per-operation costs and balance more than scaling.
#![allow(clippy::unwrap_used)]

#[path = "patterns/measure.rs"]
mod measure;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.is_empty() && std::env::args().len() == 1 {
        println!("patterns: run with `cargo bench --bench patterns -- [seconds per cell] [rounds]`");
        return;
    }
    let secs: f64 = args.first().map_or(2.0, |s| s.parse().unwrap());
    let rounds: usize = args.get(1).map_or(3, |s| s.parse().unwrap());
    measure::run(secs, rounds);
}
