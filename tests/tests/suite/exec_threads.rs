//! An exec from a non-leader thread takes over the leader's tid while the leader may be in the
//! middle of a trapped call: the new image must neither inherit what the sentry knew of the old
//! leader (its credentials) nor the registers of the old leader's call.

use std::sync::OnceLock;

use super::prelude::*;

fn probe() -> &'static std::path::Path {
    static BIN: OnceLock<std::path::PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c("exec_thread", include_str!("probes/exec_thread.c")))
}

/// Runs the probe `times` times with a root-only file at /w/secret; each run's output.
fn runs(mode: &str, times: usize) -> Vec<String> {
    let dir = scratch(&format!("exec-thread-{mode}-{}", crate::PLATFORM));
    std::fs::write(dir.join("secret"), "secret").unwrap();
    set_mode(&dir.join("secret"), 0o600);
    let volume = format!("{}:/w", dir.display());
    let bin = probe().display().to_string();
    let out = (0..times)
        .map(|_| {
            let o = run_for(
                &mut rvisor_do(["-v", &volume, "--", &bin, mode, "/w/secret"]),
                60,
            );
            format!("{}{} status={:?}", stdout(&o), stderr(&o), o.status.code())
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn an_exec_from_a_thread_starts_the_new_image_cleanly() {
    for out in runs("plain", 10) {
        assert_eq!(out, "done euid=0 open=OK\n status=Some(0)", "{out}");
    }
}

#[test]
fn an_exec_from_a_thread_that_dropped_privileges_keeps_them_dropped() {
    for out in runs("drop", 10) {
        assert_eq!(out, "done euid=65534 open=EACCES\n status=Some(0)", "{out}");
    }
}
