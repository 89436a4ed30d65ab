//! Whole programs, wall time native vs in rvisor (each platform) and in the field (runsc, bwrap,
//! strace -f), and the geometric mean of each one's overheads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::field::{last_line, output_within, Field};
use crate::suite::Mode;

/// One workload: a shell command run in a work directory the sandbox can see.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Stable key (JSON, goals).
    pub key: &'static str,
    /// Name.
    pub name: &'static str,
    /// `sh -c` command; `$W` is the work directory.
    pub script: &'static str,
    /// Name and command with `--quick`, when the input is made smaller there.
    pub quick: Option<(&'static str, &'static str)>,
}

impl Workload {
    /// Name and command for this run.
    pub fn variant(&self, quick: bool) -> (&'static str, &'static str) {
        match self.quick {
            Some(q) if quick => q,
            _ => (self.name, self.script),
        }
    }
}

/// Every workload.
pub const WORKLOADS: [Workload; 7] = [
    Workload {
        key: "python3-pass",
        name: "python3 -c pass",
        script: "python3 -c pass",
        quick: None,
    },
    Workload {
        key: "python3-imports",
        name: "python3 imports",
        script: "python3 $W/imports.py",
        quick: None,
    },
    Workload {
        key: "find",
        name: "find /usr -xdev | wc -l",
        script: "find /usr -xdev | wc -l >/dev/null",
        quick: Some((
            "find /usr/include -xdev | wc -l",
            "find /usr/include -xdev | wc -l >/dev/null",
        )),
    },
    Workload {
        key: "tar",
        name: "tar /usr/share/doc | wc -c",
        script: "tar -cf - /usr/share/doc 2>/dev/null | wc -c >/dev/null",
        quick: Some((
            "tar /usr/include/linux | wc -c",
            "tar -cf - /usr/include/linux 2>/dev/null | wc -c >/dev/null",
        )),
    },
    Workload {
        key: "gcc",
        name: "gcc -O2 -c (400 functions)",
        script: "gcc -O2 -c $W/gen.c -o /tmp/rvisor-bench-gen.o && rm /tmp/rvisor-bench-gen.o",
        quick: Some((
            "gcc -O2 -c (50 functions)",
            "gcc -O2 -c $W/gen-quick.c -o /tmp/rvisor-bench-gen.o && rm /tmp/rvisor-bench-gen.o",
        )),
    },
    Workload {
        key: "sh-true",
        name: "sh: 200 x /bin/true",
        script: "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done",
        quick: None,
    },
    Workload {
        key: "sqlite3",
        name: "sqlite3 10k inserts",
        script: "python3 $W/sqlite.py",
        quick: None,
    },
];

/// Wall times of one workload, per mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// Workload key.
    pub key: String,
    /// Workload name (as run: `--quick` makes some inputs smaller).
    pub name: String,
    /// Median wall time per mode, ms.
    pub ms: BTreeMap<Mode, f64>,
    /// Each mode's median over native's.
    pub over_native: BTreeMap<Mode, f64>,
    /// Why a mode has no figure.
    pub notes: BTreeMap<Mode, String>,
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
    std::fs::write(dir.join("gen.c"), c)?;
    let mut c = String::from("#include <stdio.h>\n");
    for i in 0..50 {
        c.push_str(&format!(
            "int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) s += j * {i} ^ (s >> 3); return s; }}\n"
        ));
    }
    c.push_str("int main(void) { printf(\"%d\\n\", f1(10)); return 0; }\n");
    std::fs::write(dir.join("gen-quick.c"), c)
}

fn time_once(mut cmd: Command) -> Result<f64, String> {
    let t = Instant::now();
    let out = output_within(&mut cmd, Duration::from_secs(1800))?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!("{}: {}", out.status, last_line(&out.stderr)));
    }
    Ok(ms)
}

/// The median of `v` (not empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs every workload `runs` times under every program mode `field` has, interleaved: each
/// run times every mode once, in an order that rotates from run to run.
pub fn run(
    field: &Field,
    work: &Path,
    runs: usize,
    quick: bool,
) -> Result<Vec<WorkloadResult>, String> {
    prepare(work).map_err(|e| format!("preparing {}: {e}", work.display()))?;
    let modes = field.program_modes();
    let mut out = Vec::new();
    for w in WORKLOADS {
        let (name, script) = w.variant(quick);
        let mut times: BTreeMap<Mode, Vec<f64>> = BTreeMap::new();
        let mut notes: BTreeMap<Mode, String> = BTreeMap::new();
        let t = Instant::now();
        for run in 0..runs {
            let order = crate::field::rotated(&modes, run);
            for mode in order {
                if notes.contains_key(&mode) {
                    continue;
                }
                let mut cmd = field.wrap(mode, "sh", &["-c", script]);
                cmd.env("W", work);
                match time_once(cmd) {
                    Ok(ms) => times.entry(mode).or_default().push(ms),
                    Err(e) if mode.ours() => return Err(format!("{name} ({}): {e}", mode.label())),
                    Err(e) => {
                        times.remove(&mode);
                        notes.insert(mode, e);
                    }
                }
            }
        }
        let ms: BTreeMap<Mode, f64> = times.into_iter().map(|(m, v)| (m, median(v))).collect();
        let native = ms.get(&Mode::Native).copied().unwrap_or(f64::NAN);
        eprintln!("  {name}: {:.1} s", t.elapsed().as_secs_f64());
        out.push(WorkloadResult {
            key: w.key.into(),
            name: name.into(),
            over_native: ms.iter().map(|(&m, &v)| (m, v / native)).collect(),
            ms,
            notes,
        });
    }
    Ok(out)
}

/// Geometric mean of `mode`'s overheads, if it ran every workload.
pub fn geomean(results: &[WorkloadResult], mode: Mode) -> Option<f64> {
    let v: Vec<f64> = results
        .iter()
        .map(|r| r.over_native.get(&mode).copied())
        .collect::<Option<_>>()?;
    if v.is_empty() {
        return None;
    }
    Some((v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
}

/// The default work directory (under /var/tmp: the sandbox's /tmp is its own).
pub fn default_work_dir() -> PathBuf {
    PathBuf::from("/var/tmp/rvisor-bench-work")
}
