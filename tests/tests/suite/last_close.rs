//! A guest's close of the fd an open gave it is the file's last close, as on Linux: the sentry's
//! own copy of the file is gone before the guest runs on. Were it still held, a guest scheduled
//! ahead of the sentry could close first, and then find its written file busy for exec
//! (ETXTBSY), refused a read lease, or its flock lock still taken; inotify's close event would
//! come late (the compat case `misc/inotify_exec` once saw it in CI).

use std::sync::OnceLock;

use super::prelude::*;

fn probe() -> &'static std::path::Path {
    static BIN: OnceLock<std::path::PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c("last_close", include_str!("probes/last_close.c")))
}

/// Runs every mode `n` times in one sandbox, on a volume (through the gofer) and in the
/// overlay; returns what the probe printed.
fn run(mode: &str, n: u32) -> String {
    let bin = probe().display();
    sh_with_volume(
        &format!("last-close-{mode}"),
        &format!("{bin} {mode} {n} /w && {bin} {mode} {n} /tmp"),
    )
}

#[test]
fn a_written_file_is_free_for_a_read_lease_once_closed() {
    let out = run("lease", 300);
    assert_eq!(out, "lease held=0 of 300\n".repeat(2), "{out}");
}

#[test]
fn a_flock_lock_goes_with_the_close() {
    let out = run("flock", 300);
    assert_eq!(out, "flock held=0 of 300\n".repeat(2), "{out}");
}

#[test]
fn a_written_program_runs_once_closed() {
    let out = run("exec", 200);
    assert_eq!(out, "exec held=0 of 200\n".repeat(2), "{out}");
}
