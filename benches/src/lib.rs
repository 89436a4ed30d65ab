//! rvisor's benchmarks: what interception costs, per system call and per platform, against
//! native, the kernel's own floor and the field (gVisor's runsc, bubblewrap, strace -f), all
//! in one run with the modes interleaved.

pub mod cases;
pub mod field;
pub mod floor;
pub mod floor_ptrace;
pub mod goals;
pub mod gohttp;
pub mod lifecycle;
pub mod memory;
pub mod ops;
pub mod report;
pub mod scale;
pub mod stats;
pub mod suite;
pub mod workloads;

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

/// The files [`run_all`] writes.
pub const OUTPUTS: [&str; 7] = [
    "syscalls.json",
    "workloads.json",
    "startup.json",
    "scale.json",
    "goals.json",
    "syscalls.svg",
    "workloads.svg",
];

/// A progress line on stderr; a stderr that fails loses it (the run goes on).
fn progress_line(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Makes `out` (and its parents) a directory and checks that files can be created in it, so
/// that a bad `--out` fails before anything is measured, not after.
pub fn prepare_out_dir(out: &Path) -> Result<(), String> {
    let shown = out.display();
    if out.exists() && !out.is_dir() {
        return Err(format!("output directory {shown}: not a directory"));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("creating output directory {shown}: {e}"))?;
    let probe = out.join(format!(".rvisor-bench-check.{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("output directory {shown} is not writable: {e}"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn write_json(out: &Path, name: &str, doc: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())? + "\n";
    std::fs::write(out.join(name), text).map_err(|e| format!("writing {name}: {e}"))
}

/// Runs the whole suite (per call, workloads, the Go service, start-up, scale, memory, goals),
/// every figure under rvisor and under whatever of the field (runsc, bwrap, strace -f) this
/// machine has, and writes [`OUTPUTS`] under `out`; returns the tables.
pub fn run_all(
    opts: &suite::Options,
    out: &Path,
    progress: impl FnMut(&suite::Row),
) -> Result<String, String> {
    // Bad arguments fail here, before any output and before anything is measured.
    if let Some(unknown) = opts.cases.iter().find(|n| cases::find(n).is_none()) {
        return Err(suite::SuiteError::UnknownCase(unknown.clone()).to_string());
    }
    prepare_out_dir(out)?;
    let work = workloads::default_work_dir();
    // The sandbox's /tmp is its own: a probe built under a checkout in /tmp would not be
    // visible inside, so every mode runs a copy in the work directory.
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let staged = work.join("rvisor-bench-probe");
    // Replace, not overwrite: a sandbox still tearing down may have the old copy open.
    let tmp = work.join(format!("rvisor-bench-probe.{}", std::process::id()));
    std::fs::copy(&opts.probe, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &staged))
        .map_err(|e| {
            format!(
                "copying {} to {}: {e}",
                opts.probe.display(),
                staged.display()
            )
        })?;
    let opts = &suite::Options {
        probe: staged,
        ..opts.clone()
    };
    let quick = opts.quick;
    let field = field::Field::detect(&opts.rvisor, &work);
    progress_line(format_args!(
        "  field: {}",
        suite::Mode::ALL
            .iter()
            .map(|&m| match field.why_missing(m) {
                Some(why) => format!("{} (missing: {why})", m.label()),
                None => m.label().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let phase = |name: &str, t: Instant| {
        progress_line(format_args!("  {name}: {:.1} s", t.elapsed().as_secs_f64()))
    };
    let t = Instant::now();
    let result = suite::run(opts, &field, progress).map_err(|e| e.to_string());
    let suite = match result {
        Ok(s) => s,
        Err(e) => {
            field.cleanup();
            return Err(e);
        }
    };
    phase("per call", t);
    let (runs, starts, requests) = if quick { (1, 5, 1000) } else { (5, 20, 5000) };
    progress_line(format_args!(
        "  workloads ({runs} run(s) each, modes interleaved)..."
    ));
    let t = Instant::now();
    let loads = workloads::run(&field, &work, runs, quick);
    let loads = match loads {
        Ok(l) => l,
        Err(e) => {
            field.cleanup();
            return Err(e);
        }
    };
    phase("workloads", t);
    progress_line(format_args!(
        "  go net/http ({requests} requests, {} clients)...",
        gohttp::CLIENTS
    ));
    let http_runs = if quick { 1 } else { 3 };
    let http = gohttp::run(&field, &work, http_runs, requests);
    progress_line(format_args!("  start-up ({starts} runs each)..."));
    let t = Instant::now();
    let starts_r = lifecycle::run_all(&field, &work, starts);
    phase("start-up", t);
    progress_line(format_args!("  scale and memory..."));
    let t = Instant::now();
    let calls = if quick { 20_000 } else { 200_000 };
    let scaled = scale::threads(&opts.rvisor, &opts.probe, calls, if quick { 1 } else { 5 })
        .and_then(|th| Ok((th, scale::sandboxes(&opts.rvisor)?)));
    let (threads, sandboxes) = match scaled {
        Ok(v) => v,
        Err(e) => {
            field.cleanup();
            return Err(e);
        }
    };
    let (memory, memory_notes) = scale::memory(&field, if quick { 1 } else { 3 });
    phase("scale and memory", t);
    field.cleanup();
    let goals = goals::evaluate(&suite.rows, &loads, &starts_r, &threads);
    // Checked at the start; made again in case it was removed during the run.
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    write_json(
        out,
        "syscalls.json",
        &report::syscalls_doc(&suite, &field, quick),
    )?;
    write_json(
        out,
        "workloads.json",
        &report::workloads_doc(&loads, &http, quick),
    )?;
    write_json(out, "startup.json", &report::startup_doc(&starts_r, quick))?;
    write_json(
        out,
        "scale.json",
        &report::scale_doc(&threads, &sandboxes, &memory, &memory_notes, quick),
    )?;
    write_json(out, "goals.json", &report::goals_doc(&goals, quick))?;
    report::svg(&suite.rows, &out.join("syscalls.svg"))?;
    report::workloads_svg(&loads, &out.join("workloads.svg"))?;
    Ok(report::table(&suite, &field)
        + &report::workloads_table(&loads, runs)
        + &report::http_table(&http)
        + &report::startup_table(&starts_r, starts)
        + &report::scale_tables(&threads, &sandboxes, &memory, &memory_notes, &http)
        + &report::goals_table(&goals, quick))
}
