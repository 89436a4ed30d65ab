//! `rvisor-bench-probe CASE ITERATIONS [--floor]`: runs one operation ITERATIONS times (after a
//! tenth as many unrecorded), timing each with the vDSO clock, and prints its percentiles as
//! JSON. With `--floor` the calls run under the minimal seccomp supervisor; with `--threads T`
//! T threads share the iterations and the throughput is printed.

use hdrhistogram::Histogram;
use rvisor_bench::{cases, floor, floor_ptrace, ops::Op, stats::Percentiles};

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is ours; CLOCK_MONOTONIC is served by the vDSO (never trapped).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn measure(case: &'static cases::Case, iterations: u64) -> i32 {
    let mut op = Op::new(case);
    for _ in 0..iterations / 10 {
        op.once();
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
    for _ in 0..iterations {
        let t = now_ns();
        op.once();
        h.saturating_record(now_ns() - t);
    }
    drop(op);
    let p = Percentiles::of(&h);
    println!("{}", serde_json::to_string(&p).expect("json"));
    0
}

/// `--threads T CASE N`: T threads share N iterations; prints the throughput.
fn threads(t: usize, case: &'static cases::Case, n: u64) -> i32 {
    let per = n / t as u64;
    let start = now_ns();
    std::thread::scope(|s| {
        for _ in 0..t {
            s.spawn(|| {
                let mut op = Op::new(case);
                for _ in 0..per {
                    op.once();
                }
            });
        }
    });
    let secs = (now_ns() - start) as f64 / 1e9;
    let calls = per * t as u64;
    println!(
        "{}",
        serde_json::json!({"threads": t, "calls": calls, "secs": secs, "per_sec": calls as f64 / secs})
    );
    0
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--threads") {
        let t: usize = args
            .get(2)
            .and_then(|t| t.parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(1);
        let case = args.get(3).and_then(|c| cases::find(c));
        let n = args.get(4).and_then(|n| n.parse().ok());
        let (Some(case), Some(n)) = (case, n) else {
            eprintln!("usage: rvisor-bench-probe --threads T CASE ITERATIONS");
            std::process::exit(2)
        };
        std::process::exit(threads(t, case, n));
    }
    args.truncate(4);
    let usage = "usage: rvisor-bench-probe CASE ITERATIONS [--floor | --floor-ptrace]";
    let (Some(name), Some(n)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2)
    };
    let Some(case) = cases::find(name) else {
        eprintln!(
            "unknown case {name:?}; cases: {}",
            cases::CASES.map(|c| c.name).join(" ")
        );
        std::process::exit(2)
    };
    let Ok(iterations) = n.parse::<u64>() else {
        eprintln!("{usage}");
        std::process::exit(2)
    };
    let floor_failed = |e: std::io::Error| {
        eprintln!("floor: {e}");
        1
    };
    let code = match args.get(3).map(String::as_str) {
        Some("--floor") => {
            floor::supervise(case.nr, || measure(case, iterations)).unwrap_or_else(floor_failed)
        }
        Some("--floor-ptrace") => floor_ptrace::supervise(case.nr, || measure(case, iterations))
            .unwrap_or_else(floor_failed),
        Some(other) => {
            eprintln!("unknown option {other:?}; {usage}");
            2
        }
        None => measure(case, iterations),
    };
    std::process::exit(code)
}
