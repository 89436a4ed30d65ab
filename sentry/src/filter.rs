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

use crate::syscalls::{Action, Cond, Entry, TABLE};

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

/// How the guest's opens for reading are served: the filter lets regular-file reads run natively
/// only where the guest is held to its root by Landlock ([`crate::landlock`]); directories run
/// natively either way (a directory fd from outside is disarmed at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOpens {
    /// The guest is confined by Landlock: every open for reading runs natively.
    Native,
    /// No Landlock: opens of anything but a directory for reading trap.
    Trapped,
}

impl ReadOpens {
    /// `Native` where this kernel has Landlock (the guest init then must apply it, or fail).
    /// Asked once per process tree: the runtime asks before it forks the sentry, which then
    /// knows how the guest's filter was compiled.
    pub fn here() -> Self {
        static HERE: std::sync::OnceLock<ReadOpens> = std::sync::OnceLock::new();
        *HERE.get_or_init(|| {
            if crate::landlock::available() {
                ReadOpens::Native
            } else {
                ReadOpens::Trapped
            }
        })
    }
}

fn condition(c: &Cond, reads: ReadOpens) -> Result<SeccompCondition, seccompiler::BackendError> {
    let c = c.resolve(reads);
    let (op, value) = match *c {
        Cond::MaskedEq {
            arg: _,
            mask,
            value,
        } => (SeccompCmpOp::MaskedEq(mask), value),
        Cond::Ne { arg: _, value } => (SeccompCmpOp::Ne, value),
        // `resolve` leaves no choice behind.
        Cond::Confined { .. } => return Err(seccompiler::BackendError::InvalidArgumentNumber),
    };
    SeccompCondition::new(c.arg(), SeccompCmpArgLen::Dword, op, value)
}

/// Compiles the table into a BPF program: the native calls are allowed (under their argument
/// guards), everything else traps, other ABIs kill.
///
/// seccompiler lays rules out as one chain in syscall-number order, so a trapped call (or a
/// guarded native one such as glibc's fstat) would walk hundreds of comparisons. The program is
/// therefore a binary search over the syscall-number ranges of the table, whose leaves allow,
/// trap, or jump into a seccompiler program holding only the guarded calls' argument checks.
/// [`compile_linear`] builds the same policy as a single seccompiler chain; the tests check the
/// two agree on every number and on arguments around every guard.
pub fn compile(ret: TrapReturn, reads: ReadOpens) -> Result<BpfProgram, FilterError> {
    let trap = trap_return(ret);
    let mut classes: Vec<(u32, Class)> = Vec::new();
    let max = TABLE.iter().map(|e| e.nr).max().unwrap_or(0) as u32;
    for nr in 0..=max + 1 {
        let class = match TABLE.get(i64::from(nr)).action {
            Action::Native => Class::Allow,
            Action::Guarded { .. } => Class::Guarded,
            Action::Emulated(_) | Action::Denied(_) => Class::Trap,
        };
        if classes.last().map(|c| c.1) != Some(class) {
            classes.push((nr, class));
        }
    }
    // One seccompiler program per run of guarded numbers, so that a guarded call checks its own
    // arguments only, not every guarded call's before it.
    let mut sections = Vec::new();
    for (i, &(start, class)) in classes.iter().enumerate() {
        if class == Class::Guarded {
            let end = classes.get(i + 1).map_or(u32::MAX, |c| c.0);
            let range = i64::from(start)..i64::from(end);
            let prog = seccompiler_program(reads, |e| {
                range.contains(&e.nr) && matches!(e.action, Action::Guarded { .. })
            })?;
            sections.push(rewrite_sentinel(prog, ret)?);
        }
    }
    let mut tree = Vec::new();
    emit_tree(&classes, trap, &mut tree, &mut 0);
    let mut prog = prelude();
    if ret == TrapReturn::Trace {
        prog.extend(reserved_fd_guard(trap));
    }
    let mut starts = Vec::with_capacity(sections.len());
    let mut at = prog.len() + tree.len();
    for section in &sections {
        starts.push(at);
        at += section.len();
    }
    for mut insn in tree {
        if insn.code == JA && insn.k >= TO_GUARDED - MAX_SECTIONS {
            let section = (TO_GUARDED - insn.k) as usize;
            insn.k = (starts[section] - (prog.len() + 1)) as u32;
        }
        prog.push(insn);
    }
    for section in sections {
        prog.extend(section);
    }
    if prog.len() > 4096 {
        return Err(FilterError::Install(Errno::E2BIG));
    }
    Ok(prog)
}

