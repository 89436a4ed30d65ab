//! `rvisor syscalls`: print the syscall table the sentry enforces.

use clap::Args;
use sentry::syscalls::{Action, TABLE, TABLE_VERSION};

/// Print every system call with its number and what the sandbox does with it.
#[derive(Debug, Args)]
pub struct SyscallsArgs {
    /// Only the calls that trap into the sentry.
    #[arg(long)]
    trapped: bool,
    /// The gofer's own allowlist instead (everything else fails with EPERM in the gofer).
    #[arg(long, conflicts_with = "trapped")]
    gofer: bool,
}

/// Prints the table.
pub fn run(args: &SyscallsArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.gofer {
        writeln!(
            out,
            "# rvisor gofer seccomp allowlist (x86_64); any other call: EPERM"
        )?;
        writeln!(out, "{:<5} NAME", "NR")?;
        let mut allowed = gofer::filter::ALLOWED.to_vec();
        allowed.sort();
        for (nr, name) in allowed {
            writeln!(out, "{nr:<5} {name}")?;
        }
        return Ok(0);
    }
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
