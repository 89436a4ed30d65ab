//! Running the per-syscall suite: every case under every mode, from one process, so that the
//! ratios come from the same run. The iterations are split into rounds; each round runs every
//! mode once (one probe process per mode, all cases in it), the modes' order rotating from
//! round to round, and each case's histograms are merged across rounds: noise on a shared
//! machine lands on every column alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cases::{fresh_name, Case, CASES, FRESH_DIR};
use crate::field::{last_line, output_within, Field};
use crate::stats::{Measured, Merged, Percentiles};

/// How a case is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Directly.
    Native,
    /// Under the minimal seccomp user-notify supervisor (the kernel's floor).
    FloorSeccompNotify,
    /// In `rvisor do` on the seccomp-notify platform.
    RvisorSeccompNotify,
    /// Under the minimal tracer (SECCOMP_RET_TRACE, continue): the ptrace floor.
    FloorPtrace,
    /// In `rvisor --platform=ptrace do`.
    RvisorPtrace,
    /// In gVisor: `runsc --network=none --platform=ptrace do`.
    Runsc,
    /// In bubblewrap (namespaces only, no interception).
    Bwrap,
    /// Under `strace -f`.
    Strace,
}

impl Mode {
    /// Every mode, in column order.
    pub const ALL: [Mode; 8] = [
        Mode::Native,
        Mode::FloorSeccompNotify,
        Mode::RvisorSeccompNotify,
        Mode::FloorPtrace,
        Mode::RvisorPtrace,
        Mode::Runsc,
        Mode::Bwrap,
        Mode::Strace,
    ];

    /// Column name.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::FloorSeccompNotify => "floor:seccomp-notify",
            Mode::RvisorSeccompNotify => "rvisor:seccomp-notify",
            Mode::FloorPtrace => "floor:ptrace",
            Mode::RvisorPtrace => "rvisor:ptrace",
            Mode::Runsc => "runsc:ptrace",
            Mode::Bwrap => "bwrap",
            Mode::Strace => "strace -f",
        }
    }

    /// Whether the mode is one of ours (its failure fails the bench; another tool's is a note).
    pub fn ours(self) -> bool {
        !matches!(self, Mode::Runsc | Mode::Bwrap | Mode::Strace)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `rvisor` binary.
    pub rvisor: PathBuf,
    /// The `rvisor-bench-probe` binary.
    pub probe: PathBuf,
    /// A tenth of the iterations (at least 100).
    pub quick: bool,
    /// Only these cases (all when empty).
    pub cases: Vec<String>,
}

/// One measured series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Case name.
    pub case: String,
    /// Mode.
    pub mode: Mode,
    /// Percentiles, ns.
    #[serde(flatten)]
    pub p: Percentiles,
}

