//! The field: which sandboxes and tracers this machine has next to rvisor (gVisor's `runsc` on
//! its ptrace platform, bubblewrap, `strace -f`), how each wraps a command, and running a
//! command with a time limit.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::suite::Mode;

/// The modes that wrap a whole program (every mode but the floors, which trap one call of the
/// probe's), in column order.
pub const PROGRAM_MODES: [Mode; 6] = [
    Mode::Native,
    Mode::RvisorSeccompNotify,
    Mode::RvisorPtrace,
    Mode::Runsc,
    Mode::Bwrap,
    Mode::Strace,
];

/// `modes` rotated left by `round`: each round of an interleaved measurement starts with the
/// next mode, so that none always runs first (or right after the heaviest).
pub fn rotated(modes: &[Mode], round: usize) -> Vec<Mode> {
    let mut v = modes.to_vec();
    if !v.is_empty() {
        let k = round % v.len();
        v.rotate_left(k);
    }
    v
}

/// bubblewrap's arguments before the command: the host's root read-only, its own /dev, /proc
/// and /tmp, every namespace unshared (the network one has only loopback).
pub const BWRAP_ARGS: [&str; 12] = [
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--tmpfs",
    "/tmp",
    "--unshare-all",
    "--die-with-parent",
    "--",
];

/// What this machine can run, and why a mode is missing.
#[derive(Debug, Clone)]
pub struct Field {
    /// The `rvisor` binary.
    pub rvisor: PathBuf,
    runsc: Option<PathBuf>,
    bwrap: Option<PathBuf>,
    strace: Option<PathBuf>,
    /// runsc's state directory (`--root`), this run's own.
    runsc_root: PathBuf,
    /// Modes that are missing here, with the reason.
    pub missing: Vec<(Mode, String)>,
}

/// `tool` on PATH (and in the sbin directories a CI PATH may lack).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The last non-empty line of `bytes`, for a note.
pub fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .chars()
        .take(160)
        .collect()
}

/// Runs `cmd` (stdin from /dev/null, stdout and stderr captured) and returns its output, or an
/// error once `limit` has passed (the child is killed; whatever it left running is its own).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    output_within_with(cmd, limit, |_| {})
}

/// [`output_within`], telling `spawned` the child's pid once it runs.
pub fn output_within_with(
    cmd: &mut Command,
    limit: Duration,
    spawned: impl FnOnce(u32),
) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    spawned(child.id());
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

impl Field {
    /// Finds and tries each tool (a `/bin/true` under it); `work` holds runsc's state.
    pub fn detect(rvisor: &Path, work: &Path) -> Field {
        let mut f = Field {
            rvisor: rvisor.to_path_buf(),
            runsc: which("runsc"),
            bwrap: which("bwrap"),
            strace: which("strace"),
            runsc_root: work.join(format!("runsc-state-{}", std::process::id())),
            missing: Vec::new(),
        };
        // SAFETY: geteuid has no arguments and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        for (mode, package) in [
            (Mode::Runsc, "runsc"),
            (Mode::Bwrap, "bubblewrap"),
            (Mode::Strace, "strace"),
        ] {
            let present = match mode {
                Mode::Runsc => f.runsc.is_some(),
                Mode::Bwrap => f.bwrap.is_some(),
                _ => f.strace.is_some(),
            };
            let why = if !present {
                Some(format!("not installed (apt-get install {package})"))
            } else if mode == Mode::Runsc && !root {
                Some("`runsc do` needs root".into())
            } else {
                match output_within(
                    &mut f.wrap(mode, "/bin/true", &[] as &[&str]),
                    Duration::from_secs(60),
                ) {
                    Ok(o) if o.status.success() => None,
                    Ok(o) => Some(format!(
                        "fails here: {} ({})",
                        last_line(&o.stderr),
                        o.status
                    )),
                    Err(e) => Some(format!("fails here: {e}")),
                }
            };
            if let Some(why) = why {
                f.missing.push((mode, why));
            }
        }
        f
    }

    /// Whether `mode` runs here.
    pub fn has(&self, mode: Mode) -> bool {
        !self.missing.iter().any(|(m, _)| *m == mode)
    }

    /// Why `mode` does not run here.
    pub fn why_missing(&self, mode: Mode) -> Option<&str> {
        self.missing
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, w)| w.as_str())
    }

    /// The program modes that run here, in column order.
    pub fn program_modes(&self) -> Vec<Mode> {
        PROGRAM_MODES.into_iter().filter(|&m| self.has(m)).collect()
    }

    /// `program args...` under `mode` (a program mode; a floor runs it natively), from `/`.
    pub fn wrap(
        &self,
        mode: Mode,
        program: impl AsRef<OsStr>,
        args: &[impl AsRef<OsStr>],
    ) -> Command {
        let tool = |p: &Option<PathBuf>, name: &str| p.clone().unwrap_or_else(|| name.into());
        let mut c = match mode {
            Mode::Native | Mode::FloorSeccompNotify | Mode::FloorPtrace => {
                Command::new(program.as_ref())
            }
            Mode::RvisorSeccompNotify | Mode::RvisorPtrace => {
                let mut c = Command::new(&self.rvisor);
                c.arg(format!(
                    "--platform={}",
                    if mode == Mode::RvisorPtrace {
                        "ptrace"
                    } else {
                        "seccomp-notify"
                    }
                ))
                .args(["do", "--"])
                .arg(program.as_ref());
                c
            }
            Mode::Runsc => {
                let mut c = Command::new(tool(&self.runsc, "runsc"));
                c.arg("--root")
                    .arg(&self.runsc_root)
                    // runsc would otherwise move its sandbox into a cgroup of its own, out of
                    // the one the memory figures are taken from; `do` sets no limits anyway.
                    .args([
                        "--ignore-cgroups",
                        "--network=none",
                        "--platform=ptrace",
                        "do",
                    ])
                    .arg(program.as_ref());
                c
            }
            Mode::Bwrap => {
                let mut c = Command::new(tool(&self.bwrap, "bwrap"));
                c.args(BWRAP_ARGS).arg(program.as_ref());
                c
            }
            Mode::Strace => {
                let mut c = Command::new(tool(&self.strace, "strace"));
                c.args(["-f", "-qq", "-o", "/dev/null", "--"])
                    .arg(program.as_ref());
                c
            }
        };
        c.args(args).current_dir("/");
        c
    }

    /// Removes runsc's state directory.
    pub fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.runsc_root);
    }
}
