//! The bench's output: text tables, JSON documents (schemas below) and SVG charts.
//!
//! Every document has `"schema"`, `"quick"` and `"machine"` (`kernel`, `cpu`, `cpus`,
//! `memory_kib`, `rvisor`, `date_unix`). Modes are `native`, `floor-seccomp-notify`,
//! `rvisor-seccomp-notify`, `floor-ptrace`, `rvisor-ptrace`, `runsc`, `bwrap`, `strace`.
//! ```text
//! syscalls.json  rvisor-bench/syscalls/2
//!   "rounds": n, "modes": [mode measured], "missing": [{ "mode", "why" }], "notes": [str],
//!   "rows": [ { "case", "mode", "n", "p50", "p90", "p99", "p999", "max", "mean" } ],  // ns
//!   "ratios": [ { "case", "rvisor_over_native", "rvisor_over_floor", "ptrace_over_native",
//!                 "ptrace_over_floor", "runsc_over_native", "bwrap_over_native",
//!                 "strace_over_native", "rvisor_over_runsc" } ]                       // p50
//! workloads.json rvisor-bench/workloads/2
//!   "workloads": [ { "key", "name", "ms": {mode: median}, "over_native": {mode: x},
//!                    "notes": {mode: why} } ],
//!   "geomean": {mode: x},                                   // modes that ran every workload
//!   "http": { "requests", "clients", "runs", "notes": [str],
//!             "results": [ { "mode", "rps", "p50_us", "p99_us",
//!                            "memory": { "cgroup_kib", "rss_sum_kib", "processes" } } ] }
//! startup.json   rvisor-bench/startup/2
//!   "lifecycle": [ { "name", "median_ms" (null if unavailable), "note" } ]
//! scale.json     rvisor-bench/scale/3
//!   "threads": [ { "threads", "native_per_sec", "rvisor_per_sec",
//!                  "floor_per_sec" (null if the floor could not run) } ],  // trapped getppid
//!   "sandboxes": [ { "sandboxes", "wall_ms" } ],                        // `do /bin/true` at once
//!   "memory": { "accounting", "notes": [str],
//!               "results": [ { "during", "mode", "memory": { "cgroup_kib", ... } } ] }
//! goals.json     rvisor-bench/goals/2
//!   "goals": [ { "key", "goal", "op", "target", "measured", "pass", "runsc", "floor", "note" } ],
//!   "passed": n, "measured": n, "total": n
//! ```

use std::path::Path;

use plotters::prelude::*;
use serde_json::json;

use crate::cases::CASES;
use crate::field::{Field, PROGRAM_MODES};
use crate::goals::Goal;
use crate::gohttp::Http;
use crate::lifecycle::LifecycleResult;
use crate::memory::Peak;
use crate::scale::{MemoryResult, SandboxesResult, ThreadsResult};
use crate::suite::{Mode, Row, Suite};
use crate::workloads::{geomean, WorkloadResult};

fn p50(rows: &[Row], case: &str, mode: Mode) -> Option<u64> {
    rows.iter()
        .find(|r| r.case == case && r.mode == mode)
        .map(|r| r.p.p50)
}

fn ratio(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some(a? as f64 / b?.max(1) as f64)
}

/// The ratio columns of the per-call table: name, numerator, denominator.
const RATIOS: [(&str, &str, Mode, Mode); 8] = [
    (
        "rv/native",
        "rvisor_over_native",
        Mode::RvisorSeccompNotify,
        Mode::Native,
    ),
    (
        "rv/floor",
        "rvisor_over_floor",
        Mode::RvisorSeccompNotify,
        Mode::FloorSeccompNotify,
    ),
    (
        "pt/native",
        "ptrace_over_native",
        Mode::RvisorPtrace,
        Mode::Native,
    ),
    (
        "pt/floor",
        "ptrace_over_floor",
        Mode::RvisorPtrace,
        Mode::FloorPtrace,
    ),
    ("runsc/nat", "runsc_over_native", Mode::Runsc, Mode::Native),
    ("bwrap/nat", "bwrap_over_native", Mode::Bwrap, Mode::Native),
    (
        "strace/nat",
        "strace_over_native",
        Mode::Strace,
        Mode::Native,
    ),
    (
        "rv/runsc",
        "rvisor_over_runsc",
        Mode::RvisorSeccompNotify,
        Mode::Runsc,
    ),
];

