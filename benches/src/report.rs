//! The suite's output: a table, a JSON document (schema below) and an SVG chart.
//!
//! JSON schema `rvisor-bench/syscalls/1`:
//! ```text
//! { "schema": "rvisor-bench/syscalls/1", "quick": bool,
//!   "machine": { "kernel", "cpu", "cpus", "memory_kib", "rvisor", "date_unix" },
//!   "rows": [ { "case", "mode", "n", "p50", "p90", "p99", "p999", "max", "mean" } ],  // ns
//!   "ratios": [ { "case", "rvisor_over_native", "rvisor_over_floor",                 // p50
//!                 "ptrace_over_native", "ptrace_over_floor" } ],  // rvisor:ptrace, its floor
//!   "workloads": [ { "name", "native_ms", "rvisor_ms", "overhead",                    // medians
//!                    "ptrace_ms", "ptrace_overhead" } ],
//!   "geomean_overhead": f64, "geomean_overhead_ptrace": f64,
//!   "lifecycle": [ { "name", "median_ms" (null if unavailable), "note" } ],
//!   "threads": [ { "threads", "native_per_sec", "rvisor_per_sec" } ],   // trapped getppid
//!   "sandboxes": [ { "sandboxes", "wall_ms" } ],                        // `do /bin/true` at once
//!   "memory": [ { "during", "sentry_kib", "gofer_kib" } ]               // peak VmRSS sampled
//! }
//! ```

use std::path::Path;

use plotters::prelude::*;
use serde_json::json;

use crate::cases::CASES;
use crate::lifecycle::LifecycleResult;
use crate::suite::{Mode, Row};
use crate::workloads::WorkloadResult;

fn p50(rows: &[Row], case: &str, mode: Mode) -> Option<u64> {
    rows.iter()
        .find(|r| r.case == case && r.mode == mode)
        .map(|r| r.p.p50)
}

fn ratio(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some(a? as f64 / b?.max(1) as f64)
}

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

/// The JSON document.
pub fn document(
    rows: &[Row],
    workloads: &[WorkloadResult],
    lifecycle: &[LifecycleResult],
    quick: bool,
) -> serde_json::Value {
    let ratios: Vec<serde_json::Value> = CASES
        .iter()
        .filter(|c| rows.iter().any(|r| r.case == c.name))
        .map(|c| {
            let rv = p50(rows, c.name, Mode::RvisorSeccompNotify);
            let pt = p50(rows, c.name, Mode::RvisorPtrace);
            let native = p50(rows, c.name, Mode::Native);
            json!({
                "case": c.name,
                "rvisor_over_native": ratio(rv, native),
                "rvisor_over_floor": ratio(rv, p50(rows, c.name, Mode::FloorSeccompNotify)),
                "ptrace_over_native": ratio(pt, native),
                "ptrace_over_floor": ratio(pt, p50(rows, c.name, Mode::FloorPtrace)),
            })
        })
        .collect();
    json!({
        "schema": "rvisor-bench/syscalls/1",
        "quick": quick,
        "machine": machine(),
        "rows": rows,
        "ratios": ratios,
        "workloads": workloads,
        "geomean_overhead": crate::workloads::geomean(workloads),
        "geomean_overhead_ptrace": crate::workloads::geomean_ptrace(workloads),
        "lifecycle": lifecycle,
    })
}

fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1000.0)
}

