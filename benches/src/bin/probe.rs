//! `rvisor-bench-probe [--floor | --floor-ptrace] CASE:ITERATIONS...`: runs each operation
//! ITERATIONS times (after a tenth as many unrecorded), timing each with the vDSO clock, and
//! prints one JSON line per case: its percentiles and its histogram's buckets (which the driver
//! merges across rounds). With `--floor` (`--floor-ptrace`) each case runs under the minimal
//! seccomp (ptrace) supervisor; with `--threads T CASE N` T threads share the iterations and the
//! throughput is printed (`--threads T CASE N --floor`: under the minimal seccomp supervisor, with
//! as many workers as threads, up to one per CPU). `CASE ITERATIONS [--floor]` is the one-case
//! form.

use hdrhistogram::Histogram;
use rvisor_bench::stats::{Measured, Percentiles};
use rvisor_bench::{cases, floor, floor_ptrace, ops::Op};

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
    // One line per case, flushed at its newline: a driver whose probe dies later keeps it.
    println!(
        "{}",
        serde_json::to_string(&Measured {
            case: case.name.into(),
            p: Percentiles::of(&h),
            hist: Measured::buckets(&h),
        })
        .expect("json")
    );
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
    // The driver quotes the last line of stderr: make it the panic's message, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("panic");
        eprintln!("rvisor-bench-probe: {msg}");
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--threads") {
        let t: usize = args
            .get(1)
            .and_then(|t| t.parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(1);
        let case = args.get(2).and_then(|c| cases::find(c));
        let n = args.get(3).and_then(|n| n.parse().ok());
        let floor = match args.get(4).map(String::as_str) {
            None => false,
            Some("--floor") if args.len() == 5 => true,
            Some(_) => {
                eprintln!("usage: rvisor-bench-probe --threads T CASE ITERATIONS [--floor]");
                std::process::exit(2)
            }
        };
        let (Some(case), Some(n)) = (case, n) else {
            eprintln!("usage: rvisor-bench-probe --threads T CASE ITERATIONS [--floor]");
            std::process::exit(2)
        };
        if floor {
            let code =
                floor::supervise_with(case.nr, t, || threads(t, case, n)).unwrap_or_else(|e| {
                    eprintln!("floor: {e}");
                    1
                });
            std::process::exit(code);
        }
        std::process::exit(threads(t, case, n));
    }
    let usage = "usage: rvisor-bench-probe [--floor | --floor-ptrace] CASE:ITERATIONS... \
                 (or CASE ITERATIONS [--floor | --floor-ptrace])";
    let mut floor_flag = None;
    let mut words = Vec::new();
    for a in &args {
        match a.as_str() {
            "--floor" | "--floor-ptrace" => floor_flag = Some(a.as_str()),
            other if other.starts_with("--") => {
                eprintln!("unknown option {other:?}; {usage}");
                std::process::exit(2)
            }
            other => words.push(other),
        }
    }
    // The old form: CASE ITERATIONS.
    let pairs: Vec<(&str, &str)> = match words.as_slice() {
        [name, n] if !name.contains(':') => vec![(*name, *n)],
        _ => words
            .iter()
            .map(|w| w.split_once(':').unwrap_or((w, "")))
            .collect(),
    };
    if pairs.is_empty() {
        eprintln!("{usage}");
        std::process::exit(2)
    }
    let mut todo = Vec::new();
    for (name, n) in pairs {
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
        todo.push((case, iterations));
    }
    let floor_failed = |e: std::io::Error| {
        eprintln!("floor: {e}");
        1
    };
    for (case, iterations) in todo {
        let code = match floor_flag {
            Some("--floor") => {
                floor::supervise(case.nr, || measure(case, iterations)).unwrap_or_else(floor_failed)
            }
            Some(_) => floor_ptrace::supervise(case.nr, || measure(case, iterations))
                .unwrap_or_else(floor_failed),
            None => measure(case, iterations),
        };
        if code != 0 {
            std::process::exit(code)
        }
    }
}
