//! `rvisor state`: the container's OCI state as JSON.

use clap::Args;
use rvisor_cli::oci::lifecycle::{self, Runtime};

/// Print a container's state (OCI JSON).
#[derive(Debug, Args)]
pub struct StateArgs {
    /// Container id.
    pub id: String,
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &StateArgs) -> anyhow::Result<i32> {
    let state = lifecycle::state(rt, &args.id)?;
    crate::output::line(serde_json::to_string_pretty(&state)?)?;
    Ok(0)
}
