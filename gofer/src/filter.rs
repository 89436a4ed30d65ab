//! The gofer's own seccomp filter: an allowlist of what serving requests takes; anything else
//! fails with EPERM. Installed on every gofer thread, after setup, once.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Calls the gofer may make once serving, by name (for `rvisor syscalls --gofer`) and number.
pub const ALLOWED: &[(i64, &str)] = &[
    // The request socket.
    (libc::SYS_recvmsg, "recvmsg"),
    (libc::SYS_sendmsg, "sendmsg"),
    (libc::SYS_close, "close"),
    // Confined lookups and the operations on what they found.
    (libc::SYS_openat2, "openat2"),
    (libc::SYS_fstat, "fstat"),
    (libc::SYS_newfstatat, "newfstatat"),
    (libc::SYS_statx, "statx"),
    (libc::SYS_fstatfs, "fstatfs"),
    (libc::SYS_readlinkat, "readlinkat"),
    (libc::SYS_faccessat2, "faccessat2"),
    (libc::SYS_fcntl, "fcntl"),
    (libc::SYS_mkdirat, "mkdirat"),
    (libc::SYS_mknodat, "mknodat"),
    (libc::SYS_unlinkat, "unlinkat"),
    (libc::SYS_renameat2, "renameat2"),
    (libc::SYS_linkat, "linkat"),
    (libc::SYS_symlinkat, "symlinkat"),
    (452, "fchmodat2"),
    (libc::SYS_fchownat, "fchownat"),
    (libc::SYS_utimensat, "utimensat"),
    (libc::SYS_ftruncate, "ftruncate"),
    // truncate(2) from inside the parent, under the guest's RLIMIT_FSIZE (prlimit64 on the
    // gofer itself only: see `compile`).
    (libc::SYS_truncate, "truncate"),
    (libc::SYS_prlimit64, "prlimit64"),
    // Binding a guest's Unix socket from inside its parent directory.
    (libc::SYS_bind, "bind"),
    (libc::SYS_fchdir, "fchdir"),
    (libc::SYS_chdir, "chdir"),
    (libc::SYS_umask, "umask"),
    (463, "setxattrat"),
    (464, "getxattrat"),
    (465, "listxattrat"),
    (466, "removexattrat"),
    // Acting as the guest.
    (libc::SYS_setfsuid, "setfsuid"),
    (libc::SYS_setfsgid, "setfsgid"),
    // Taking on a request's groups and file capabilities (this thread only).
    (libc::SYS_setgroups, "setgroups"),
    (libc::SYS_capget, "capget"),
    (libc::SYS_capset, "capset"),
    // Waiting for the guest init and passing on signals.
    (libc::SYS_wait4, "wait4"),
    (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
    (libc::SYS_kill, "kill"),
    // A container's init is not the gofer's child: it watches a pidfd for its end, and kills
    // it through that pidfd when the sentry goes.
    (libc::SYS_poll, "poll"),
    (libc::SYS_ppoll, "ppoll"),
    // The kernel's continuation of a wait that a stop interrupted (a container paused and
    // resumed through the freezer): refused, the wait failed with EPERM and the gofer's
    // watch thread panicked, which ends the sandbox.
    (libc::SYS_restart_syscall, "restart_syscall"),
    (libc::SYS_pidfd_send_signal, "pidfd_send_signal"),
    // The runtime: memory, threads, logging, exit.
    (libc::SYS_brk, "brk"),
    (libc::SYS_mmap, "mmap"),
    (libc::SYS_munmap, "munmap"),
    (libc::SYS_mremap, "mremap"),
    (libc::SYS_mprotect, "mprotect"),
    (libc::SYS_madvise, "madvise"),
    (libc::SYS_futex, "futex"),
    (libc::SYS_sched_yield, "sched_yield"),
    (libc::SYS_rt_sigprocmask, "rt_sigprocmask"),
    (libc::SYS_rt_sigreturn, "rt_sigreturn"),
    (libc::SYS_sigaltstack, "sigaltstack"),
    (libc::SYS_getpid, "getpid"),
    (libc::SYS_gettid, "gettid"),
    (libc::SYS_tgkill, "tgkill"),
    (libc::SYS_clock_gettime, "clock_gettime"),
    (libc::SYS_getrandom, "getrandom"),
    (libc::SYS_write, "write"),
    (libc::SYS_writev, "writev"),
    (libc::SYS_exit, "exit"),
    (libc::SYS_exit_group, "exit_group"),
];

/// Errors of building or installing the filter.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// seccompiler refused the rules or the kernel the program.
    #[error("gofer seccomp filter: {0}")]
    Seccomp(#[from] seccompiler::Error),
    /// seccompiler's backend refused the rules.
    #[error("gofer seccomp filter: {0}")]
    Backend(#[from] seccompiler::BackendError),
}

/// Compiles the allowlist. `prlimit64` is allowed on the gofer itself only (pid 0): the gofer
/// is host root, and another root process's limits are not its business.
pub fn compile() -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        ALLOWED.iter().map(|&(nr, _)| (nr, Vec::new())).collect();
    let own = seccompiler::SeccompCondition::new(
        0,
        seccompiler::SeccompCmpArgLen::Dword,
        seccompiler::SeccompCmpOp::Eq,
        0,
    )?;
    rules.insert(
        libc::SYS_prlimit64,
        vec![seccompiler::SeccompRule::new(vec![own])?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    Ok(filter.try_into()?)
}

/// Installs the filter on every thread of the gofer (no_new_privs is set by seccompiler).
pub fn install() -> Result<(), FilterError> {
    let prog = compile()?;
    seccompiler::apply_filter_all_threads(&prog)?;
    Ok(())
}
