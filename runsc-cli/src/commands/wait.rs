//! `rvisor wait`: block until a container stops; exit with its status.

use clap::Args;
use rvisor_cli::oci::lifecycle::{self, Runtime};

/// Wait for a container to stop; print its exit status and exit with it.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Container id.
    id: String,
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &WaitArgs) -> anyhow::Result<i32> {
    match lifecycle::wait(rt, &args.id)? {
        Some(code) => {
            crate::output::line(code)?;
            Ok(code)
        }
        None => anyhow::bail!(
            "{}: the sandbox was killed before it recorded an exit status",
            args.id
        ),
    }
}
