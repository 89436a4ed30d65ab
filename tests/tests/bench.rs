//! `rvisor bench --quick` keeps working: every case under every mode, the workloads and the
//! start-up paths, a JSON document of the documented schema and the SVG charts. No timing is asserted, only that the figures are
//! consistent.

use rvisor_tests::{run_for, rvisor, scratch, stderr};

#[test]
fn quick_bench_writes_table_json_and_svg() {
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
    assert!(
        table.contains("rv/floor") && table.contains("pt/floor") && table.contains("getppid"),
        "{table}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("syscalls.json")).unwrap()).unwrap();
    assert_eq!(doc["schema"], "rvisor-bench/syscalls/1");
    assert!(doc["machine"]["cpus"].as_u64().unwrap() >= 1);
    let rows = doc["rows"].as_array().unwrap();
    let modes: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    for m in [
        "native",
        "floor-seccomp-notify",
        "rvisor-seccomp-notify",
        "floor-ptrace",
        "rvisor-ptrace",
    ] {
        assert!(modes.contains(m), "{modes:?}");
    }
    assert_eq!(rows.len(), 16 * modes.len());
    for r in rows {
        let v = |k: &str| r[k].as_u64().unwrap();
        assert!(v("n") >= 100, "{r}");
        assert!(
            v("p50") > 0 && v("p50") <= v("p90") && v("p90") <= v("p99") && v("p99") <= v("max"),
            "{r}"
        );
    }
    let ratios = doc["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 16);
    for r in ratios {
        for k in [
            "rvisor_over_floor",
            "ptrace_over_floor",
            "ptrace_over_native",
        ] {
            assert!(r[k].as_f64().unwrap() > 0.0, "{k}: {r}");
        }
    }
    let loads = doc["workloads"].as_array().unwrap();
    assert_eq!(loads.len(), 7);
    for w in loads {
        assert!(
            ["native_ms", "rvisor_ms", "ptrace_ms"]
                .iter()
                .all(|k| w[*k].as_f64().unwrap() > 0.0),
            "{w}"
        );
    }
    assert!(doc["geomean_overhead"].as_f64().unwrap() > 0.0);
    assert!(doc["geomean_overhead_ptrace"].as_f64().unwrap() > 0.0);
    let starts = doc["lifecycle"].as_array().unwrap();
    let measured = |name: &str| {
        starts
            .iter()
            .any(|l| l["name"] == name && l["median_ms"].is_f64())
    };
    assert!(measured("rvisor do /bin/true"), "{starts:?}");
    assert!(measured("rvisor create+start+wait+delete"), "{starts:?}");
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
