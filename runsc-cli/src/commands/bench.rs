//! `rvisor bench`: rvisor against native, the kernel's floor and the field (runsc, bwrap,
//! strace -f), per system call and per workload, in one interleaved run, and the goals table.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rvisor_bench::suite;

use crate::output;

/// Measure what interception costs, next to the field: per system call p50..max for native, the
/// kernel's floors (minimal seccomp user-notify and ptrace supervisors), rvisor on each
/// platform, and, where installed, gVisor's runsc (ptrace platform, as root), bwrap and
/// strace -f, the modes interleaved round by round; workloads' wall time and a Go net/http
/// service (requests/s, p50/p99) under each; start-up next to runsc, bwrap, runc and crun;
/// guest-thread scaling; peak memory per sandbox; and the goals table (each goal's measured
/// ratio, PASS or FAIL). Prints tables and writes syscalls.json, workloads.json, startup.json,
/// scale.json, goals.json, syscalls.svg and workloads.svg.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A tenth of the iterations, two rounds, single runs and smaller workload inputs: a smoke
    /// run of about a minute.
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
        output::stdout(|out| {
            for c in rvisor_bench::cases::CASES {
                writeln!(out, "{:<20} {}", c.name, c.what)?;
            }
            Ok(())
        })?;
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
        output::eprint_line(format_args!(
            "  {:<20} {:<22} p50 {:>9} ns",
            row.case,
            row.mode.label(),
            row.p.p50
        ));
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    output::stdout(|out| {
        write!(out, "{tables}")?;
        writeln!(
            out,
            "wrote {} in {}",
            rvisor_bench::OUTPUTS.join(", "),
            args.out.display()
        )
    })?;
    Ok(0)
}
