//! `rvisor create`: build a container from a bundle; it waits for `start`.

use std::path::PathBuf;

use clap::Args;
use rvisor_cli::oci::lifecycle::{self, CreateRequest, Runtime};

/// Create a container (its process waits for `start`).
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (when process.terminal is set).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Pass the caller's fds 3 to 2+N to the container's process (no other fd crosses).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = super::do_cmd::preserve_fds)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

impl CreateArgs {
    /// As a lifecycle request.
    pub fn request(&self) -> CreateRequest {
        CreateRequest {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
        }
    }
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &CreateArgs) -> anyhow::Result<i32> {
    lifecycle::create(rt, &args.request())?;
    Ok(0)
}
