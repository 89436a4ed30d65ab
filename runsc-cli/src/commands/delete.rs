//! `rvisor delete`: remove a stopped container, or stop and remove a running one (`--force`).

use clap::Args;
use rvisor_cli::oci::lifecycle::{self, Runtime};
use rvisor_cli::oci::OciError;

/// Delete a container and everything it left (processes, mounts, cgroup, state).
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Stop a running container first (SIGTERM, then SIGKILL after a grace period); a missing
    /// container is not an error.
    #[arg(long, short = 'f')]
    force: bool,
    /// Container id.
    id: String,
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &DeleteArgs) -> anyhow::Result<i32> {
    match lifecycle::delete(rt, &args.id, args.force) {
        Err(OciError::NotFound(_)) if args.force => Ok(0),
        r => r.map(|()| 0).map_err(Into::into),
    }
}
