//! `rvisor bench`: per-syscall latency, native vs the kernel's floor vs rvisor vs strace.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rvisor_bench::suite;

/// Measure what interception costs: per system call p50..max for native, the kernel's floor (a
/// minimal seccomp user-notify supervisor), rvisor, and strace -f where installed; workloads'
/// wall time native vs rvisor; start-up next to bwrap, runc and crun. Prints tables and writes
/// syscalls.json, syscalls.svg and workloads.svg.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A tenth of the iterations: a smoke run in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Only this case (repeatable); `--list` shows them.
    #[arg(long = "case")]
    cases: Vec<String>,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// Where to write the results.
    #[arg(long, default_value = "target/rvisor-bench")]
    out: PathBuf,
    /// The probe binary [default: rvisor-bench-probe next to rvisor].
    #[arg(long)]
    probe: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    if args.list {
        for c in rvisor_bench::cases::CASES {
            println!("{:<20} {}", c.name, c.what);
        }
        return Ok(0);
    }
    let me = std::env::current_exe().context("locating rvisor")?;
    let dir = me.parent().map(PathBuf::from).unwrap_or_default();
    let opts = suite::Options {
        rvisor: me,
        probe: args
            .probe
            .clone()
            .unwrap_or_else(|| dir.join("rvisor-bench-probe")),
        quick: args.quick,
        cases: args.cases.clone(),
    };
    let tables = rvisor_bench::run_all(&opts, &args.out, |row| {
        eprintln!(
            "  {:<20} {:<22} p50 {:>9} ns",
            row.case,
            row.mode.label(),
            row.p.p50
        );
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    print!("{tables}");
    println!(
        "wrote syscalls.json, syscalls.svg and workloads.svg in {}",
        args.out.display()
    );
    Ok(0)
}
