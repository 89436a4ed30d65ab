//! `rvisor do`: run a command in a one-off sandbox over the host's root, read-only.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rvisor_cli::sandbox::{self, Network, Overlay, PlatformKind, SandboxSpec, Volume};

/// Run a command in a sandbox over the host's root (read-only, nosuid, nodev).
#[derive(Debug, Args)]
pub struct DoArgs {
    /// Directory that becomes the sandbox's `/`.
    #[arg(long, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// Bind a host path into the sandbox: SRC[:DST[:ro|rw]].
    #[arg(long = "volume", short = 'v', value_name = "SRC[:DST[:ro]]")]
    volumes: Vec<Volume>,
    /// Set an environment variable (repeatable); the caller's environment is passed through.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    env: Vec<String>,
    /// Working directory inside the sandbox [default: the caller's if the sandbox has it, else /].
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Sandbox user id of the command.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(..u32::MAX as i64))]
    uid: u32,
    /// Sandbox group id of the command.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(..u32::MAX as i64))]
    gid: u32,
    /// Host name inside the sandbox.
    #[arg(long, default_value = "rvisor", value_parser = hostname)]
    hostname: String,
    /// Kernel release string reported by uname [default: the host's].
    #[arg(long, value_name = "STRING")]
    release: Option<String>,
    /// Memory the sandbox may fill: the overlay's upper layer, /tmp, /run and /dev/shm together
    /// (bytes, k/m/g/t, or a percentage of the host's memory: 512m, 2g, 10%; the guest gets
    /// ENOSPC beyond it) [default: a quarter of the host's memory, at most 4g].
    #[arg(long, value_name = "SIZE")]
    overlay_size: Option<String>,
    /// Write the --strace output to FILE instead (implies --strace).
    #[arg(long, value_name = "FILE")]
    strace_log: Option<PathBuf>,
    /// Print the sentry's counters (trapped calls, gofer round trips, fd cache) at exit.
    #[arg(long)]
    stats: bool,
    /// Do not cache lookups: every open asks the gofer (to measure the cache).
    #[arg(long)]
    no_fd_cache: bool,
    /// Pass the caller's fds 3 to 2+N to the command (no other fd of the caller crosses).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = preserve_fds)]
    pub preserve_fds: u32,
    /// Sentry service threads: one serves while trapped calls come one at a time, the others
    /// join while they overlap [default: the CPUs usable, at most 4].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: Option<u16>,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

fn environment(overrides: &[String]) -> anyhow::Result<Vec<OsString>> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for kv in overrides {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv:?}: expected K=V"))?;
        anyhow::ensure!(!k.is_empty(), "--env {kv:?}: empty variable name");
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v.into()));
    }
    Ok(env
        .into_iter()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect())
}

/// Runs the command; returns its exit code.
pub fn run(
    args: &DoArgs,
    network: Option<Network>,
    overlay: Option<Overlay>,
    strace: bool,
    platform: PlatformKind,
    host_sockets: bool,
) -> anyhow::Result<i32> {
    let overlay = match (&args.overlay_size, overlay.unwrap_or_default()) {
        // The root is the host's / unless --root says otherwise: writes reach the host only
        // through volumes the caller names.
        (_, Overlay::Rootfs) => anyhow::bail!(
            "--overlay=rootfs is for containers: `do` takes writes in --overlay=memory, or in a \
             writable --volume"
        ),
        (None, overlay) => overlay,
        (Some(size), Overlay::Memory { .. }) => Overlay::Memory {
            size: Some(sandbox::spec::parse_size(size).context("--overlay-size")?),
        },
        (Some(_), Overlay::None) => {
            anyhow::bail!("--overlay-size sizes the memory overlay: it needs --overlay=memory")
        }
    };
    let strace: Option<Box<dyn Write + Send>> = match &args.strace_log {
        Some(path) => Some(Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("--strace-log {}", path.display()))?,
        )),
        None if strace => Some(Box::new(std::io::stderr())),
        None => None,
    };
    let cwd = match &args.cwd {
        Some(dir) => dir.clone(),
        None if args.root == std::path::Path::new("/") => {
            std::env::current_dir().unwrap_or_else(|_| "/".into())
        }
        None => "/".into(),
    };
    let spec = SandboxSpec {
        args: args.command.clone(),
        env: environment(&args.env)?,
        root: args.root.clone(),
        cwd,
        cwd_fallback: args.cwd.is_none(),
        volumes: args.volumes.clone(),
        uid: args.uid,
        gid: args.gid,
        hostname: args.hostname.clone(),
        release: args.release.clone(),
        network: network.unwrap_or_default(),
        overlay,
        platform,
        workers: args
            .workers
            .map_or_else(sandbox::spec::default_workers, usize::from),
        stats: args.stats,
        no_fd_cache: args.no_fd_cache,
        container: sandbox::ContainerSettings {
            preserve_fds: args.preserve_fds,
            host_sockets,
            ..Default::default()
        },
    };
    Ok(sandbox::run(&spec, strace)?)
}

/// A host name the kernel takes (`sethostname`: at most 64 bytes), checked before anything
/// starts.
fn hostname(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("{} bytes: a host name has 1 to 64", s.len()));
    }
    Ok(s.to_string())
}

/// `--preserve-fds N`: every fd from 3 to 2+N must be open here (as runc, which would fail
/// on one that is not).
pub(crate) fn preserve_fds(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    for fd in 3..3u64 + u64::from(n) {
        let open = i32::try_from(fd).is_ok_and(|fd| {
            // SAFETY: F_GETFD only reads the flags of an fd number, open or not.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            flags >= 0
        });
        if !open {
            return Err(format!("fd {fd} is not open here (N names fds 3 to 2+N)"));
        }
    }
    Ok(n)
}
