//! `cargo bench -p rvisor-bench [-- --quick]`: the per-syscall suite of `rvisor bench`, with the
//! rvisor binary of the same profile (build it first: `cargo build --release -p runsc-cli`).

use std::path::PathBuf;

use rvisor_bench::suite;

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
    let out = profile_dir
        .parent()
        .map(|t| t.join("rvisor-bench"))
        .expect("target dir");
    match rvisor_bench::run_all(&opts, &out, |r| {
        eprintln!(
            "  {:<20} {:<22} p50 {:>9} ns",
            r.case,
            r.mode.label(),
            r.p.p50
        )
    }) {
        Ok(tables) => {
            print!("{tables}");
            println!(
                "wrote {} in {}",
                rvisor_bench::OUTPUTS.join(", "),
                out.display()
            );
        }
        Err(e) => {
            eprintln!("rvisor-bench: {e}");
            std::process::exit(1)
        }
    }
}
