//! How the sentry names `/proc`. Before confinement it is `/proc/...`; after it, the sentry's
//! root is an empty tmpfs and its working directory is the host's procfs, detached from any
//! tree, so proc files are named relative to it and nothing else on the host can be named.

use std::sync::atomic::{AtomicBool, Ordering};

static CONFINED: AtomicBool = AtomicBool::new(false);

/// The prefix that names a proc file: `/proc/`, or nothing once confined.
pub fn prefix() -> &'static str {
    if CONFINED.load(Ordering::Relaxed) {
        ""
    } else {
        "/proc/"
    }
}

/// Records that the working directory is now procfs and the root is empty.
pub fn set_confined() {
    CONFINED.store(true, Ordering::Relaxed);
}
