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

/// `rvisor do <args...>` on this target's platform, as the rootless test user when `rootless`.
pub fn do_as<I, S>(rootless: bool, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    if rootless {
        rootless_do(args)
    } else {
        rvisor_do(args)
    }
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

/// `rvisor do -v DIR:/w -- sh -c script` on this target's platform, with DIR a fresh scratch
/// directory named for `name` and the platform (removed after); what it printed, stdout first.
pub fn sh_with_volume(name: &str, script: &str) -> String {
    let dir = scratch(&format!("{name}-{}", crate::PLATFORM));
    let volume = format!("{}:/w", dir.display());
    let o = run_for(
        &mut rvisor_do(["-v", &volume, "--", "sh", "-c", script]),
        120,
    );
    let _ = std::fs::remove_dir_all(&dir);
    format!("{}{}", stdout(&o), stderr(&o))
}
