//! rvisor's benchmarks: what interception costs, per system call and per platform, against
//! native and against the kernel's own floor.

pub mod cases;
pub mod floor;
pub mod floor_ptrace;
pub mod lifecycle;
pub mod ops;
pub mod report;
pub mod scale;
pub mod stats;
pub mod suite;
pub mod workloads;

use std::path::Path;

/// Runs the whole suite and writes `syscalls.json`, `syscalls.svg` and `workloads.svg` under
/// `out`; returns the tables.
pub fn run_all(
    opts: &suite::Options,
    out: &Path,
    progress: impl FnMut(&suite::Row),
) -> Result<String, String> {
    let modes = suite::modes();
    let work = workloads::default_work_dir();
    // The sandbox's /tmp is its own: a probe built under a checkout in /tmp would not be
    // visible inside, so every mode runs a copy in the work directory.
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let staged = work.join("rvisor-bench-probe");
    std::fs::copy(&opts.probe, &staged).map_err(|e| {
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
    let rows = suite::run(opts, progress).map_err(|e| e.to_string())?;
    let (runs, starts) = if opts.quick { (1, 5) } else { (5, 20) };
    eprintln!("  workloads ({runs} run(s) each)...");
    let loads = workloads::run(&opts.rvisor, &work, runs)?;
    eprintln!("  start-up ({starts} runs each)...");
    let starts = lifecycle::run_all(&opts.rvisor, &work, starts);
    eprintln!("  scale and memory...");
    let calls = if opts.quick { 20_000 } else { 200_000 };
    let threads = scale::threads(&opts.rvisor, &opts.probe, calls)?;
    let sandboxes = scale::sandboxes(&opts.rvisor)?;
    let memory = scale::memory(&opts.rvisor)?;
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let mut doc = report::document(&rows, &loads, &starts, opts.quick);
    doc["threads"] = serde_json::json!(threads);
    doc["sandboxes"] = serde_json::json!(sandboxes);
    doc["memory"] = serde_json::json!(memory);
    let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
    std::fs::write(out.join("syscalls.json"), json)
        .map_err(|e| format!("writing syscalls.json: {e}"))?;
    report::svg(&rows, &modes, &out.join("syscalls.svg"))?;
    report::workloads_svg(&loads, &out.join("workloads.svg"))?;
    Ok(report::table(&rows, &modes)
        + &report::other_tables(&loads, &starts)
        + &report::scale_tables(&threads, &sandboxes, &memory))
}
