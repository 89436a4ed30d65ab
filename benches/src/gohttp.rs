//! A Go network service: `gohttp.go` (net/http server on loopback and its own client
//! goroutines in one program, standard library only), built once per bench run with Debian's
//! `go` into the work directory, then run under every program mode: requests/s and p50/p99
//! latency, and each sandbox's peak memory while it serves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::field::{last_line, output_within, which, Field};
use crate::memory::{run_measured, Peak};
use crate::suite::Mode;
use crate::workloads::median;

const SOURCE: &str = include_str!("gohttp.go");

/// Concurrent client goroutines.
pub const CLIENTS: u32 = 8;

/// One mode's figures (medians over the runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpResult {
    /// Mode.
    pub mode: Mode,
    /// Requests per second.
    pub rps: f64,
    /// Median request latency, µs.
    pub p50_us: f64,
    /// 99th percentile request latency, µs.
    pub p99_us: f64,
    /// Peak memory while serving.
    pub memory: Peak,
}

/// The whole workload's results.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Http {
    /// Requests per run.
    pub requests: u32,
    /// Client goroutines.
    pub clients: u32,
    /// Runs per mode.
    pub runs: usize,
    /// Per mode measured.
    pub results: Vec<HttpResult>,
    /// Why the workload or a mode has no figure.
    pub notes: Vec<String>,
}

/// Builds the program into `work` (GOCACHE and GOPATH there too, no network: the standard
/// library only); the binary's path. Debian's default build (cgo on where gcc is) reuses the
/// precompiled standard library: about a second.
pub fn build(work: &Path) -> Result<PathBuf, String> {
    let go = which("go").ok_or("go is not installed (apt-get install golang-go)")?;
    let dir = work.join("gohttp");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("gohttp.go"), SOURCE).map_err(|e| e.to_string())?;
    let bin = dir.join("gohttp");
    let out = output_within(
        Command::new(go)
            .args(["build", "-o"])
            .arg(&bin)
            .arg("gohttp.go")
            .current_dir(&dir)
            .env("GOCACHE", dir.join("cache"))
            .env("GOPATH", dir.join("path"))
            .env("HOME", &dir)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GO111MODULE", "on"),
        Duration::from_secs(600),
    )?;
    if !out.status.success() {
        return Err(format!("go build: {}", last_line(&out.stderr)));
    }
    Ok(bin)
}

#[derive(Deserialize)]
struct Figures {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Builds and runs the workload `runs` times per mode, interleaved.
pub fn run(field: &Field, work: &Path, runs: usize, requests: u32) -> Http {
    let mut http = Http {
        requests,
        clients: CLIENTS,
        runs,
        ..Http::default()
    };
    let t = Instant::now();
    let bin = match build(work) {
        Ok(b) => b,
        Err(e) => {
            http.notes.push(e);
            return http;
        }
    };
    eprintln!("  go build: {:.1} s", t.elapsed().as_secs_f64());
    let modes = field.program_modes();
    let mut got: BTreeMap<Mode, Vec<(Figures, Peak)>> = BTreeMap::new();
    let mut failed: BTreeMap<Mode, String> = BTreeMap::new();
    let args = [requests.to_string(), CLIENTS.to_string()];
    for run in 0..runs {
        let order = crate::field::rotated(&modes, run);
        for mode in order {
            if failed.contains_key(&mode) {
                continue;
            }
            let r = run_measured(&mut field.wrap(mode, &bin, &args), Duration::from_secs(300))
                .and_then(|(out, peak)| {
                    if !out.status.success() {
                        return Err(format!("{}: {}", out.status, last_line(&out.stderr)));
                    }
                    let text = String::from_utf8_lossy(&out.stdout);
                    let line = text
                        .lines()
                        .rev()
                        .find(|l| l.starts_with('{'))
                        .unwrap_or("");
                    let f: Figures =
                        serde_json::from_str(line).map_err(|e| format!("{e}: {line:?}"))?;
                    Ok((f, peak))
                });
            match r {
                Ok(v) => got.entry(mode).or_default().push(v),
                Err(e) => {
                    got.remove(&mode);
                    failed.insert(mode, e);
                }
            }
        }
    }
    for (mode, e) in failed {
        http.notes.push(format!("{}: {e}", mode.label()));
    }
    for (mode, v) in got {
        let pick = |f: &dyn Fn(&(Figures, Peak)) -> f64| median(v.iter().map(f).collect());
        let cgroup: Vec<f64> = v
            .iter()
            .filter_map(|(_, p)| p.cgroup_kib.map(|k| k as f64))
            .collect();
        http.results.push(HttpResult {
            mode,
            rps: pick(&|(f, _)| f.rps),
            p50_us: pick(&|(f, _)| f.p50_us),
            p99_us: pick(&|(f, _)| f.p99_us),
            memory: Peak {
                cgroup_kib: (!cgroup.is_empty()).then(|| median(cgroup) as u64),
                rss_sum_kib: pick(&|(_, p)| p.rss_sum_kib as f64) as u64,
                processes: pick(&|(_, p)| p.processes as f64) as usize,
            },
        });
    }
    eprintln!("  go net/http: {:.1} s", t.elapsed().as_secs_f64());
    http
}
