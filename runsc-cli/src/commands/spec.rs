//! `rvisor spec`: write a default config.json.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use oci_spec::runtime::Spec;

/// Write a default config.json (runc's default: `sh` in ./rootfs, a terminal).
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Bundle directory to write it in.
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// A spec for an unprivileged user: a user namespace mapping the caller to root.
    #[arg(long)]
    rootless: bool,
}

/// Runs the command.
pub fn run(args: &SpecArgs) -> anyhow::Result<i32> {
    let path = args.bundle.join("config.json");
    anyhow::ensure!(!path.exists(), "{} already exists", path.display());
    let spec = if args.rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}
