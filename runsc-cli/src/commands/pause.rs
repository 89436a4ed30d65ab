//! `rvisor pause` and `rvisor resume`: freeze and thaw every process of a container.

use clap::Args;
use rvisor_cli::oci::cgroup::Cgroup;
use rvisor_cli::oci::lifecycle::{wrong, Runtime};
use rvisor_cli::oci::state::Status;

/// Freeze (pause) or thaw (resume) a container.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Container id.
    id: String,
}

/// Runs `pause` (`freeze`) or `resume`.
pub fn run(rt: &Runtime, args: &PauseArgs, freeze: bool) -> anyhow::Result<i32> {
    let (dir, record) = rt.root.open(&args.id)?;
    let status = record.status(&dir);
    let (want, action) = if freeze {
        (Status::Running, "pause")
    } else {
        (Status::Paused, "resume")
    };
    if status != want {
        return Err(wrong(&args.id, status, action).into());
    }
    let cg = record.cgroup.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "cannot {action} {}: it has no cgroup (created rootless where none could be \
                 made), and freezing needs one",
            args.id
        )
    })?;
    Cgroup::load(cg).set_frozen(freeze)?;
    Ok(0)
}