/// The machine the run was on.
pub fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .ok()
        })
        .unwrap_or(0);
    json!({
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_kib": memory_kib,
        "rvisor": env!("CARGO_PKG_VERSION"),
        "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    })
}

fn header(schema: &str, quick: bool) -> serde_json::Value {
    json!({ "schema": schema, "quick": quick, "machine": machine() })
}

/// `syscalls.json`.
pub fn syscalls_doc(suite: &Suite, field: &Field, quick: bool) -> serde_json::Value {
    let rows = &suite.rows;
    let ratios: Vec<serde_json::Value> = CASES
        .iter()
        .filter(|c| rows.iter().any(|r| r.case == c.name))
        .map(|c| {
            let mut o = serde_json::Map::new();
            o.insert("case".into(), c.name.into());
            for (_, key, a, b) in RATIOS {
                o.insert(
                    key.into(),
                    json!(ratio(p50(rows, c.name, a), p50(rows, c.name, b))),
                );
            }
            o.into()
        })
        .collect();
    let mut doc = header("rvisor-bench/syscalls/2", quick);
    doc["rounds"] = json!(suite.rounds);
    doc["modes"] = json!(Mode::ALL
        .into_iter()
        .filter(|&m| field.has(m))
        .collect::<Vec<_>>());
    doc["missing"] = json!(field
        .missing
        .iter()
        .map(|(m, why)| json!({"mode": m, "why": why}))
        .collect::<Vec<_>>());
    doc["notes"] = json!(suite.notes);
    doc["rows"] = json!(rows);
    doc["ratios"] = json!(ratios);
    doc
}

/// `workloads.json`.
pub fn workloads_doc(workloads: &[WorkloadResult], http: &Http, quick: bool) -> serde_json::Value {
    let mut doc = header("rvisor-bench/workloads/2", quick);
    let geo: serde_json::Map<String, serde_json::Value> = PROGRAM_MODES
        .into_iter()
        .filter_map(|m| {
            Some((
                serde_json::to_value(m).ok()?.as_str()?.to_string(),
                json!(geomean(workloads, m)?),
            ))
        })
        .collect();
    doc["workloads"] = json!(workloads);
    doc["geomean"] = geo.into();
    doc["http"] = json!(http);
    doc
}

/// `startup.json`.
pub fn startup_doc(lifecycle: &[LifecycleResult], quick: bool) -> serde_json::Value {
    let mut doc = header("rvisor-bench/startup/2", quick);
    doc["lifecycle"] = json!(lifecycle);
    doc
}

/// `scale.json`.
pub fn scale_doc(
    threads: &[ThreadsResult],
    sandboxes: &[SandboxesResult],
    memory: &[MemoryResult],
    memory_notes: &[String],
    quick: bool,
) -> serde_json::Value {
    let mut doc = header("rvisor-bench/scale/3", quick);
    doc["threads"] = json!(threads);
    doc["sandboxes"] = json!(sandboxes);
    doc["memory"] = json!({
        "accounting": crate::memory::accounting().describe(),
        "notes": memory_notes,
        "results": memory,
    });
    doc
}

/// `goals.json`.
pub fn goals_doc(goals: &[Goal], quick: bool) -> serde_json::Value {
    let mut doc = header("rvisor-bench/goals/2", quick);
    doc["goals"] = json!(goals);
    doc["passed"] = json!(goals.iter().filter(|g| g.pass == Some(true)).count());
    doc["measured"] = json!(goals.iter().filter(|g| g.pass.is_some()).count());
    doc["total"] = json!(goals.len());
    doc
}

fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1000.0)
}

fn times(r: Option<f64>) -> String {
    r.filter(|r| r.is_finite())
        .map_or("-".into(), |r| format!("{r:.2}x"))
}

/// Why each missing mode is missing, one line each.
fn missing_lines(field: &Field, modes: &[Mode]) -> String {
    field
        .missing
        .iter()
        .filter(|(m, _)| modes.contains(m))
        .map(|(m, why)| format!("  {}: {why}\n", m.label()))
        .collect()
}

