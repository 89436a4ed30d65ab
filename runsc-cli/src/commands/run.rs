//! `rvisor run`: create, start, wait and delete, as `runc run`.

use clap::Args;
use nix::unistd::Pid;
use rvisor_cli::oci::lifecycle::{self, Runtime};
use rvisor_cli::sandbox;

use super::create::CreateArgs;

/// Create and start a container, wait for it, then delete it.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Return once the container has started (it keeps running; delete it later).
    #[arg(long, short = 'd')]
    detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// Runs the command; returns the container's exit status.
pub fn run(rt: &Runtime, args: &RunArgs) -> anyhow::Result<i32> {
    let record = lifecycle::create(rt, &args.create.request())?;
    if let Err(e) = lifecycle::start(rt, &args.create.id) {
        let _ = lifecycle::delete(rt, &args.create.id, true);
        return Err(e.into());
    }
    if args.detach {
        return Ok(0);
    }
    // The container's process is our child (our signals go to it, as with runc run).
    let code = sandbox::signals::supervise(Pid::from_raw(record.pid), false).code();
    if !args.keep {
        lifecycle::delete(rt, &args.create.id, true)?;
    }
    Ok(code)
}
