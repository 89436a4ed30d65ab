//! `rvisor kill`: signal a container's process.

use std::str::FromStr;

use clap::Args;
use nix::sys::signal::Signal;
use rvisor_cli::oci::lifecycle::{self, Runtime};

/// Send a signal to a container's process (default SIGTERM).
///
/// A PID 1 gets only the signals it has a handler for (SIGKILL always): a plain shell as the
/// container's process ignores SIGTERM. Create with `--init` to have a reaper as PID 1 that
/// forwards signals to the process.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container, not only its first.
    #[arg(long, short = 'a')]
    all: bool,
    /// Container id.
    id: String,
    /// Signal: a number, or a name with or without SIG (KILL, SIGTERM, 9).
    #[arg(default_value = "TERM", value_parser = parse_signal)]
    signal: Signal,
}

/// Parses `9`, `KILL` or `SIGKILL`.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("unknown signal {n}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| format!("unknown signal {s:?}"))
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &KillArgs) -> anyhow::Result<i32> {
    lifecycle::kill(rt, &args.id, args.signal, args.all)?;
    Ok(0)
}
