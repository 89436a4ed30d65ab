//! Builds the guest's seccomp filter from the syscall table, and installs it.
//!
//! seccompiler has no user-notify action and cannot hand back a listener, so the trapped calls
//! are compiled with a sentinel `Trace(SENTINEL)` action that is rewritten afterwards to the
//! platform's real return value, and the program is installed here with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER`.

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use seccompiler::{
    sock_filter, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::syscalls::{Action, Cond, TABLE};

/// A compiled BPF program.
pub use seccompiler::BpfProgram;

/// Return data that marks "trap this call" in the compiled program before rewriting.
pub const SENTINEL: u32 = 0x5A5A;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
/// Syscall numbers at or above this are the x32 ABI, which the table does not describe.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Errors building or installing the filter.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// seccompiler rejected the rules.
    #[error("compiling the seccomp filter: {0}")]
    Compile(#[from] seccompiler::BackendError),
    /// The sentinel never appeared in the compiled program.
    #[error("the compiled seccomp filter has no trapped call")]
    NoSentinel,
    /// The kernel refused the filter.
    #[error("installing the seccomp filter: {0}")]
    Install(Errno),
}

/// What a trapped call's `RET` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapReturn {
    /// `SECCOMP_RET_USER_NOTIF`: the call waits for the listener.
    UserNotif,
    /// `SECCOMP_RET_TRACE`: the call stops the tracer's tracee.
    Trace,
}

fn condition(c: &Cond) -> Result<SeccompCondition, seccompiler::BackendError> {
    let (op, value) = match *c {
        Cond::MaskedEq {
            arg: _,
            mask,
            value,
        } => (SeccompCmpOp::MaskedEq(mask), value),
        Cond::Ne { arg: _, value } => (SeccompCmpOp::Ne, value),
    };
    SeccompCondition::new(c.arg(), SeccompCmpArgLen::Dword, op, value)
}

/// Compiles the table into a BPF program: the native calls are allowed (under their argument
/// guards), everything else traps, other ABIs kill.
pub fn compile(ret: TrapReturn) -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for entry in TABLE.iter() {
        match &entry.action {
            Action::Native => {
                rules.insert(entry.nr, Vec::new());
            }
            Action::Guarded { allow_when, .. } => {
                let conds = allow_when
                    .iter()
                    .map(condition)
                    .collect::<Result<Vec<_>, _>>()?;
                rules.insert(entry.nr, vec![SeccompRule::new(conds)?]);
            }
            Action::Emulated(_) | Action::Denied(_) => {}
        }
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trace(SENTINEL),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    let compiled: BpfProgram = filter.try_into()?;
    rewrite(compiled, ret)
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn rewrite(compiled: BpfProgram, ret: TrapReturn) -> Result<BpfProgram, FilterError> {
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    // x32 calls share the x86_64 AUDIT_ARCH and would bypass the table: kill them first.
    let mut prog = vec![
        stmt(LD_W_ABS, 0),
        sock_filter {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(RET_K, SECCOMP_RET_KILL_PROCESS),
    ];
    let to = match ret {
        TrapReturn::UserNotif => SECCOMP_RET_USER_NOTIF,
        TrapReturn::Trace => SECCOMP_RET_TRACE,
    };
    let mut seen = false;
    for mut insn in compiled {
        if insn.code == RET_K && insn.k == SECCOMP_RET_TRACE | SENTINEL {
            insn.k = to;
            seen = true;
        }
        prog.push(insn);
    }
    if seen {
        Ok(prog)
    } else {
        Err(FilterError::NoSentinel)
    }
}

/// Installs `prog` on the calling thread (and its future children) and returns the listener.
/// Sets no_new_privs first, as unprivileged filters require.
pub fn install_with_listener(prog: &BpfProgram) -> Result<OwnedFd, FilterError> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| FilterError::Install(Errno::E2BIG))?,
        filter: prog.as_ptr().cast_mut().cast(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(FilterError::Install(Errno::last()));
    }
    // SAFETY: `fprog` points at `prog`, which outlives the call; seccompiler's sock_filter has
    // the kernel's layout (repr(C) u16,u8,u8,u32).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            std::ptr::addr_of!(fprog),
        )
    };
    if fd < 0 {
        return Err(FilterError::Install(Errno::last()));
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_filter_has_no_sentinel_left_and_kills_x32() {
        let prog = compile(TrapReturn::UserNotif).unwrap();
        assert!(prog.len() < 4096, "BPF program too long: {}", prog.len());
        assert!(prog.iter().all(|i| i.k != SECCOMP_RET_TRACE | SENTINEL));
        assert!(prog
            .iter()
            .any(|i| i.code == 0x06 && i.k == SECCOMP_RET_USER_NOTIF));
        assert_eq!(prog[1].k, X32_SYSCALL_BIT);
        assert_eq!(prog[2].k, SECCOMP_RET_KILL_PROCESS);
    }

    #[test]
    fn trace_return_is_used_for_ptrace() {
        let prog = compile(TrapReturn::Trace).unwrap();
        assert!(prog
            .iter()
            .any(|i| i.code == 0x06 && i.k == SECCOMP_RET_TRACE));
        assert!(!prog.iter().any(|i| i.k == SECCOMP_RET_USER_NOTIF));
    }
}