/// Errors running the suite.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A binary is missing.
    #[error("{0} not found: build it first (cargo build --release --workspace)")]
    Missing(PathBuf),
    /// A case name is unknown.
    #[error("unknown case {0:?}")]
    UnknownCase(String),
    /// A probe run failed.
    #[error("{case} ({mode}): {message}")]
    Probe {
        /// Case.
        case: String,
        /// Mode.
        mode: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Rounds the iterations are split into, every mode once per round (rotated), so that drift on
/// the machine hits every column alike.
pub fn rounds(quick: bool) -> usize {
    if quick {
        2
    } else {
        5
    }
}

/// Iterations of `case` in the whole run (a quick run does a tenth, at least 100).
pub fn iterations(case: &Case, quick: bool) -> u64 {
    if quick {
        (case.iterations / 10).max(100)
    } else {
        case.iterations
    }
}

/// Iterations of `case` in one round's run.
pub fn per_round(case: &Case, quick: bool) -> u64 {
    iterations(case, quick).div_ceil(rounds(quick) as u64)
}

fn check_exists(p: &Path) -> Result<(), SuiteError> {
    if p.is_file() {
        Ok(())
    } else {
        Err(SuiteError::Missing(p.to_path_buf()))
    }
}

/// Creates the files `open_close_new` opens (`count` of them; those already there stay).
pub fn prepare_fresh(count: u64) -> std::io::Result<()> {
    let dir = Path::new(FRESH_DIR);
    std::fs::create_dir_all(dir)?;
    for i in 0..count {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(fresh_name(i)))
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The per-call results: a row per case and mode measured, and a note per one that was not.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    /// Rows, case by case in table order, modes in column order.
    pub rows: Vec<Row>,
    /// Why a case has no figure under a mode (another tool that failed it).
    pub notes: Vec<String>,
    /// Rounds run.
    pub rounds: usize,
}

/// One run of the probe: `cases` (each `per_round` iterations) under `mode`. Returns what it
/// measured, in order, and how it failed if it did (the first case not reported is the one).
fn run_batch(
    opts: &Options,
    field: &Field,
    mode: Mode,
    cases: &[&'static Case],
) -> (Vec<Measured>, Option<String>) {
    let args: Vec<String> = cases
        .iter()
        .map(|c| format!("{}:{}", c.name, per_round(c, opts.quick)))
        .collect();
    let mut cmd = match mode {
        Mode::FloorSeccompNotify | Mode::FloorPtrace => {
            let mut c = Command::new(&opts.probe);
            c.arg(if mode == Mode::FloorPtrace {
                "--floor-ptrace"
            } else {
                "--floor"
            })
            .args(&args)
            .current_dir("/");
            c
        }
        _ => field.wrap(mode, &opts.probe, &args),
    };
    let limit = Duration::from_secs(if opts.quick { 300 } else { 1800 });
    let out = match output_within(&mut cmd, limit) {
        Ok(o) => o,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut got = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // A sandbox may print its own lines; the probe's are JSON objects.
        if let Ok(m) = serde_json::from_str::<Measured>(line) {
            got.push(m);
        }
    }
    let failure = if !out.status.success() {
        Some(format!("{}: {}", out.status, last_line(&out.stderr)))
    } else if got.len() < cases.len() {
        Some(format!(
            "the probe reported {} of {} cases: {}",
            got.len(),
            cases.len(),
            last_line(&out.stderr)
        ))
    } else {
        None
    };
    (got, failure)
}

/// Runs every selected case under every mode `field` has, the iterations split into rounds;
/// `progress` hears about each row.
pub fn run(
    opts: &Options,
    field: &Field,
    mut progress: impl FnMut(&Row),
) -> Result<Suite, SuiteError> {
    check_exists(&opts.rvisor)?;
    check_exists(&opts.probe)?;
    let selected: Vec<&'static Case> = if opts.cases.is_empty() {
        CASES.iter().collect()
    } else {
        opts.cases
            .iter()
            .map(|n| crate::cases::find(n).ok_or_else(|| SuiteError::UnknownCase(n.clone())))
            .collect::<Result<_, _>>()?
    };
    if let Some(c) = selected.iter().find(|c| c.name == "open_close_new") {
        // Warm-up and measured iterations each open a file of their own.
        let n = per_round(c, opts.quick);
        prepare_fresh(n + n / 10 + 1).map_err(|e| SuiteError::Probe {
            case: c.name.into(),
            mode: "setup",
            message: format!("creating files in {FRESH_DIR}: {e}"),
        })?;
    }
    let modes: Vec<Mode> = Mode::ALL.into_iter().filter(|&m| field.has(m)).collect();
    let rounds = rounds(opts.quick);
    let mut merged: BTreeMap<(usize, Mode), Merged> = BTreeMap::new();
    let mut failed: BTreeMap<(usize, Mode), String> = BTreeMap::new();
    let index = |name: &str| selected.iter().position(|c| c.name == name);
    for round in 0..rounds {
        let order = crate::field::rotated(&modes, round);
        let t = Instant::now();
        for &mode in &order {
            let mut todo: Vec<&'static Case> = selected
                .iter()
                .copied()
                .enumerate()
                .filter(|(i, _)| !failed.contains_key(&(*i, mode)))
                .map(|(_, c)| c)
                .collect();
            while !todo.is_empty() {
                let (got, failure) = run_batch(opts, field, mode, &todo);
                for m in &got {
                    if let Some(i) = index(&m.case) {
                        merged.entry((i, mode)).or_default().add(&m.hist);
                    }
                }
                todo.drain(..got.len().min(todo.len()));
                let Some(message) = failure else { break };
                let Some(case) = todo.first().copied() else {
                    break;
                };
                if mode.ours() {
                    return Err(SuiteError::Probe {
                        case: case.name.into(),
                        mode: mode.label(),
                        message,
                    });
                }
                if let Some(i) = index(case.name) {
                    failed.insert((i, mode), message);
                }
                todo.remove(0);
            }
        }
        eprintln!(
            "  per-call round {}/{rounds}: {} modes in {:.1} s",
            round + 1,
            order.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let mut suite = Suite {
        rounds,
        ..Suite::default()
    };
    for (i, case) in selected.iter().enumerate() {
        for &mode in &modes {
            if let Some(message) = failed.get(&(i, mode)) {
                suite
                    .notes
                    .push(format!("{} under {}: {message}", case.name, mode.label()));
                continue;
            }
            if let Some(h) = merged.get(&(i, mode)).filter(|h| !h.is_empty()) {
                let row = Row {
                    case: case.name.into(),
                    mode,
                    p: h.percentiles(),
                };
                progress(&row);
                suite.rows.push(row);
            }
        }
    }
    Ok(suite)
}