/// The table: p50/p99 in µs per mode, and the ratios.
pub fn table(rows: &[Row], modes: &[Mode]) -> String {
    let mut out = format!("{:<20}", "case (p50/p99 µs)");
    for m in modes {
        out.push_str(&format!(" {:>22}", m.label()));
    }
    out.push_str(&format!(
        " {:>10} {:>10} {:>10} {:>10}\n",
        "rv/native", "rv/floor", "pt/native", "pt/floor"
    ));
    for c in CASES
        .iter()
        .filter(|c| rows.iter().any(|r| r.case == c.name))
    {
        out.push_str(&format!("{:<20}", c.name));
        for &m in modes {
            let cell = rows
                .iter()
                .find(|r| r.case == c.name && r.mode == m)
                .map_or("-".to_string(), |r| {
                    format!("{}/{}", us(r.p.p50), us(r.p.p99))
                });
            out.push_str(&format!(" {cell:>22}"));
        }
        let rv = p50(rows, c.name, Mode::RvisorSeccompNotify);
        let pt = p50(rows, c.name, Mode::RvisorPtrace);
        let native = p50(rows, c.name, Mode::Native);
        let fmt = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.1}x"));
        out.push_str(&format!(
            " {:>10} {:>10} {:>10} {:>10}\n",
            fmt(ratio(rv, native)),
            fmt(ratio(rv, p50(rows, c.name, Mode::FloorSeccompNotify))),
            fmt(ratio(pt, native)),
            fmt(ratio(pt, p50(rows, c.name, Mode::FloorPtrace)))
        ));
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
pub fn svg(rows: &[Row], modes: &[Mode], path: &Path) -> Result<(), String> {
    let cases: Vec<&str> = CASES
        .iter()
        .map(|c| c.name)
        .filter(|n| rows.iter().any(|r| r.case == *n))
        .collect();
    let series: Vec<Series> = modes
        .iter()
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
        "rvisor: p50 latency per operation (ns, log scale)",
        "ns",
        &cases,
        &series,
        10.0,
    )
}

/// The workload and lifecycle tables.
pub fn other_tables(workloads: &[WorkloadResult], lifecycle: &[LifecycleResult]) -> String {
    let mut out = format!(
        "\n{:<30} {:>12} {:>12} {:>9} {:>14} {:>9}\n",
        "workload (median ms)", "native", "rvisor", "overhead", "rvisor:ptrace", "overhead"
    );
    for w in workloads {
        out.push_str(&format!(
            "{:<30} {:>12.1} {:>12.1} {:>8.2}x {:>14.1} {:>8.2}x\n",
            w.name, w.native_ms, w.rvisor_ms, w.overhead, w.ptrace_ms, w.ptrace_overhead
        ));
    }
    out.push_str(&format!(
        "{:<30} {:>35.2}x {:>24.2}x\n\n",
        "geometric mean",
        crate::workloads::geomean(workloads),
        crate::workloads::geomean_ptrace(workloads)
    ));
    out.push_str(&format!("{:<36} {:>12}\n", "start-up (median ms)", ""));
    for l in lifecycle {
        let v = l.median_ms.map_or_else(
            || format!("- ({})", l.note.as_deref().unwrap_or("")),
            |m| format!("{m:.1}"),
        );
        out.push_str(&format!("{:<36} {v:>12}\n", l.name));
    }
    out
}

/// Native vs rvisor wall time per workload.
pub fn workloads_svg(workloads: &[WorkloadResult], path: &Path) -> Result<(), String> {
    let names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
    let series: Vec<Series> = vec![
        (
            "native".into(),
            workloads.iter().map(|w| Some(w.native_ms)).collect(),
        ),
        (
            "rvisor:seccomp-notify".into(),
            workloads.iter().map(|w| Some(w.rvisor_ms)).collect(),
        ),
        (
            "rvisor:ptrace".into(),
            workloads.iter().map(|w| Some(w.ptrace_ms)).collect(),
        ),
    ];
    bar_chart(
        path,
        "rvisor: workload wall time (ms, log scale)",
        "ms",
        &names,
        &series,
        1.0,
    )
}

/// The scale and memory tables.
pub fn scale_tables(
    threads: &[crate::scale::ThreadsResult],
    sandboxes: &[crate::scale::SandboxesResult],
    memory: &[crate::scale::MemoryResult],
) -> String {
    let mut out = format!(
        "\n{:<10} {:>16} {:>16}\n",
        "threads", "native calls/s", "rvisor calls/s"
    );
    for t in threads {
        out.push_str(&format!(
            "{:<10} {:>16.0} {:>16.0}\n",
            t.threads, t.native_per_sec, t.rvisor_per_sec
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
        "\n{:<20} {:>12} {:>12}\n",
        "memory (peak RSS)", "sentry KiB", "gofer KiB"
    ));
    for m in memory {
        out.push_str(&format!(
            "{:<20} {:>12} {:>12}\n",
            m.during, m.sentry_kib, m.gofer_kib
        ));
    }
    out
}
