//! `rvisor ps`: the container's processes.

use std::io::Write as _;

use clap::{Args, ValueEnum};
use rvisor_cli::oci::lifecycle::{guest_pids, wrong, Runtime};
use rvisor_cli::oci::state::Status;

use crate::output;

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// `ps -ef` lines of the container's processes.
    Table,
    /// A JSON array of host pids.
    Json,
}

/// List a container's processes (host pids; the sentry and gofer are not listed).
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: Format,
    /// Container id.
    id: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &PsArgs) -> anyhow::Result<i32> {
    let (dir, record) = rt.root.open(&args.id)?;
    let status = record.status(&dir);
    if status == Status::Stopped {
        return Err(wrong(&args.id, status, "list processes").into());
    }
    let pids = guest_pids(&record);
    match args.format {
        Format::Json => output::line(serde_json::to_string(&pids)?)?,
        Format::Table => {
            let ps_args = if args.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                args.ps_args.clone()
            };
            let out = std::process::Command::new("ps").args(&ps_args).output()?;
            anyhow::ensure!(
                out.status.success(),
                "ps {}: {}",
                ps_args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| anyhow::anyhow!("ps output has no PID column"))?;
            output::stdout(|out| {
                writeln!(out, "{header}")?;
                for line in lines {
                    let pid = line
                        .split_whitespace()
                        .nth(col)
                        .and_then(|p| p.parse::<i32>().ok());
                    if pid.is_some_and(|p| pids.contains(&p)) {
                        writeln!(out, "{line}")?;
                    }
                }
                Ok(())
            })?;
        }
    }
    Ok(0)
}
