//! The harness, with `rvisor do` (and everything built on it) on the platform of the test target
//! that includes the suite (`crate::PLATFORM`).

use std::ffi::OsStr;
use std::process::{Command, Output};

pub use rvisor_tests::*;

/// `rvisor --platform=PLATFORM do <args...>`.
pub fn rvisor_do<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    rvisor_do_on(crate::PLATFORM, args)
}

/// `rvisor do -- sh -c script` on this target's platform.
pub fn sh(script: &str) -> Output {
    sh_on(crate::PLATFORM, script)
}

/// `rvisor do` as the unprivileged user, on this target's platform.
pub fn rootless_do<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    rootless_do_on(crate::PLATFORM, args)
}
