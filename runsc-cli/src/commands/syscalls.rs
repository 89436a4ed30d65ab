//! `rvisor syscalls`: print the syscall table the sentry enforces.

use clap::Args;
use sentry::syscalls::{Action, TABLE, TABLE_VERSION};

/// Print every system call with its number and what the sandbox does with it.
#[derive(Debug, Args)]
pub struct SyscallsArgs {
    /// Only the calls that trap into the sentry.
    #[arg(long)]
    trapped: bool,
}

/// Prints the table.
pub fn run(args: &SyscallsArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# rvisor syscall table v{TABLE_VERSION} (x86_64); unknown numbers: trapped+denied(ENOSYS)"
    )?;
    writeln!(out, "{:<5} {:<24} ACTION", "NR", "NAME")?;
    for e in TABLE.iter() {
        if args.trapped && matches!(e.action, Action::Native) {
            continue;
        }
        writeln!(out, "{:<5} {:<24} {}", e.nr, e.name, e.action.describe())?;
    }
    Ok(0)
}
