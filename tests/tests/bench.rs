//! `rvisor bench --quick` keeps working: every case under every mode (the field's too, where
//! installed: runsc, bwrap, strace -f), the workloads, the Go service, start-up, scale, memory,
//! the goals table, the JSON documents of the documented schemas and the SVG charts. No timing
//! is asserted, only that every column and goal row is there and the figures are consistent.

use std::collections::BTreeSet;

use rvisor_tests::{run_for, rvisor, scratch, stderr};

fn installed(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(tool).is_file())
}

fn doc(out: &std::path::Path, name: &str, schema: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap();
    assert_eq!(v["schema"], schema, "{name}");
    assert!(v["quick"].as_bool().unwrap(), "{name}");
    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1, "{name}");
    v
}

#[test]
fn quick_bench_writes_tables_json_and_svg() {
    let out = scratch("bench");
    let o = run_for(
        std::process::Command::new(rvisor())
            .args(["bench", "--quick", "--out"])
            .arg(&out)
            .current_dir("/"),
        600,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    // Every column is printed (with `-` where a tool is missing), and every ratio.
    for column in [
        "native",
        "floor:seccomp-notify",
        "rvisor:seccomp-notify",
        "floor:ptrace",
        "rvisor:ptrace",
        "runsc:ptrace",
        "bwrap",
        "strace -f",
        "rv/floor",
        "pt/floor",
        "runsc/nat",
        "rv/runsc",
        "getppid",
        "open_close_new",
        "open_write",
        "geometric mean",
        "go net/http",
        "peak memory per sandbox",
        "runsc do /bin/true",
    ] {
        assert!(table.contains(column), "{column}: {table}");
    }
    // SAFETY: geteuid has no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    let mut expected = vec![
        "native",
        "floor-seccomp-notify",
        "rvisor-seccomp-notify",
        "floor-ptrace",
        "rvisor-ptrace",
    ];
    // Where a tool is installed its column must have figures (runsc do needs root).
    for (tool, mode) in [("runsc", "runsc"), ("bwrap", "bwrap"), ("strace", "strace")] {
        if installed(tool) && (tool != "runsc" || root) {
            expected.push(mode);
        }
    }

    let calls = doc(&out, "syscalls.json", "rvisor-bench/syscalls/2");
    let modes: BTreeSet<&str> = calls["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in &expected {
        assert!(
            modes.contains(m),
            "{m} is installed but was not measured: {}",
            calls["missing"]
        );
    }
    let rows = calls["rows"].as_array().unwrap();
    let notes = calls["notes"].as_array().unwrap();
    // A row for every case and mode, but where another tool failed a case (then a note).
    assert_eq!(rows.len() + notes.len(), 18 * modes.len(), "{notes:?}");
    for r in rows {
        let v = |k: &str| r[k].as_u64().unwrap();
        assert!(v("n") >= 100, "{r}");
        assert!(
            v("p50") > 0 && v("p50") <= v("p90") && v("p90") <= v("p99") && v("p99") <= v("max"),
            "{r}"
        );
    }
    for case in ["getppid", "open_close_new", "stat", "execve_static"] {
        for m in &expected[..5] {
            assert!(
                rows.iter().any(|r| r["case"] == case && r["mode"] == *m),
                "{case} {m}"
            );
        }
    }
    let ratios = calls["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 18);
    for r in ratios {
        for k in [
            "rvisor_over_floor",
            "ptrace_over_floor",
            "ptrace_over_native",
        ] {
            assert!(r[k].as_f64().unwrap() > 0.0, "{k}: {r}");
        }
    }

    let loads = doc(&out, "workloads.json", "rvisor-bench/workloads/2");
    let workloads = loads["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 7);
    for w in workloads {
        for m in expected.iter().filter(|m| !m.starts_with("floor")) {
            assert!(
                w["ms"][m].as_f64().is_some_and(|v| v > 0.0) || w["notes"][m].is_string(),
                "{m}: {w}"
            );
        }
        for m in ["native", "rvisor-seccomp-notify", "rvisor-ptrace"] {
            assert!(w["ms"][m].as_f64().unwrap() > 0.0, "{m}: {w}");
        }
    }
    for m in ["rvisor-seccomp-notify", "rvisor-ptrace"] {
        assert!(loads["geomean"][m].as_f64().unwrap() > 0.0, "{m}");
    }
    let http = &loads["http"];
    if installed("go") {
        let measured: BTreeSet<&str> = http["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["rps"].as_f64().is_some_and(|v| v > 0.0))
            .map(|r| r["mode"].as_str().unwrap())
            .collect();
        for m in ["native", "rvisor-seccomp-notify", "rvisor-ptrace"] {
            assert!(measured.contains(m), "{m}: {http}");
        }
    } else {
        assert!(!http["notes"].as_array().unwrap().is_empty(), "{http}");
    }

    let starts = doc(&out, "startup.json", "rvisor-bench/startup/2");
    let starts = starts["lifecycle"].as_array().unwrap();
    let measured = |name: &str| {
        starts
            .iter()
            .any(|l| l["name"] == name && l["median_ms"].is_f64())
    };
    for name in [
        "rvisor do /bin/true",
        "rvisor --platform=ptrace do /bin/true",
        "rvisor create+start+wait+delete",
    ] {
        assert!(measured(name), "{name}: {starts:?}");
    }
    if expected.contains(&"runsc") {
        assert!(measured("runsc do /bin/true"), "{starts:?}");
    }

    let scale = doc(&out, "scale.json", "rvisor-bench/scale/3");
    let threads = scale["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 5);
    // The kernel floor runs wherever the floor column does: each thread count has its figure.
    for t in threads {
        assert!(t["floor_per_sec"].as_f64().is_some_and(|f| f > 0.0), "{t}");
    }
    assert!(table.contains("floor calls/s"), "{table}");
    assert!(!scale["memory"]["accounting"].as_str().unwrap().is_empty());
    let memory = scale["memory"]["results"].as_array().unwrap();
    for m in expected.iter().filter(|m| !m.starts_with("floor")) {
        assert!(
            memory
                .iter()
                .any(|r| r["mode"] == *m && r["memory"]["rss_sum_kib"].as_u64().unwrap() > 0),
            "{m}: {memory:?}"
        );
    }

    let goals = doc(&out, "goals.json", "rvisor-bench/goals/2");
    let goals_list = goals["goals"].as_array().unwrap();
    assert_eq!(goals_list.len(), 10);
    assert_eq!(goals["total"], 10);
    for g in goals_list {
        let text = g["goal"].as_str().unwrap();
        let line = table
            .lines()
            .find(|l| l.starts_with(text))
            .unwrap_or_else(|| panic!("goal row {text:?} missing: {table}"));
        assert!(
            ["PASS", "FAIL", "n/a"].iter().any(|r| line.contains(r)),
            "{line}"
        );
        // Everything a goal needs is measured by the quick run (start-up needs bwrap).
        if g["key"] != "start-up" || installed("bwrap") {
            assert!(g["measured"].as_f64().is_some(), "{g}");
        }
        assert_eq!(g["pass"].is_boolean(), g["measured"].is_f64(), "{g}");
        // Only the threads goal has a kernel floor to set beside it.
        assert_eq!(g["floor"].is_f64(), g["key"] == "threads", "{g}");
    }
    assert!(table.contains("of 10 goals pass"), "{table}");

    assert!(std::fs::read_to_string(out.join("workloads.svg"))
        .unwrap()
        .starts_with("<svg"));
    let svg = std::fs::read_to_string(out.join("syscalls.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.matches("<rect").count() > 13 * 3,
        "{}",
        &svg[..200]
    );
    let bad = run_for(
        std::process::Command::new(rvisor()).args(["bench", "--case", "nope"]),
        60,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("unknown case \"nope\""),
        "{}",
        stderr(&bad)
    );
}
