//! The teardown test (`tests/suite/teardown.rs`) on the seccomp-notify platform, alone in its binary.

/// The platform every sandbox of this target uses.
const PLATFORM: &str = "seccomp-notify";

// The teardown test uses only part of the harness.
#[allow(dead_code)]
#[path = "suite/prelude.rs"]
mod prelude;
#[path = "suite/teardown.rs"]
mod teardown;
