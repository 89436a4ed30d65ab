//! `rvisor start`: run a created container's process.

use clap::Args;
use rvisor_cli::oci::lifecycle::{self, Runtime};

/// Start a created container.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Container id.
    pub id: String,
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &StartArgs) -> anyhow::Result<i32> {
    lifecycle::start(rt, &args.id)?;
    Ok(0)
}
