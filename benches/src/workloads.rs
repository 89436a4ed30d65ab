//! Whole programs, wall time native vs in rvisor (each platform), and the geometric mean of the
//! overheads.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One workload: a shell command run in a work directory the sandbox can see.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Name.
    pub name: &'static str,
    /// `sh -c` command; `$W` is the work directory.
    pub script: &'static str,
}

/// Every workload.
pub const WORKLOADS: [Workload; 7] = [
    Workload {
        name: "python3 -c pass",
        script: "python3 -c pass",
    },
    Workload {
        name: "python3 imports",
        script: "python3 $W/imports.py",
    },
    Workload {
        name: "find /usr | wc -l",
        script: "find /usr -xdev | wc -l >/dev/null",
    },
    Workload {
        name: "tar /usr/share/doc | wc -c",
        script: "tar -cf - /usr/share/doc 2>/dev/null | wc -c >/dev/null",
    },
    Workload {
        name: "gcc -O2 -c",
        script: "gcc -O2 -c $W/gen.c -o /tmp/rvisor-bench-gen.o && rm /tmp/rvisor-bench-gen.o",
    },
    Workload {
        name: "sh: 200 x /bin/true",
        script: "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done",
    },
    Workload {
        name: "sqlite3 10k inserts",
        script: "python3 $W/sqlite.py",
    },
];

/// Wall times of one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// Workload name.
    pub name: String,
    /// Median native wall time, ms.
    pub native_ms: f64,
    /// Median wall time in rvisor (seccomp-notify), ms.
    pub rvisor_ms: f64,
    /// rvisor / native.
    pub overhead: f64,
    /// Median wall time in rvisor on the ptrace platform, ms.
    pub ptrace_ms: f64,
    /// rvisor (ptrace) / native.
    pub ptrace_overhead: f64,
}

const IMPORTS: &str = "import json, email.parser, http.client, xml.dom.minidom, sqlite3, decimal, \
asyncio, argparse, logging, unittest, csv, zipfile, tarfile, subprocess, urllib.request\n";

const SQLITE: &str = "import os, sqlite3\ndb = '/tmp/rvisor-bench-%d.db' % os.getpid()\nc = sqlite3.connect(db)\n\
c.execute('create table if not exists t (i integer, s text)')\n\
with c:\n    c.executemany('insert into t values (?, ?)', ((i, str(i) * 4) for i in range(10000)))\n\
c.close()\nos.remove(db)\n";

/// Writes the inputs (an import-heavy script, a sqlite script, a generated C file) under `dir`.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("imports.py"), IMPORTS)?;
    std::fs::write(dir.join("sqlite.py"), SQLITE)?;
    let mut c = String::from("#include <stdio.h>\n");
    for i in 0..400 {
        c.push_str(&format!(
            "int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) s += j * {i} ^ (s >> 3); return s; }}\n"
        ));
    }
    c.push_str("int main(void) { printf(\"%d\\n\", f1(10)); return 0; }\n");
    std::fs::write(dir.join("gen.c"), c)
}

fn time_once(mut cmd: Command) -> Result<f64, String> {
    let t = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("exited {status}"));
    }
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs every workload `runs` times natively and in rvisor.
pub fn run(rvisor: &Path, work: &Path, runs: usize) -> Result<Vec<WorkloadResult>, String> {
    prepare(work).map_err(|e| format!("preparing {}: {e}", work.display()))?;
    let mut out = Vec::new();
    for w in WORKLOADS {
        let shell = |platform: Option<&str>| {
            let mut cmd = if let Some(platform) = platform {
                let mut c = Command::new(rvisor);
                c.arg(format!("--platform={platform}"))
                    .args(["do", "--", "sh", "-c", w.script]);
                c
            } else {
                let mut c = Command::new("sh");
                c.args(["-c", w.script]);
                c
            };
            cmd.env("W", work);
            cmd
        };
        let mut times = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..runs {
            // Interleaved, so drift on the machine hits every column alike.
            for (i, platform) in [None, Some("seccomp-notify"), Some("ptrace")]
                .into_iter()
                .enumerate()
            {
                let t = time_once(shell(platform))
                    .map_err(|e| format!("{} ({}): {e}", w.name, platform.unwrap_or("native")))?;
                times[i].push(t);
            }
        }
        let [n, r, p] = times.map(median);
        out.push(WorkloadResult {
            name: w.name.into(),
            native_ms: n,
            rvisor_ms: r,
            overhead: r / n,
            ptrace_ms: p,
            ptrace_overhead: p / n,
        });
    }
    Ok(out)
}

/// Geometric mean of the overheads (seccomp-notify).
pub fn geomean(results: &[WorkloadResult]) -> f64 {
    geomean_of(results.iter().map(|r| r.overhead))
}

/// Geometric mean of the ptrace platform's overheads.
pub fn geomean_ptrace(results: &[WorkloadResult]) -> f64 {
    geomean_of(results.iter().map(|r| r.ptrace_overhead))
}

fn geomean_of(overheads: impl ExactSizeIterator<Item = f64>) -> f64 {
    let n = overheads.len().max(1) as f64;
    (overheads.map(f64::ln).sum::<f64>() / n).exp()
}

/// The default work directory (under /var/tmp: the sandbox's /tmp is its own).
pub fn default_work_dir() -> PathBuf {
    PathBuf::from("/var/tmp/rvisor-bench-work")
}
