//! A handled signal that reaches a thread while the sentry serves its call does not cut the call
//! short once the sentry has begun it: a half-done call would show. On seccomp-notify this rests
//! on `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`; a ptrace stop holds the thread anyway.

use std::sync::OnceLock;

use super::prelude::*;

fn probe() -> &'static std::path::Path {
    static BIN: OnceLock<std::path::PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c("signal_open", include_str!("probes/signal_open.c")))
}

/// O_CREAT|O_EXCL opens of new names under a storm of SA_RESTART signals, in the overlay and
/// on a volume. Before, a restart found the file its first attempt had created (EEXIST: 19 and
/// 110 of 2,000), and with the fd installed before the reply, fds were left behind unseen
/// (833 and 1,096 of 2,000).
#[test]
fn an_open_under_a_signal_storm_happens_once() {
    let bin = probe().display();
    let out = sh_with_volume("signal-open", &format!("{bin} /tmp 2000 && {bin} /w 2000"));
    assert_eq!(out, "failed=0 (last errno 0) left=0\n".repeat(2), "{out}");
}
