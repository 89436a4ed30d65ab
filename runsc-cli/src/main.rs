//! `rvisor`: run programs in a sandbox whose system calls a user-space sentry services.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Output format of the runtime's own log.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A gVisor-style sandbox: untrusted programs run unmodified; their system calls are trapped and
/// serviced by a user-space sentry.
#[derive(Debug, Parser)]
#[command(name = "rvisor", version, about, propagate_version = true)]
struct Cli {
    /// Directory for container state (used by the OCI commands).
    #[arg(long, global = true, default_value = "/run/rvisor", value_name = "DIR")]
    state_root: PathBuf,
    /// Write the runtime's log here instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of the runtime's log.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Do(Box<commands::do_cmd::DoArgs>),
    Syscalls(commands::syscalls::SyscallsArgs),
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let level = if cli.debug { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_env("RVISOR_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false);
    let writer: Box<dyn Fn() -> Box<dyn std::io::Write> + Send + Sync> = match &cli.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("opening log {}: {e}", path.display()))?;
            Box::new(move || Box::new(file.try_clone().expect("dup log fd")))
        }
        None => Box::new(|| Box::new(std::io::stderr())),
    };
    match cli.log_format {
        LogFormat::Text => builder.with_writer(writer).without_time().init(),
        LogFormat::Json => builder.json().with_writer(writer).init(),
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = init_logging(&cli).and_then(|()| match &cli.command {
        Command::Do(args) => commands::do_cmd::run(args),
        Command::Syscalls(args) => commands::syscalls::run(args),
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rvisor: {e:#}");
            std::process::exit(125)
        }
    }
}
