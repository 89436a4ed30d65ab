//! `rvisor`: run programs in a sandbox whose system calls a user-space sentry services.

mod commands;
mod output;

use std::path::PathBuf;

use std::io::Write as _;

use clap::{Parser, Subcommand, ValueEnum};
use rvisor_cli::oci::convert::Options;
use rvisor_cli::oci::lifecycle::Runtime;
use rvisor_cli::oci::rootless::{self, RootlessMode};
use rvisor_cli::oci::state::StateRoot;
use rvisor_cli::sandbox::{Network, Overlay, PlatformKind};

/// Whether the guest may reach Unix sockets it did not create (runsc's `--host-uds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HostUds {
    /// Only sockets bound inside the sandbox.
    None,
    /// Also the host's (a volume's, or the root's with `--overlay=none`).
    Open,
}

/// Output format of the runtime's own log.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A gVisor-style sandbox: untrusted programs run unmodified; their system calls are trapped and
/// serviced by a user-space sentry. Also a runc-compatible OCI runtime.
#[derive(Debug, Parser)]
#[command(name = "rvisor", version, about, propagate_version = true)]
struct Cli {
    /// Directory for container state [default: /run/rvisor as root, else
    /// $XDG_RUNTIME_DIR/rvisor].
    #[arg(long, global = true, value_name = "DIR", alias = "state-root")]
    root: Option<PathBuf>,
    /// Rootless cgroups, as runc's flag: "auto" (when not root), "true" or "false". Rootless, a
    /// cgroup the caller cannot create is done without, unless the spec names one or asks for
    /// limits. Before the command, as runc's (`spec --rootless` is another flag).
    #[arg(long, default_value = "auto", value_name = "auto|true|false")]
    rootless: RootlessMode,
    /// Write the runtime's log here instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of the runtime's log.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (not supported: rvisor manages cgroupfs directly).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Trapping mechanism.
    #[arg(long, global = true, default_value = "seccomp-notify", value_parser = PlatformKind::NAMES)]
    platform: String,
    /// Network: "loopback" (a private namespace with lo only) or "host" [default: `do`:
    /// loopback; containers: as the spec says].
    #[arg(long, global = true)]
    network: Option<Network>,
    /// What takes writes to a writable root: "rootfs" (the root itself, through the gofer; a
    /// container's bundle), "memory" (an overlay; the host is never changed) or "none" (the
    /// root is read-only) [default: `do`: memory; containers: rootfs].
    #[arg(long, global = true)]
    overlay: Option<Overlay>,
    /// Print every trapped system call, decoded (containers: to the --log file).
    #[arg(long, global = true)]
    strace: bool,
    /// Containers: a reaper is PID 1 and forwards signals to the process.
    #[arg(long, global = true)]
    init: bool,
    /// Unix sockets the guest may connect or send to by path: "none" (only those it created)
    /// or "open" (also host sockets that a volume or a read-only root exposes).
    #[arg(long, global = true, value_enum, default_value = "none")]
    host_uds: HostUds,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command in a sandbox over the host's root.
    Do(Box<commands::do_cmd::DoArgs>),
    /// Print the system call table.
    Syscalls(commands::syscalls::SyscallsArgs),
    Create(commands::create::CreateArgs),
    Start(commands::start::StartArgs),
    Run(commands::run::RunArgs),
    State(commands::state::StateArgs),
    Kill(commands::kill::KillArgs),
    Delete(commands::delete::DeleteArgs),
    List(commands::list::ListArgs),
    Ps(commands::ps::PsArgs),
    Exec(commands::exec::ExecArgs),
    Events(commands::events::EventsArgs),
    Wait(commands::wait::WaitArgs),
    /// Freeze every process of a container.
    Pause(commands::pause::PauseArgs),
    /// Thaw a paused container.
    Resume(commands::pause::PauseArgs),
    Spec(commands::spec::SpecArgs),
    Bench(commands::bench::BenchArgs),
    Features(commands::features::FeaturesArgs),
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let level = if cli.debug { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_env("RVISOR_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        // A log that cannot be written loses the event; reporting that on stderr would panic
        // where stderr is what fails.
        .log_internal_errors(false);
    let writer: Box<dyn Fn() -> Box<dyn std::io::Write> + Send + Sync> = match &cli.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("opening log {}: {e}", path.display()))?;
            Box::new(move || match file.try_clone() {
                Ok(f) => Box::new(f),
                Err(_) => Box::new(std::io::sink()),
            })
        }
        None => Box::new(|| Box::new(std::io::stderr())),
    };
    match cli.log_format {
        LogFormat::Text => builder.with_writer(writer).without_time().init(),
        LogFormat::Json => builder.json().with_writer(writer).init(),
    }
    Ok(())
}

fn platform(cli: &Cli) -> anyhow::Result<PlatformKind> {
    cli.platform.parse().map_err(|e: String| anyhow::anyhow!(e))
}

