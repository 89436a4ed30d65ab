//! `rvisor syscalls`: print the syscall table the sentry enforces.

use clap::Args;
use sentry::syscalls::{Action, Continues, TABLE, TABLE_VERSION};

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

/// Prints the table (a reader that stops early, such as `head`, ends it quietly: see `main`).
pub fn run(args: &SyscallsArgs) -> anyhow::Result<i32> {
    crate::output::stdout(|out| print(out, args))?;
    Ok(0)
}

/// When a trapped call may go back to the kernel, in a word.
fn class(e: &sentry::syscalls::Entry) -> &'static str {
    match (&e.action, e.continues) {
        (Action::Native, _) => "-",
        (Action::Denied(_), _) | (_, Continues::Never) => "never",
        (_, Continues::OnRegisters) => "registers",
        (_, Continues::InGuestView) => "guest-view",
    }
}

fn print(out: &mut impl std::io::Write, args: &SyscallsArgs) -> std::io::Result<()> {
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
        return Ok(());
    }
    writeln!(
        out,
        "# rvisor syscall table v{TABLE_VERSION} (x86_64); unknown numbers: trapped+denied(ENOSYS)"
    )?;
    writeln!(
        out,
        "# CONTINUES: when a trapped call may run on the host kernel after the sentry's check:"
    )?;
    writeln!(
        out,
        "#   never (emulated or refused), registers (a decision on register arguments only),"
    )?;
    writeln!(
        out,
        "#   guest-view (a path call, resolved by the kernel in the guest's read-only view)"
    )?;
    writeln!(out, "{:<5} {:<24} {:<11} ACTION", "NR", "NAME", "CONTINUES")?;
    let mut counts = [0usize; 5];
    for e in TABLE.iter() {
        let slot = match (&e.action, e.continues) {
            (Action::Native, _) => 0,
            (Action::Guarded { .. }, _) => 1,
            (Action::Denied(_), _) | (_, Continues::Never) => 2,
            (_, Continues::OnRegisters) => 3,
            (_, Continues::InGuestView) => 4,
        };
        counts[slot] += 1;
        if args.trapped && matches!(e.action, Action::Native) {
            continue;
        }
        writeln!(
            out,
            "{:<5} {:<24} {:<11} {}",
            e.nr,
            e.name,
            class(e),
            e.action.describe()
        )?;
    }
    writeln!(
        out,
        "# {} calls: {} native, {} native under an argument guard, {} always trapped \
         ({} never continued, {} on registers, {} into the guest's view)",
        TABLE.iter().count(),
        counts[0],
        counts[1],
        counts[2] + counts[3] + counts[4],
        counts[2],
        counts[3],
        counts[4]
    )?;
    Ok(())
}
