//! Start-up cost: `rvisor do /bin/true` (each platform) next to native, `runsc do` and bwrap,
//! interleaved, and an OCI create+start+wait+delete of `/bin/true` next to runc and crun on
//! the same bundle.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::field::{Field, PROGRAM_MODES};
use crate::suite::Mode;

/// Median time of one start-up path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleResult {
    /// What was timed.
    pub name: String,
    /// Median, ms; `None` when the tool is missing or failed here.
    pub median_ms: Option<f64>,
    /// Why there is no figure.
    pub note: Option<String>,
}

/// Runs `cmd` to completion. Its stderr goes through a file, not a pipe: a created container
/// keeps the stdio it was created with, so reading a pipe to its end would wait for it.
fn run(cmd: &mut Command) -> Result<(), String> {
    let err_path = std::env::temp_dir().join(format!("rvisor-bench-{}.err", std::process::id()));
    let err = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    if status.success() {
        Ok(())
    } else {
        Err(text.trim().lines().last().unwrap_or("failed").to_string())
    }
}

fn median_of(runs: usize, mut once: impl FnMut() -> Result<f64, String>) -> Result<f64, String> {
    let mut v = (0..runs)
        .map(|_| once())
        .collect::<Result<Vec<f64>, String>>()?;
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

fn timed(mut cmd: Command) -> Result<f64, String> {
    let t = Instant::now();
    run(&mut cmd)?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// A busybox bundle running `/bin/true`, its config made by `rvisor spec`.
pub fn bundle(rvisor: &Path, dir: &Path) -> Result<PathBuf, String> {
    let b = dir.join("bundle");
    let bin = b.join("rootfs/bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    for d in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(b.join("rootfs").join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(crate::cases::STATIC_BINARY, bin.join("busybox")).map_err(|e| e.to_string())?;
    let _ = std::os::unix::fs::symlink("busybox", bin.join("true"));
    let _ = std::fs::remove_file(b.join("config.json"));
    run(Command::new(rvisor).args(["spec", "--bundle"]).arg(&b))?;
    let path = b.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/true"]);
    std::fs::write(&path, spec.to_string()).map_err(|e| e.to_string())?;
    Ok(b)
}

/// create, start, wait (one `state` for the pid, then its pidfd: the same for every runtime),
/// delete.
fn oci_cycle(
    runtime: &Path,
    extra: &[&str],
    root: &Path,
    bundle: &Path,
    id: &str,
) -> Result<f64, String> {
    let cmd = |args: &[&str]| {
        let mut c = Command::new(runtime);
        c.args(extra)
            .arg("--root")
            .arg(root)
            .args(args)
            .current_dir(bundle);
        c
    };
    let t = Instant::now();
    run(&mut cmd(&[
        "create",
        "--bundle",
        &bundle.display().to_string(),
        id,
    ]))?;
    run(&mut cmd(&["start", id]))?;
    let out = cmd(&["state", id]).output().map_err(|e| e.to_string())?;
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if let Some(pid) = state["pid"]
        .as_i64()
        .filter(|_| state["status"] != "stopped")
    {
        // SAFETY: pidfd_open takes integers; a valid fd is ours alone.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: the kernel just returned this fd.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd of ours.
            unsafe { libc::poll(&mut p, 1, -1) };
        }
    }
    run(&mut cmd(&["delete", id]))?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// The name of `mode`'s `/bin/true` start-up row.
pub fn do_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Native | Mode::FloorSeccompNotify | Mode::FloorPtrace => "native /bin/true",
        Mode::RvisorSeccompNotify => "rvisor do /bin/true",
        Mode::RvisorPtrace => "rvisor --platform=ptrace do /bin/true",
        Mode::Runsc => "runsc do /bin/true",
        Mode::Bwrap => "bwrap /bin/true",
        Mode::Strace => "strace -f /bin/true",
    }
}

/// Times every path `runs` times: `/bin/true` under every program mode (but strace)
/// interleaved, then each runtime's OCI cycle.
pub fn run_all(field: &Field, work: &Path, runs: usize) -> Vec<LifecycleResult> {
    let rvisor = field.rvisor.as_path();
    let mut out = Vec::new();
    let mut push = |name: &str, r: Result<f64, String>| {
        out.push(match r {
            Ok(ms) => LifecycleResult {
                name: name.into(),
                median_ms: Some(ms),
                note: None,
            },
            Err(e) => LifecycleResult {
                name: name.into(),
                median_ms: None,
                note: Some(e),
            },
        })
    };
    let modes: Vec<Mode> = PROGRAM_MODES
        .into_iter()
        .filter(|&m| m != Mode::Strace)
        .collect();
    let mut times: BTreeMap<Mode, Result<Vec<f64>, String>> = modes
        .iter()
        .map(|&m| {
            let r = match field.why_missing(m) {
                Some(why) => Err(why.to_string()),
                None => Ok(Vec::new()),
            };
            (m, r)
        })
        .collect();
    for run in 0..runs.max(1) {
        let order = crate::field::rotated(&modes, run);
        for mode in order {
            if let Some(Ok(v)) = times.get_mut(&mode) {
                match timed(field.wrap(mode, "/bin/true", &[] as &[&str])) {
                    Ok(ms) => v.push(ms),
                    Err(e) => {
                        times.insert(mode, Err(e));
                    }
                }
            }
        }
    }
    for (mode, r) in times {
        push(do_name(mode), r.map(crate::workloads::median));
    }
    let bundle = match bundle(rvisor, work) {
        Ok(b) => b,
        Err(e) => {
            push("oci cycle", Err(format!("bundle: {e}")));
            return out;
        }
    };
    let mut n = 0;
    for (name, tool, extra) in [
        (
            "rvisor create+start+wait+delete",
            Some(rvisor.to_path_buf()),
            &[][..],
        ),
        (
            "runc create+start+wait+delete",
            crate::field::which("runc"),
            &[][..],
        ),
        (
            "crun create+start+wait+delete",
            crate::field::which("crun"),
            &[][..],
        ),
    ] {
        let Some(tool) = tool else {
            push(name, Err("not installed".into()));
            continue;
        };
        // A state root of this run's own: another bench at the same time, or one that was
        // killed, must not collide with it.
        let root = work.join(format!(
            "state-{}-{}",
            tool.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        push(
            name,
            median_of(runs, || {
                n += 1;
                oci_cycle(&tool, extra, &root, &bundle, &format!("bench{n}"))
            }),
        );
        let _ = std::fs::remove_dir_all(&root);
    }
    out
}
