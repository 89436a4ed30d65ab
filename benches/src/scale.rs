//! Scale: trapped-call throughput with 1..16 guest threads, sandboxes started at once, and each
//! sandbox's peak memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::field::{last_line, Field};
use crate::memory::{run_measured, Peak};
use crate::suite::Mode;
use crate::workloads::median;

/// Throughput of trapped `getppid` with `threads` guest threads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadsResult {
    /// Guest threads.
    pub threads: usize,
    /// Calls per second natively.
    pub native_per_sec: f64,
    /// Calls per second in rvisor.
    pub rvisor_per_sec: f64,
    /// Calls per second under the minimal seccomp supervisor with as many workers (up to one per
    /// CPU): what the kernel's one listener allows (`None` if it could not run here).
    pub floor_per_sec: Option<f64>,
}

/// Wall time to start and finish `sandboxes` `rvisor do /bin/true` at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxesResult {
    /// Sandboxes started together.
    pub sandboxes: usize,
    /// Until the last one exited, ms.
    pub wall_ms: f64,
}

/// Peak memory of one sandbox (all its processes) while its guest idles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryResult {
    /// What the guest was doing.
    pub during: String,
    /// The sandbox.
    pub mode: Mode,
    /// Its peaks (medians over the runs).
    pub memory: Peak,
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

/// Throughput for 1, 2, 4, 8, 16 threads, natively, under the kernel floor and in rvisor, each
/// the median of `rounds` runs (thread counts and modes interleaved, so that the ratios between
/// them hold on a noisy machine). A floor that cannot run here (no user notification) is left
/// out, not an error.
pub fn threads(
    rvisor: &Path,
    probe: &Path,
    calls: u64,
    rounds: usize,
) -> Result<Vec<ThreadsResult>, String> {
    let counts = [1usize, 2, 4, 8, 16];
    let mut native = vec![Vec::new(); counts.len()];
    let mut sandboxed = vec![Vec::new(); counts.len()];
    let mut floor = vec![Vec::new(); counts.len()];
    let mut floor_runs = true;
    for _ in 0..rounds.max(1) {
        for (i, t) in counts.into_iter().enumerate() {
            let args = [
                "--threads".to_string(),
                t.to_string(),
                "getppid".into(),
                calls.to_string(),
            ];
            native[i].push(throughput(Command::new(probe).args(&args))?);
            if floor_runs {
                match throughput(Command::new(probe).args(&args).arg("--floor")) {
                    Ok(v) => floor[i].push(v),
                    Err(_) => floor_runs = false,
                }
            }
            sandboxed[i].push(throughput(
                Command::new(rvisor)
                    .args(["do", "--"])
                    .arg(probe)
                    .args(&args),
            )?);
        }
    }
    Ok(counts
        .into_iter()
        .zip(native.into_iter().zip(sandboxed).zip(floor))
        .map(|(threads, ((n, s), f))| ThreadsResult {
            threads,
            native_per_sec: median(n),
            rvisor_per_sec: median(s),
            floor_per_sec: (floor_runs && !f.is_empty()).then(|| median(f)),
        })
        .collect())
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

/// Each sandbox's peak memory while its guest runs `sh -c 'sleep 0.3'` (median of `runs`,
/// interleaved); a note per sandbox that failed.
pub fn memory(field: &Field, runs: usize) -> (Vec<MemoryResult>, Vec<String>) {
    let during = "idle: sh -c 'sleep 0.3'";
    let modes = field.program_modes();
    let mut got: BTreeMap<Mode, Vec<Peak>> = BTreeMap::new();
    let mut notes = BTreeMap::new();
    for run in 0..runs.max(1) {
        let order = crate::field::rotated(&modes, run);
        for mode in order {
            if notes.contains_key(&mode) {
                continue;
            }
            let mut cmd = field.wrap(mode, "sh", &["-c", "sleep 0.3"]);
            match run_measured(&mut cmd, Duration::from_secs(120)) {
                Ok((o, peak)) if o.status.success() => got.entry(mode).or_default().push(peak),
                Ok((o, _)) => {
                    notes.insert(mode, format!("{}: {}", o.status, last_line(&o.stderr)));
                }
                Err(e) => {
                    notes.insert(mode, e);
                }
            }
        }
    }
    let results = got
        .into_iter()
        .filter(|(m, _)| !notes.contains_key(m))
        .map(|(mode, v)| {
            let cgroup: Vec<f64> = v
                .iter()
                .filter_map(|p| p.cgroup_kib.map(|k| k as f64))
                .collect();
            MemoryResult {
                during: during.into(),
                mode,
                memory: Peak {
                    cgroup_kib: (!cgroup.is_empty()).then(|| median(cgroup) as u64),
                    rss_sum_kib: median(v.iter().map(|p| p.rss_sum_kib as f64).collect()) as u64,
                    processes: median(v.iter().map(|p| p.processes as f64).collect()) as usize,
                },
            }
        })
        .collect();
    let notes = notes
        .into_iter()
        .map(|(m, e)| format!("memory under {}: {e}", m.label()))
        .collect();
    (results, notes)
}
