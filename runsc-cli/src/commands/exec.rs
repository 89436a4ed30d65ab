//! `rvisor exec`: run another process in a running container.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use oci_spec::runtime::Process;
use rvisor_cli::oci::convert;
use rvisor_cli::oci::lifecycle::{self, ExecRequest, Runtime};

/// Run a process in a running container (supervised by its sentry, in its namespaces and
/// cgroup).
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The process, as OCI process JSON (args, env, cwd, user, terminal...).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Write the process's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Pass the caller's fds 3 to 2+N to the process (no other fd crosses).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = super::do_cmd::preserve_fds)]
    pub preserve_fds: u32,
    /// Allocate a pty (its master goes to --console-socket).
    #[arg(long, short = 't')]
    tty: bool,
    /// Unix socket that receives the pty master.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Working directory [default: the container's].
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Add an environment variable (repeatable).
    #[arg(long = "env", short = 'e')]
    env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Supplementary group (repeatable).
    #[arg(long = "additional-gids", short = 'g')]
    additional_gids: Vec<u32>,
    /// Container id.
    id: String,
    /// Command and arguments (when --process is not given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn process_from_args(rt: &Runtime, args: &ExecArgs) -> anyhow::Result<Process> {
    anyhow::ensure!(
        !args.command.is_empty(),
        "exec: give a command or --process"
    );
    let (_, record) = rt.root.open(&args.id)?;
    // As runc: the container's process is the template.
    let spec = convert::load(&record.bundle)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &args.user {
        let (uid, gid) = u
            .split_once(':')
            .map_or((u.as_str(), None), |(a, b)| (a, Some(b)));
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u}: not a number"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("--user {u}: not a number"))?,
            );
        }
    }
    if !args.additional_gids.is_empty() {
        user.set_additional_gids(Some(args.additional_gids.clone()));
    }
    p.set_user(user);
    Ok(p)
}

/// Runs the command; returns the process's exit status.
pub fn run(rt: &Runtime, args: &ExecArgs) -> anyhow::Result<i32> {
    let process = match &args.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--process {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("--process {}", path.display()))?
        }
        None => process_from_args(rt, args)?,
    };
    Ok(lifecycle::exec(
        rt,
        &ExecRequest {
            id: args.id.clone(),
            process,
            detach: args.detach,
            pid_file: args.pid_file.clone(),
            console_socket: args.console_socket.clone(),
            preserve_fds: args.preserve_fds,
        },
    )?)
}