fn runtime(cli: &Cli) -> anyhow::Result<Runtime> {
    anyhow::ensure!(
        !cli.systemd_cgroup,
        "--systemd-cgroup is not supported: rvisor manages cgroups through cgroupfs (v1 or v2)"
    );
    let root = match &cli.root {
        Some(root) => root.clone(),
        None => rootless::default_state_root(
            nix::unistd::geteuid().is_root(),
            std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
        )?,
    };
    let state = StateRoot::new(&root).map_err(|e| match cli.root {
        Some(_) => anyhow::Error::new(e),
        None if nix::unistd::geteuid().is_root() => {
            anyhow::anyhow!("{e} (the default state root; pass --root DIR for another)")
        }
        None => anyhow::anyhow!("{e} (the default, under XDG_RUNTIME_DIR; pass --root DIR)"),
    })?;
    Ok(Runtime {
        root: state,
        opts: Options {
            overlay: cli.overlay.unwrap_or(Overlay::Rootfs),
            init: cli.init,
            host_sockets: cli.host_uds == HostUds::Open,
        },
        network: cli.network.clone(),
        platform: platform(cli)?,
        strace: cli.strace.then(|| cli.log.clone()),
        rootless: cli.rootless,
    })
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    use commands::*;
    match &cli.command {
        Command::Do(args) => {
            return do_cmd::run(
                args,
                cli.network.clone(),
                cli.overlay,
                cli.strace,
                platform(cli)?,
                cli.host_uds == HostUds::Open,
            )
        }
        Command::Syscalls(args) => return syscalls::run(args),
        Command::Spec(args) => return spec::run(args),
        Command::Features(args) => return features::run(args),
        Command::Bench(args) => return bench::run(args),
        _ => {}
    }
    let rt = runtime(cli)?;
    match &cli.command {
        Command::Create(args) => create::run(&rt, args),
        Command::Start(args) => start::run(&rt, args),
        Command::Run(args) => run::run(&rt, args),
        Command::State(args) => state::run(&rt, args),
        Command::Kill(args) => kill::run(&rt, args),
        Command::Delete(args) => delete::run(&rt, args),
        Command::List(args) => list::run(&rt, args),
        Command::Ps(args) => ps::run(&rt, args),
        Command::Exec(args) => exec::run(&rt, args),
        Command::Events(args) => events::run(&rt, args),
        Command::Wait(args) => wait::run(&rt, args),
        Command::Pause(args) => pause::run(&rt, args, true),
        Command::Resume(args) => pause::run(&rt, args, false),
        Command::Do(_)
        | Command::Syscalls(_)
        | Command::Spec(_)
        | Command::Features(_)
        | Command::Bench(_) => {
            unreachable!("dispatched above")
        }
    }
}

/// Appends the error to the log the way runc does, so containerd's shim can show it.
fn log_error(cli: &Cli, message: &str) {
    let Some(path) = &cli.log else { return };
    let line = match cli.log_format {
        LogFormat::Json => serde_json::json!({
            "level": "error",
            "msg": message,
            "time": rvisor_cli::oci::time::rfc3339(std::time::SystemTime::now()),
        })
        .to_string(),
        LogFormat::Text => format!("rvisor: error: {message}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Parses the command line; `--help` and `--version` print and exit here, as do usage errors.
fn parse() -> Cli {
    let err = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(err) => err,
    };
    match err.print() {
        // Help or version for stdout: that output failing is the command failing.
        Err(e) if !err.use_stderr() => {
            let e = output::OutputError(e);
            if e.is_broken_pipe() {
                std::process::exit(output::BROKEN_PIPE_EXIT)
            }
            output::eprint_line(format_args!("rvisor: {e}"));
            std::process::exit(1)
        }
        _ => std::process::exit(err.exit_code()),
    }
}

fn main() {
    let cli = parse();
    let preserved = match &cli.command {
        Command::Do(args) => Some(args.preserve_fds),
        Command::Create(args) => Some(args.preserve_fds),
        Command::Run(args) => Some(args.create.preserve_fds),
        Command::Exec(args) => Some(args.preserve_fds),
        _ => None,
    };
    if let Some(n) = preserved {
        // Nothing the caller left open may reach a sandbox we fork (containerd's shim leaves its
        // own socket open in us) but the `--preserve-fds` it names; runc closes them the same
        // way. Nothing of ours is open yet.
        // SAFETY: close_range takes integers; no fd from 3 + n up is owned by anything here.
        unsafe { libc::syscall(libc::SYS_close_range, 3 + n, u32::MAX, 0u32) };
    }
    let result = init_logging(&cli).and_then(|()| dispatch(&cli));
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // A reader that went away (`rvisor list | head -1`) is not an error to report.
            if e.downcast_ref::<output::OutputError>()
                .is_some_and(output::OutputError::is_broken_pipe)
            {
                std::process::exit(output::BROKEN_PIPE_EXIT)
            }
            let message = format!("{e:#}");
            log_error(&cli, &message);
            output::eprint_line(format_args!("rvisor: {message}"));
            // `do` keeps the shell's "could not run" code; runtime commands fail with 1, as runc.
            std::process::exit(if matches!(cli.command, Command::Do(_)) {
                125
            } else {
                1
            })
        }
    }
}
