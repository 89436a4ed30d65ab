//! Running the per-syscall suite: every case under every mode, from one process, so that the
//! ratios come from the same run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::cases::{Case, CASES};
use crate::stats::Percentiles;

/// How a case is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Under `strace -f`.
    Strace,
}

impl Mode {
    /// Column name.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::FloorSeccompNotify => "floor:seccomp-notify",
            Mode::RvisorSeccompNotify => "rvisor:seccomp-notify",
            Mode::FloorPtrace => "floor:ptrace",
            Mode::RvisorPtrace => "rvisor:ptrace",
            Mode::Strace => "strace -f",
        }
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

/// Whether `strace` is installed.
pub fn have_strace() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("strace").is_file()))
}

fn iterations(case: &Case, quick: bool) -> u64 {
    if quick {
        (case.iterations / 10).max(100)
    } else {
        case.iterations
    }
}

fn probe_command(opts: &Options, mode: Mode, case: &Case, n: u64) -> Command {
    let n = n.to_string();
    let mut cmd = match mode {
        Mode::Native => Command::new(&opts.probe),
        Mode::FloorSeccompNotify | Mode::FloorPtrace => {
            let flag = if mode == Mode::FloorPtrace {
                "--floor-ptrace"
            } else {
                "--floor"
            };
            let mut c = Command::new(&opts.probe);
            c.args([case.name, &n, flag]);
            return c;
        }
        Mode::RvisorSeccompNotify | Mode::RvisorPtrace => {
            let platform = if mode == Mode::RvisorPtrace {
                "ptrace"
            } else {
                "seccomp-notify"
            };
            let mut c = Command::new(&opts.rvisor);
            c.arg(format!("--platform={platform}"))
                .args(["do", "--"])
                .arg(&opts.probe);
            c
        }
        Mode::Strace => {
            let mut c = Command::new("strace");
            c.args(["-f", "-qq", "-o", "/dev/null"]).arg(&opts.probe);
            c
        }
    };
    cmd.args([case.name, &n]);
    cmd
}

fn run_one(opts: &Options, mode: Mode, case: &Case) -> Result<Row, SuiteError> {
    let fail = |message: String| SuiteError::Probe {
        case: case.name.into(),
        mode: mode.label(),
        message,
    };
    let out = probe_command(opts, mode, case, iterations(case, opts.quick))
        .current_dir("/")
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let p: Percentiles = serde_json::from_str(line).map_err(|e| fail(format!("{e}: {line:?}")))?;
    Ok(Row {
        case: case.name.into(),
        mode,
        p,
    })
}

/// The modes this machine can run.
pub fn modes() -> Vec<Mode> {
    let mut m = vec![
        Mode::Native,
        Mode::FloorSeccompNotify,
        Mode::RvisorSeccompNotify,
        Mode::FloorPtrace,
        Mode::RvisorPtrace,
    ];
    if have_strace() {
        m.push(Mode::Strace);
    }
    m
}

fn check_exists(p: &Path) -> Result<(), SuiteError> {
    if p.is_file() {
        Ok(())
    } else {
        Err(SuiteError::Missing(p.to_path_buf()))
    }
}

/// Runs every selected case under every mode; `progress` hears about each row.
pub fn run(opts: &Options, mut progress: impl FnMut(&Row)) -> Result<Vec<Row>, SuiteError> {
    check_exists(&opts.rvisor)?;
    check_exists(&opts.probe)?;
    let selected: Vec<&Case> = if opts.cases.is_empty() {
        CASES.iter().collect()
    } else {
        opts.cases
            .iter()
            .map(|n| crate::cases::find(n).ok_or_else(|| SuiteError::UnknownCase(n.clone())))
            .collect::<Result<_, _>>()?
    };
    let mut rows = Vec::new();
    for case in selected {
        for mode in modes() {
            let row = run_one(opts, mode, case)?;
            progress(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}
