//! `rvisor list`: every container under the state root.

use std::io::Write as _;

use clap::{Args, ValueEnum};
use rvisor_cli::oci::lifecycle::Runtime;

use crate::output;

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
}

/// List containers.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: Format,
    /// Ids only.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &ListArgs) -> anyhow::Result<i32> {
    let mut rows = Vec::new();
    for id in rt.root.ids()? {
        // A container deleted meanwhile is skipped.
        let Ok((dir, record)) = rt.root.open(&id) else {
            continue;
        };
        let status = record.status(&dir);
        rows.push((record, status));
    }
    if args.quiet {
        output::stdout(|out| {
            for (r, _) in &rows {
                writeln!(out, "{}", r.id)?;
            }
            Ok(())
        })?;
        return Ok(0);
    }
    match args.format {
        Format::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|(r, s)| {
                    serde_json::json!({
                        "ociVersion": "1.2.0", "id": r.id,
                        "pid": if *s == rvisor_cli::oci::state::Status::Stopped { 0 } else { r.pid },
                        "status": s.as_str(), "bundle": r.bundle, "rootfs": r.rootfs,
                        "created": r.created, "annotations": r.annotations, "owner": r.owner,
                    })
                })
                .collect();
            output::line(serde_json::to_string(&list)?)?;
        }
        Format::Table => {
            let width = rows
                .iter()
                .map(|(r, _)| r.id.len())
                .max()
                .unwrap_or(2)
                .max(2);
            output::stdout(|out| {
                writeln!(
                    out,
                    "{:width$}   {:<8} {:<10} {:<40} {:<31} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                )?;
                for (r, s) in &rows {
                    let pid = if *s == rvisor_cli::oci::state::Status::Stopped {
                        0
                    } else {
                        r.pid
                    };
                    writeln!(
                        out,
                        "{:width$}   {:<8} {:<10} {:<40} {:<31} {}",
                        r.id,
                        pid,
                        s.as_str(),
                        r.bundle.display(),
                        r.created,
                        r.owner
                    )?;
                }
                Ok(())
            })?;
        }
    }
    Ok(0)
}
