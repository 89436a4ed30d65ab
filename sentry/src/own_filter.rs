//! The sentry's own seccomp filter: what a sentry never needs once serving, and what an attacker
//! who took it over would want first. Built once, installed on every sentry thread before the
//! workers start.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Calls refused (EPERM) to the sentry itself.
pub const DENIED: &[(i64, &str)] = &[
    (libc::SYS_execve, "execve"),
    (libc::SYS_execveat, "execveat"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_chroot, "chroot"),
    (libc::SYS_fsopen, "fsopen"),
    (libc::SYS_fsmount, "fsmount"),
    (libc::SYS_fspick, "fspick"),
    (libc::SYS_move_mount, "move_mount"),
    (libc::SYS_open_tree, "open_tree"),
    (libc::SYS_mount_setattr, "mount_setattr"),
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_unshare, "unshare"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_swapon, "swapon"),
    (libc::SYS_swapoff, "swapoff"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_name_to_handle_at, "name_to_handle_at"),
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_request_key, "request_key"),
];

/// Errors building or installing the filter.
#[derive(Debug, thiserror::Error)]
pub enum OwnFilterError {
    /// seccompiler refused the rules or the kernel the program.
    #[error("sentry seccomp filter: {0}")]
    Seccomp(#[from] seccompiler::Error),
    /// seccompiler's backend refused the rules.
    #[error("sentry seccomp filter: {0}")]
    Backend(#[from] seccompiler::BackendError),
}

/// Compiles the denylist; a `tracer` (the ptrace platform's sentry) keeps ptrace.
pub fn compile(tracer: bool) -> Result<BpfProgram, OwnFilterError> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = DENIED
        .iter()
        .filter(|&&(nr, _)| !(tracer && nr == libc::SYS_ptrace))
        .map(|&(nr, _)| (nr, Vec::new()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::x86_64,
    )?;
    Ok(filter.try_into()?)
}

/// Installs it on every thread of the calling process.
pub fn install(tracer: bool) -> Result<(), OwnFilterError> {
    seccompiler::apply_filter_all_threads(&compile(tracer)?)?;
    Ok(())
}