/// The same policy as one seccompiler chain (the reference for [`compile`]).
pub fn compile_linear(ret: TrapReturn, reads: ReadOpens) -> Result<BpfProgram, FilterError> {
    let mut prog = prelude();
    if ret == TrapReturn::Trace {
        prog.extend(reserved_fd_guard(trap_return(ret)));
    }
    let all = seccompiler_program(reads, |e| {
        matches!(e.action, Action::Native | Action::Guarded { .. })
    })?;
    prog.extend(rewrite_sentinel(all, ret)?);
    Ok(prog)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Allow,
    Trap,
    Guarded,
}

const LD_W_ABS: u16 = 0x20;
const JGE_K: u16 = 0x35;
const JEQ_K: u16 = 0x15;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// Placeholder target of a leaf that jumps to a guarded run's section: `TO_GUARDED - n` for the
/// `n`th run.
const TO_GUARDED: u32 = u32::MAX;
/// More runs of guarded numbers than the table could ever have.
const MAX_SECTIONS: u32 = 4096;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

fn trap_return(ret: TrapReturn) -> u32 {
    match ret {
        TrapReturn::UserNotif => SECCOMP_RET_USER_NOTIF,
        TrapReturn::Trace => SECCOMP_RET_TRACE,
    }
}

/// Kills other ABIs: a foreign AUDIT_ARCH, and x32 numbers (which share x86_64's AUDIT_ARCH
/// and would bypass the table). Leaves the syscall number loaded.
fn prelude() -> BpfProgram {
    vec![
        stmt(LD_W_ABS, 4),
        sock_filter {
            code: JEQ_K,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH_X86_64,
        },
        stmt(RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(LD_W_ABS, 0),
        sock_filter {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(RET_K, SECCOMP_RET_KILL_PROCESS),
    ]
}

/// ptrace only: traps every call whose fd arguments (the first two, and the third of the calls
/// that take one there) may name the reserved fd, and the calls the tracer always polices
/// (`close_range`, `getdents*`). Expects the syscall number loaded, and leaves it loaded.
fn reserved_fd_guard(trap: u32) -> BpfProgram {
    use crate::platform::ptrace::reserved::{ALWAYS_TRAPPED, FD_IN_ARG2, RESERVED_FD};
    let reserved = RESERVED_FD as u32;
    let low_word = |arg: u32| stmt(LD_W_ABS, 16 + 8 * arg);
    let jeq = |k: u32, jt: usize| sock_filter {
        code: JEQ_K,
        jt: jt as u8,
        jf: 0,
        k,
    };
    // [always..][arg2 calls..][ja args01][ld a2][jeq][ld a0][jeq][ld a1][jeq][ld nr][ja 1][ret]
    let arg2_at = ALWAYS_TRAPPED.len() + FD_IN_ARG2.len() + 1;
    let args01_at = arg2_at + 2;
    let trap_at = args01_at + 6;
    let mut p = Vec::new();
    for nr in ALWAYS_TRAPPED {
        p.push(jeq(nr as u32, trap_at - p.len() - 1));
    }
    for nr in FD_IN_ARG2 {
        p.push(jeq(nr as u32, arg2_at - p.len() - 1));
    }
    p.push(stmt(JA, (args01_at - p.len() - 1) as u32));
    p.push(low_word(2));
    p.push(jeq(reserved, trap_at - p.len() - 1));
    for arg in [0, 1] {
        p.push(low_word(arg));
        p.push(jeq(reserved, trap_at - p.len() - 1));
    }
    p.push(stmt(LD_W_ABS, 0));
    p.push(stmt(JA, 1));
    debug_assert_eq!(p.len(), trap_at);
    p.push(stmt(RET_K, trap));
    p
}

/// A binary search over `ranges` (each from its start to the next one's): each node is
/// `JGE pivot` then a `JA` over the left subtree to the right one.
fn emit_tree(ranges: &[(u32, Class)], trap: u32, out: &mut BpfProgram, guarded: &mut u32) {
    if let [(_, class)] = ranges {
        out.push(match class {
            Class::Allow => stmt(RET_K, SECCOMP_RET_ALLOW),
            Class::Trap => stmt(RET_K, trap),
            Class::Guarded => {
                // Patched to the jump to this run's own section (`compile`).
                let leaf = stmt(JA, TO_GUARDED - *guarded);
                *guarded += 1;
                leaf
            }
        });
        return;
    }
    let mid = ranges.len() / 2;
    let mut left = Vec::new();
    emit_tree(&ranges[..mid], trap, &mut left, guarded);
    out.push(sock_filter {
        code: JGE_K,
        jt: 0,
        jf: 1,
        k: ranges[mid].0,
    });
    out.push(stmt(JA, left.len() as u32));
    out.extend(left);
    emit_tree(&ranges[mid..], trap, out, guarded);
}

/// seccompiler's program for the entries `pick` selects: allowed under their guards, anything
/// else the sentinel.
fn seccompiler_program(
    reads: ReadOpens,
    pick: impl Fn(&Entry) -> bool,
) -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for entry in TABLE.iter().filter(|e| pick(e)) {
        match &entry.action {
            Action::Guarded { allow_when, .. } => {
                let conds = allow_when
                    .iter()
                    .map(|c| condition(c, reads))
                    .collect::<Result<Vec<_>, _>>()?;
                rules.insert(entry.nr, vec![SeccompRule::new(conds)?]);
            }
            _ => {
                rules.insert(entry.nr, Vec::new());
            }
        }
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trace(SENTINEL),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    Ok(filter.try_into()?)
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Turns seccompiler's sentinel returns into the platform's trap.
fn rewrite_sentinel(compiled: BpfProgram, ret: TrapReturn) -> Result<BpfProgram, FilterError> {
    let to = trap_return(ret);
    let mut seen = false;
    let prog = compiled
        .into_iter()
        .map(|mut insn| {
            if insn.code == RET_K && insn.k == SECCOMP_RET_TRACE | SENTINEL {
                insn.k = to;
                seen = true;
            }
            insn
        })
        .collect();
    if seen {
        Ok(prog)
    } else {
        Err(FilterError::NoSentinel)
    }
}

/// Whether installing a filter sets no_new_privs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoNewPrivs {
    /// Set it (what an unprivileged caller needs, and the safe default).
    Set,
    /// Leave it as it is: the caller holds CAP_SYS_ADMIN in its user namespace, which the kernel
    /// requires of a filter installed without it (an OCI spec's `noNewPrivileges: false`).
    Leave,
}

/// Installs `prog` on the calling thread (and its future children), with no listener (the
/// ptrace platform: trapped calls stop the tracee).
pub fn install(prog: &BpfProgram) -> Result<(), FilterError> {
    install_as(prog, NoNewPrivs::Set)
}

/// [`install`], setting no_new_privs or not.
pub fn install_as(prog: &BpfProgram, nnp: NoNewPrivs) -> Result<(), FilterError> {
    install_flags(prog, 0, nnp).map(drop)
}

/// Installs `prog` on the calling thread (and its future children) and returns the listener.
pub fn install_with_listener(prog: &BpfProgram) -> Result<OwnedFd, FilterError> {
    install_with_listener_as(prog, NoNewPrivs::Set)
}

/// [`install_with_listener`], setting no_new_privs or not.
pub fn install_with_listener_as(
    prog: &BpfProgram,
    nnp: NoNewPrivs,
) -> Result<OwnedFd, FilterError> {
    // Once the sentry has received a call, only a fatal signal ends the caller's wait (as a
    // ptrace stop holds it): a handled one waits for the reply. Otherwise it would abandon a
    // call whose effects the sentry has begun, so a restarted O_EXCL open would fail with
    // EEXIST, a regular file's open could end in EINTR, and an fd installed just before the
    // reply would be left in the guest unseen. Linux 5.19; without it, as before.
    let fd = install_flags(
        prog,
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        nnp,
    )
    .or_else(|e| match e {
        FilterError::Install(Errno::EINVAL) => {
            install_flags(prog, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, nnp)
        }
        e => Err(e),
    })?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Installs `prog` with seccomp `flags`; returns what the call returned.
/// Sets no_new_privs first unless told to leave it (unprivileged filters require it).
fn install_flags(
    prog: &BpfProgram,
    flags: libc::c_ulong,
    nnp: NoNewPrivs,
) -> Result<i32, FilterError> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| FilterError::Install(Errno::E2BIG))?,
        filter: prog.as_ptr().cast_mut().cast(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if nnp == NoNewPrivs::Set && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0
    {
        return Err(FilterError::Install(Errno::last()));
    }
    // SAFETY: `fprog` points at `prog`, which outlives the call; seccompiler's sock_filter has
    // the kernel's layout (repr(C) u16,u8,u8,u32).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::addr_of!(fprog),
        )
    };
    if fd < 0 {
        return Err(FilterError::Install(Errno::last()));
    }
    Ok(fd as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cBPF subset seccomp filters use, over a `struct seccomp_data` (nr, arch, ip, args).
    /// Returns the action and how many instructions ran.
    fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
        let load = |off: u32| -> u32 {
            match off {
                0 => nr,
                4 => arch,
                16..=63 => {
                    let arg = args[(off as usize - 16) / 8];
                    if off.is_multiple_of(8) {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                _ => panic!("load at {off}"),
            }
        };
        let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
        loop {
            let i = &prog[pc];
            pc += 1;
            steps += 1;
            let jump = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
            match i.code {
                0x20 => a = load(i.k),
                0x54 => a &= i.k,
                0x05 => pc += i.k as usize,
                0x15 => pc += jump(a == i.k),
                0x25 => pc += jump(a > i.k),
                0x35 => pc += jump(a >= i.k),
                0x45 => pc += jump(a & i.k != 0),
                0x06 => return (i.k, steps),
                c => panic!("opcode {c:#x} at {}", pc - 1),
            }
        }
    }

    /// Argument values around each of a guarded call's conditions, with and without garbage in
    /// the upper half (the guards compare 32 bits).
    fn arg_patterns(entry: &crate::syscalls::Entry) -> Vec<[u64; 6]> {
        let Action::Guarded { allow_when, .. } = entry.action else {
            return vec![[0; 6]];
        };
        let mut out = vec![[0u64; 6], [u64::MAX; 6]];
        let plain = allow_when
            .iter()
            .flat_map(|c| [c.resolve(ReadOpens::Native), c.resolve(ReadOpens::Trapped)]);
        for c in plain {
            let (mask, value) = match *c {
                Cond::MaskedEq { mask, value, .. } => (mask, value),
                Cond::Ne { value, .. } => (u64::from(u32::MAX), value),
                Cond::Confined { .. } => unreachable!("resolved"),
            };
            for v in [
                value,
                value ^ 1,
                mask,
                mask & !value,
                !mask & 0xffff_ffff,
                value | (!mask & 0xffff_ffff),
                1 << 31,
            ] {
                for high in [0u64, 0xdead_beef << 32] {
                    let mut args = [0u64; 6];
                    args[c.arg() as usize] = v | high;
                    out.push(args);
                }
            }
        }
        out
    }

    #[test]
    fn binary_search_filter_matches_the_linear_one_everywhere() {
        let modes = [TrapReturn::UserNotif, TrapReturn::Trace]
            .into_iter()
            .flat_map(|ret| [(ret, ReadOpens::Native), (ret, ReadOpens::Trapped)]);
        for (ret, reads) in modes {
            let fast = compile(ret, reads).unwrap();
            let linear = compile_linear(ret, reads).unwrap();
            let mut checked = 0;
            for arch in [AUDIT_ARCH_X86_64, 0x4000_0003, 0] {
                let numbers = (0..1024u32).chain([
                    X32_SYSCALL_BIT,
                    X32_SYSCALL_BIT + 1,
                    0x7fff_ffff,
                    u32::MAX,
                ]);
                for nr in numbers {
                    let entry = TABLE.get(i64::from(nr));
                    for args in arg_patterns(entry) {
                        let (a, _) = run(&fast, nr, arch, args);
                        let (b, _) = run(&linear, nr, arch, args);
                        assert_eq!(a, b, "nr {nr} arch {arch:#x} args {args:x?}");
                        checked += 1;
                    }
                }
            }
            assert!(checked > 3000);
        }
    }

    #[test]
    fn trapped_and_guarded_calls_run_a_short_path() {
        let fast = compile(TrapReturn::UserNotif, ReadOpens::Trapped).unwrap();
        let linear = compile_linear(TrapReturn::UserNotif, ReadOpens::Trapped).unwrap();
        let steps = |prog: &[sock_filter], name: &str, args: [u64; 6]| {
            run(
                prog,
                TABLE.by_name(name).unwrap().nr as u32,
                AUDIT_ARCH_X86_64,
                args,
            )
            .1
        };
        let fstat = [1, 0, 0, libc::AT_EMPTY_PATH as u64, 0, 0];
        for (name, args) in [
            ("getppid", [0; 6]),
            ("openat", [0; 6]),
            ("newfstatat", fstat),
        ] {
            let (f, l) = (steps(&fast, name, args), steps(&linear, name, args));
            assert!(f < 40 && f * 4 < l, "{name}: {f} instructions against {l}");
        }
    }

    #[test]
    fn compiled_filter_has_no_sentinel_left_and_kills_other_abis() {
        let prog = compile(TrapReturn::UserNotif, ReadOpens::Trapped).unwrap();
        assert!(prog.len() < 4096, "BPF program too long: {}", prog.len());
        assert!(prog.iter().all(|i| i.k != SECCOMP_RET_TRACE | SENTINEL));
        assert!(prog
            .iter()
            .any(|i| i.code == 0x06 && i.k == SECCOMP_RET_USER_NOTIF));
        assert_eq!(
            run(&prog, 39, 0x4000_0003, [0; 6]).0,
            SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            run(&prog, X32_SYSCALL_BIT | 39, AUDIT_ARCH_X86_64, [0; 6]).0,
            SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            run(&prog, 0, AUDIT_ARCH_X86_64, [0; 6]).0,
            SECCOMP_RET_ALLOW,
            "read is native"
        );
        assert_eq!(
            run(&prog, 110, AUDIT_ARCH_X86_64, [0; 6]).0,
            SECCOMP_RET_USER_NOTIF,
            "getppid traps"
        );
        assert_eq!(
            run(&prog, 9999, AUDIT_ARCH_X86_64, [0; 6]).0,
            SECCOMP_RET_USER_NOTIF,
            "unknown traps"
        );
    }

    #[test]
    fn under_ptrace_calls_that_may_name_the_reserved_fd_trap() {
        use crate::platform::ptrace::reserved::RESERVED_FD;
        let prog = compile(TrapReturn::Trace, ReadOpens::Trapped).unwrap();
        let r = RESERVED_FD as u64;
        let ret = |name: &str, args: [u64; 6]| {
            let nr = TABLE.by_name(name).unwrap().nr as u32;
            run(&prog, nr, AUDIT_ARCH_X86_64, args).0
        };
        assert_eq!(ret("close", [r, 0, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(ret("dup2", [0, r, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(ret("epoll_ctl", [3, 1, r, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(ret("getdents64", [3, 0, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(ret("close_range", [3, 9, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(ret("close", [3, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(ret("write", [1, 0, r, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(ret("getppid", [0; 6]), SECCOMP_RET_TRACE);
        // The seccomp-notify filter has no such rules.
        let notify = compile(TrapReturn::UserNotif, ReadOpens::Trapped).unwrap();
        let nr = TABLE.by_name("close").unwrap().nr as u32;
        assert_eq!(
            run(&notify, nr, AUDIT_ARCH_X86_64, [r, 0, 0, 0, 0, 0]).0,
            SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn the_escape_guards_trap_what_they_must() {
        for ret in [TrapReturn::UserNotif, TrapReturn::Trace] {
            let prog = compile(ret, ReadOpens::Native).unwrap();
            let trap = trap_return(ret);
            let verdict = |name: &str, args: [u64; 6]| {
                let nr = TABLE.by_name(name).unwrap().nr as u32;
                run(&prog, nr, AUDIT_ARCH_X86_64, args).0
            };
            let untraced = libc::CLONE_UNTRACED as u64;
            let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
            assert_eq!(verdict("clone", [thread, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
            assert_eq!(verdict("clone", [thread | untraced, 0, 0, 0, 0, 0]), trap);
            assert_eq!(
                verdict("clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
                trap
            );
            assert_eq!(verdict("clone3", [0x1000, 88, 0, 0, 0, 0]), trap);
            // seccomp(SET_MODE_FILTER, NEW_LISTENER, prog) traps; a plain filter stacks natively.
            assert_eq!(verdict("seccomp", [1, 8, 0x1000, 0, 0, 0]), trap);
            assert_eq!(
                verdict("seccomp", [1, 0, 0x1000, 0, 0, 0]),
                SECCOMP_RET_ALLOW
            );
            // sendto with an address traps, whatever the pointer's low word; without, native.
            let buf = 0x7000_0000;
            for addr in [0x1000u64, 0x1_0000_0000, 0xffff_0000_0000] {
                assert_eq!(
                    verdict("sendto", [3, buf, 1, 0, addr, 16]),
                    trap,
                    "{addr:#x}"
                );
            }
            assert_eq!(verdict("sendto", [3, buf, 1, 0, 0, 0]), SECCOMP_RET_ALLOW);
            for name in ["connect", "sendmsg", "sendmmsg"] {
                assert_eq!(verdict(name, [3, buf, 16, 0, 0, 0]), trap, "{name}");
            }
        }
    }

    #[test]
    fn regular_files_open_natively_for_reading_only_under_landlock() {
        let rd = libc::O_RDONLY as u64;
        let dir = libc::O_DIRECTORY as u64;
        let cases = [
            rd,
            rd | libc::O_CLOEXEC as u64 | libc::O_NOFOLLOW as u64,
            rd | dir,
            libc::O_WRONLY as u64,
            libc::O_RDWR as u64 | dir,
            rd | libc::O_CREAT as u64,
            rd | libc::O_TRUNC as u64,
            rd | libc::O_PATH as u64,
            rd | libc::O_PATH as u64 | dir,
            libc::O_TMPFILE as u64 | libc::O_RDWR as u64,
            3,
        ];
        for ret in [TrapReturn::UserNotif, TrapReturn::Trace] {
            let trap = trap_return(ret);
            for reads in [ReadOpens::Native, ReadOpens::Trapped] {
                let prog = compile(ret, reads).unwrap();
                for flags in cases {
                    let reading = flags & libc::O_ACCMODE as u64 == 0
                        && flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_PATH) as u64 == 0;
                    let native = reading && (reads == ReadOpens::Native || flags & dir != 0);
                    let want = if native { SECCOMP_RET_ALLOW } else { trap };
                    for (name, arg) in [("open", 1), ("openat", 2)] {
                        let mut args = [3u64, 0x1000, 0x1000, 0, 0, 0];
                        args[arg] = flags;
                        let nr = TABLE.by_name(name).unwrap().nr as u32;
                        let got = run(&prog, nr, AUDIT_ARCH_X86_64, args).0;
                        assert_eq!(got, want, "{name} {flags:#o} {reads:?} {ret:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn trace_return_is_used_for_ptrace() {
        let prog = compile(TrapReturn::Trace, ReadOpens::Trapped).unwrap();
        assert!(prog
            .iter()
            .any(|i| i.code == 0x06 && i.k == SECCOMP_RET_TRACE));
        assert!(!prog.iter().any(|i| i.k == SECCOMP_RET_USER_NOTIF));
    }
}