/// The per-call table: p50/p99 in µs per mode (every mode a column, `-` where it did not
/// run), then the ratios of the p50s.
pub fn table(suite: &Suite, field: &Field) -> String {
    let rows = &suite.rows;
    let mut out = format!(
        "per call, p50/p99 µs ({} rounds, modes interleaved)\n{:<16}",
        suite.rounds, "case"
    );
    for m in Mode::ALL {
        out.push_str(&format!(" {:>21}", m.label()));
    }
    for (name, ..) in RATIOS {
        out.push_str(&format!(" {name:>10}"));
    }
    out.push('\n');
    for c in CASES
        .iter()
        .filter(|c| rows.iter().any(|r| r.case == c.name))
    {
        out.push_str(&format!("{:<16}", c.name));
        for m in Mode::ALL {
            let cell = rows
                .iter()
                .find(|r| r.case == c.name && r.mode == m)
                .map_or("-".to_string(), |r| {
                    format!("{}/{}", us(r.p.p50), us(r.p.p99))
                });
            out.push_str(&format!(" {cell:>21}"));
        }
        for (_, _, a, b) in RATIOS {
            let r = ratio(p50(rows, c.name, a), p50(rows, c.name, b));
            out.push_str(&format!(
                " {:>10}",
                r.map_or("-".into(), |r| format!("{r:.1}x"))
            ));
        }
        out.push('\n');
    }
    out.push_str(&missing_lines(field, &Mode::ALL));
    for n in &suite.notes {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

/// One series of a grouped bar chart: its legend and a value per group (`None`: no bar).
type Series = (String, Vec<Option<f64>>);

/// A grouped bar chart on a log scale from `floor`.
fn bar_chart(
    path: &Path,
    title: &str,
    unit: &str,
    groups: &[&str],
    series: &[Series],
    floor: f64,
) -> Result<(), String> {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(floor * 10.0, |a, &b| a.max(b))
        * 2.0;
    let root = SVGBackend::new(path, (1200, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(150)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..groups.len() as f64, (floor..max).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(groups.len())
        .x_label_formatter(&|x| {
            groups
                .get(x.floor() as usize)
                .map_or(String::new(), |g| g.to_string())
        })
        .x_label_style(
            ("sans-serif", 12)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .y_desc(unit)
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / series.len().max(1) as f64;
    for (si, (label, values)) in series.iter().enumerate() {
        let color = Palette99::pick(si).to_rgba();
        let bars: Vec<Rectangle<(f64, f64)>> = values
            .iter()
            .enumerate()
            .filter_map(|(gi, v)| {
                let x0 = gi as f64 + 0.1 + si as f64 * width;
                Some(Rectangle::new(
                    [(x0, floor), (x0 + width, v.as_ref()?.max(floor))],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A grouped bar chart of p50 per case and mode, log scale.
pub fn svg(rows: &[Row], path: &Path) -> Result<(), String> {
    let cases: Vec<&str> = CASES
        .iter()
        .map(|c| c.name)
        .filter(|n| rows.iter().any(|r| r.case == *n))
        .collect();
    let series: Vec<Series> = Mode::ALL
        .iter()
        .filter(|&&m| rows.iter().any(|r| r.mode == m))
        .map(|&m| {
            (
                m.label().to_string(),
                cases
                    .iter()
                    .map(|c| p50(rows, c, m).map(|v| v as f64))
                    .collect(),
            )
        })
        .collect();
    bar_chart(
        path,
        "rvisor and the field: p50 latency per operation (ns, log scale)",
        "ns",
        &cases,
        &series,
        10.0,
    )
}

/// The workloads table: median ms and the ratio to native per mode, and the geometric means.
pub fn workloads_table(workloads: &[WorkloadResult], runs: usize) -> String {
    let mut out = format!(
        "\nworkloads, median ms (x native) of {runs} run(s), modes interleaved\n{:<32}",
        "workload"
    );
    for m in PROGRAM_MODES {
        out.push_str(&format!(" {:>21}", m.label()));
    }
    out.push('\n');
    let mut notes = Vec::new();
    for w in workloads {
        out.push_str(&format!("{:<32}", w.name));
        for m in PROGRAM_MODES {
            let cell = match (w.ms.get(&m), w.over_native.get(&m)) {
                (Some(ms), _) if m == Mode::Native => format!("{ms:.1}"),
                (Some(ms), Some(x)) => format!("{ms:.1} ({x:.2}x)"),
                _ => "-".into(),
            };
            out.push_str(&format!(" {cell:>21}"));
        }
        out.push('\n');
        for (m, why) in &w.notes {
            notes.push(format!("  {} under {}: {why}\n", w.name, m.label()));
        }
    }
    out.push_str(&format!("{:<32}", "geometric mean"));
    for m in PROGRAM_MODES {
        let cell = if m == Mode::Native {
            String::new()
        } else {
            times(geomean(workloads, m))
        };
        out.push_str(&format!(" {cell:>21}"));
    }
    out.push('\n');
    out.extend(notes);
    out
}

fn kib(k: Option<u64>) -> String {
    k.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// The Go network service's table.
pub fn http_table(http: &Http) -> String {
    let mut out = format!(
        "\ngo net/http on loopback: {} requests, {} client goroutines, median of {} run(s)\n{:<22} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}\n",
        http.requests, http.clients, http.runs, "mode", "req/s", "x native", "p50 µs", "p99 µs", "peak MiB", "ΣRSS MiB"
    );
    let native = http
        .results
        .iter()
        .find(|r| r.mode == Mode::Native)
        .map(|r| r.rps);
    for m in PROGRAM_MODES {
        match http.results.iter().find(|r| r.mode == m) {
            Some(r) => out.push_str(&format!(
                "{:<22} {:>10.0} {:>10} {:>10.0} {:>10.0} {:>12} {:>12}\n",
                m.label(),
                r.rps,
                times(native.map(|n| r.rps / n)),
                r.p50_us,
                r.p99_us,
                kib(r.memory.cgroup_kib),
                kib(Some(r.memory.rss_sum_kib)),
            )),
            None => out.push_str(&format!("{:<22} {:>10}\n", m.label(), "-")),
        }
    }
    for n in &http.notes {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

/// The start-up table.
pub fn startup_table(lifecycle: &[LifecycleResult], runs: usize) -> String {
    let mut out = format!("\nstart-up, median ms of {runs} runs\n");
    for l in lifecycle {
        let v = l.median_ms.map_or_else(
            || format!("- ({})", l.note.as_deref().unwrap_or("")),
            |m| format!("{m:.1}"),
        );
        out.push_str(&format!("{:<40} {v:>10}\n", l.name));
    }
    out
}

/// Native vs the sandboxes' wall time per workload.
pub fn workloads_svg(workloads: &[WorkloadResult], path: &Path) -> Result<(), String> {
    let names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
    let series: Vec<Series> = PROGRAM_MODES
        .into_iter()
        .filter(|m| workloads.iter().any(|w| w.ms.contains_key(m)))
        .map(|m| {
            (
                m.label().to_string(),
                workloads.iter().map(|w| w.ms.get(&m).copied()).collect(),
            )
        })
        .collect();
    bar_chart(
        path,
        "rvisor and the field: workload wall time (ms, log scale)",
        "ms",
        &names,
        &series,
        1.0,
    )
}

/// The scale and memory tables.
pub fn scale_tables(
    threads: &[ThreadsResult],
    sandboxes: &[SandboxesResult],
    memory: &[MemoryResult],
    memory_notes: &[String],
    http: &Http,
) -> String {
    let mut out = format!(
        "\n{:<10} {:>16} {:>16} {:>16}\n",
        "threads", "native calls/s", "floor calls/s", "rvisor calls/s"
    );
    for t in threads {
        let floor = t
            .floor_per_sec
            .map_or_else(|| "-".to_string(), |f| format!("{f:.0}"));
        out.push_str(&format!(
            "{:<10} {:>16.0} {:>16} {:>16.0}\n",
            t.threads, t.native_per_sec, floor, t.rvisor_per_sec
        ));
    }
    out.push_str(&format!(
        "\n{:<32} {:>10}\n",
        "sandboxes at once (do /bin/true)", "wall ms"
    ));
    for s in sandboxes {
        out.push_str(&format!("{:<32} {:>10.1}\n", s.sandboxes, s.wall_ms));
    }
    out.push_str(&format!(
        "\npeak memory per sandbox, MiB (peak: {}; ΣRSS: the sum of its processes' VmHWM, sampled)\n{:<22} {:>10} {:>10} {:>6} {:>14} {:>14}\n",
        crate::memory::accounting().describe(),
        "mode",
        "idle peak",
        "idle ΣRSS",
        "procs",
        "go http peak",
        "go http ΣRSS"
    ));
    for m in PROGRAM_MODES {
        let idle = memory.iter().find(|r| r.mode == m).map(|r| r.memory);
        let go = http.results.iter().find(|r| r.mode == m).map(|r| r.memory);
        let cells = |p: Option<Peak>| {
            (
                kib(p.and_then(|p| p.cgroup_kib)),
                kib(p.map(|p| p.rss_sum_kib)),
            )
        };
        let (ip, ir) = cells(idle);
        let (gp, gr) = cells(go);
        out.push_str(&format!(
            "{:<22} {ip:>10} {ir:>10} {:>6} {gp:>14} {gr:>14}\n",
            m.label(),
            idle.map_or("-".into(), |p| p.processes.to_string()),
        ));
    }
    for n in memory_notes {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

/// The goals table: each goal's measured ratio, its target and whether it passes.
pub fn goals_table(goals: &[Goal], quick: bool) -> String {
    let mut out = format!(
        "\ngoals (rvisor on seccomp-notify unless noted; one run{})\n{:<64} {:>9} {:>8} {:>6} {:>9} {:>9}\n",
        if quick {
            ", --quick: fewer iterations and smaller inputs, indicative only"
        } else {
            ""
        },
        "goal",
        "measured",
        "target",
        "",
        "runsc",
        "floor"
    );
    for g in goals {
        let result = match g.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a",
        };
        out.push_str(&format!(
            "{:<64} {:>9} {:>8} {result:>6} {:>9} {:>9}\n",
            g.goal,
            times(g.measured),
            format!("{} {:.1}x", if g.op == "<=" { "≤" } else { "≥" }, g.target),
            times(g.runsc),
            times(g.floor),
        ));
        if let Some(n) = &g.note {
            out.push_str(&format!("  ({n})\n"));
        }
    }
    out.push_str(&format!(
        "{} of {} goals pass ({} measured)\n",
        goals.iter().filter(|g| g.pass == Some(true)).count(),
        goals.len(),
        goals.iter().filter(|g| g.pass.is_some()).count()
    ));
    out
}
