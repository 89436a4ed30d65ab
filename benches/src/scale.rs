//! Scale: trapped-call throughput with 1..16 guest threads, sandboxes started at once, and the
//! memory the sentry and gofer hold.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Throughput of trapped `getppid` with `threads` guest threads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadsResult {
    /// Guest threads.
    pub threads: usize,
    /// Calls per second natively.
    pub native_per_sec: f64,
    /// Calls per second in rvisor.
    pub rvisor_per_sec: f64,
}

/// Wall time to start and finish `sandboxes` `rvisor do /bin/true` at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxesResult {
    /// Sandboxes started together.
    pub sandboxes: usize,
    /// Until the last one exited, ms.
    pub wall_ms: f64,
}

/// Resident memory of the sandbox's own processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryResult {
    /// What the guest was doing.
    pub during: String,
    /// Sentry's peak VmRSS sampled, KiB.
    pub sentry_kib: u64,
    /// Gofer's peak VmRSS sampled, KiB.
    pub gofer_kib: u64,
}

fn throughput(cmd: &mut Command) -> Result<f64, String> {
    let out = cmd
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    v["per_sec"].as_f64().ok_or_else(|| "no per_sec".into())
}

/// Throughput for 1, 2, 4, 8, 16 threads.
pub fn threads(rvisor: &Path, probe: &Path, calls: u64) -> Result<Vec<ThreadsResult>, String> {
    let mut out = Vec::new();
    for t in [1usize, 2, 4, 8, 16] {
        let args = [
            "--threads".to_string(),
            t.to_string(),
            "getppid".into(),
            calls.to_string(),
        ];
        let native = throughput(Command::new(probe).args(&args))?;
        let sandboxed = throughput(
            Command::new(rvisor)
                .args(["do", "--"])
                .arg(probe)
                .args(&args),
        )?;
        out.push(ThreadsResult {
            threads: t,
            native_per_sec: native,
            rvisor_per_sec: sandboxed,
        });
    }
    Ok(out)
}

/// Wall time for 1, 2, 4, 8, 16, 32 sandboxes started at once.
pub fn sandboxes(rvisor: &Path) -> Result<Vec<SandboxesResult>, String> {
    let mut out = Vec::new();
    for k in [1usize, 2, 4, 8, 16, 32] {
        let t = Instant::now();
        let children = (0..k)
            .map(|_| {
                Command::new(rvisor)
                    .args(["do", "--", "/bin/true"])
                    .current_dir("/")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        for mut c in children {
            let status = c.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("{k} sandboxes at once: one exited {status}"));
            }
        }
        out.push(SandboxesResult {
            sandboxes: k,
            wall_ms: t.elapsed().as_secs_f64() * 1000.0,
        });
    }
    Ok(out)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .trim()
                    .trim_end_matches(" kB")
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Peak RSS of the sentry (the runtime's child) and the gofer (the sentry's child) while the
/// guest runs `script`.
fn sample(rvisor: &Path, during: &str, script: &str) -> Result<MemoryResult, String> {
    let mut child = Command::new(rvisor)
        .args(["do", "--", "sh", "-c", script])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (mut sentry_kib, mut gofer_kib) = (0, 0);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if let Some(sentry) = first_child(child.id()) {
            sentry_kib = sentry_kib.max(rss_kib(sentry));
            if let Some(gofer) = first_child(sentry) {
                gofer_kib = gofer_kib.max(rss_kib(gofer));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(MemoryResult {
        during: during.into(),
        sentry_kib,
        gofer_kib,
    })
}

/// Idle, and during `find /usr`.
pub fn memory(rvisor: &Path) -> Result<Vec<MemoryResult>, String> {
    Ok(vec![
        sample(rvisor, "idle (sleep 1)", "sleep 1")?,
        sample(rvisor, "find /usr -xdev", "find /usr -xdev >/dev/null")?,
    ])
}
