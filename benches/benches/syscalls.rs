//! `cargo bench -p rvisor-bench [-- --quick]`: the per-syscall suite of `rvisor bench`, with the
//! rvisor binary of the same profile (build it first: `cargo build --release -p runsc-cli`).

use std::path::PathBuf;

use rvisor_bench::{report, suite};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // target/<profile>/deps/syscalls-<hash> -> target/<profile>/rvisor
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .map(PathBuf::from)
        .expect("target dir");
    let opts = suite::Options {
        rvisor: profile_dir.join("rvisor"),
        probe: PathBuf::from(env!("CARGO_BIN_EXE_rvisor-bench-probe")),
        quick,
        cases: Vec::new(),
    };
    let modes = suite::modes();
    let rows = match suite::run(&opts, |r| {
        eprintln!(
            "  {:<20} {:<22} p50 {:>9} ns",
            r.case,
            r.mode.label(),
            r.p.p50
        )
    }) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("rvisor-bench: {e}");
            std::process::exit(1)
        }
    };
    print!("{}", report::table(&rows, &modes));
    let out = profile_dir
        .parent()
        .map(|t| t.join("rvisor-bench"))
        .expect("target dir");
    std::fs::create_dir_all(&out).expect("creating target/rvisor-bench");
    let doc = report::document(&rows, quick);
    std::fs::write(
        out.join("syscalls.json"),
        serde_json::to_string_pretty(&doc).expect("json") + "\n",
    )
    .expect("writing syscalls.json");
    report::svg(&rows, &modes, &out.join("syscalls.svg")).expect("writing syscalls.svg");
    println!("wrote {}", out.display());
}
