//! Taking on a process's identity: groups, uid/gid and capabilities, and its resource limits.
//! Shared by the guest init and by processes joining a running sandbox.

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::caps;
use super::container::{CapSets, Rlimit};
use super::error::{Context, SandboxError};

/// CAP_SYS_ADMIN: what installing a seccomp filter without no_new_privs needs.
const CAP_SYS_ADMIN: u32 = 21;

/// Capabilities to drop to once the seccomp filters are installed ([`release`]).
#[derive(Debug, Clone)]
pub struct Held(CapSets);

/// Sets groups, gid, uid and (if given) capabilities. An empty group list only clears groups
/// where the kernel lets us (rootless user namespaces deny setgroups).
///
/// `new_privileges` (the spec's `noNewPrivileges: false`): the filters still to come must go
/// in without no_new_privs, which needs CAP_SYS_ADMIN in our user namespace; unless the final
/// sets keep it anyway it is held in the effective and permitted sets (never the bounding set,
/// so no exec can keep it) and the final sets are returned, for [`release`] once the filters are
/// in.
pub fn assume(
    uid: u32,
    gid: u32,
    groups: &[u32],
    capabilities: Option<&CapSets>,
    new_privileges: bool,
) -> Result<Option<Held>, SandboxError> {
    // (uid_t)-1 means "unchanged" to the set*id calls: the caller would stay who it is (root).
    if uid == u32::MAX || gid == u32::MAX {
        return Err(SandboxError::Invalid(format!(
            "uid {uid}, gid {gid}: (uid_t)-1 is not an id"
        )));
    }
    let list: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    if nix::unistd::setgroups(&list).is_err() && !list.is_empty() {
        return Err(Errno::last()).ctx(|| format!("setting groups {groups:?}"));
    }
    // Without sets of its own, a non-root identity ends with none (setuid clears them).
    let final_sets = match capabilities {
        Some(c) => Some(c.clone()),
        None if uid != 0 => Some(CapSets::default()),
        None => None,
    };
    let hold = new_privileges
        && final_sets
            .as_ref()
            .is_some_and(|c| !c.effective.contains(&CAP_SYS_ADMIN));
    if let Some(c) = capabilities {
        caps::set_bounding(&c.bounding).ctx(|| "capability bounding set".into())?;
    }
    if capabilities.is_some() || hold {
        // SAFETY: PR_SET_KEEPCAPS takes integers only; the sets are replaced right after.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1) };
    }
    let (g, u) = (Gid::from_raw(gid), Uid::from_raw(uid));
    nix::unistd::setresgid(g, g, g).ctx(|| format!("setting gid {gid}"))?;
    nix::unistd::setresuid(u, u, u).ctx(|| format!("setting uid {uid}"))?;
    match (final_sets, hold) {
        (Some(c), true) => {
            let with_admin = |set: &[u32]| {
                let mut set = set.to_vec();
                set.push(CAP_SYS_ADMIN);
                set
            };
            caps::set_sets(
                &with_admin(&c.effective),
                &with_admin(&c.permitted),
                &c.inheritable,
                &c.ambient,
            )
            .ctx(|| "capabilities (holding CAP_SYS_ADMIN for the filters)".into())?;
            Ok(Some(Held(c)))
        }
        _ => {
            if let Some(c) = capabilities {
                caps::set_sets(&c.effective, &c.permitted, &c.inheritable, &c.ambient)
                    .ctx(|| "capabilities".into())?;
            }
            Ok(None)
        }
    }
}

/// Drops what [`assume`] held for the filters: the final capability sets, no CAP_SYS_ADMIN
/// beyond them.
pub fn release(held: Option<Held>) -> Result<(), SandboxError> {
    let Some(Held(c)) = held else {
        return Ok(());
    };
    caps::set_sets(&c.effective, &c.permitted, &c.inheritable, &c.ambient)
        .ctx(|| "capabilities".into())
}

/// How the seccomp filters go in: keeping no_new_privs off (`new_privileges`) or setting it.
pub fn filter_privs(new_privileges: bool) -> sentry::filter::NoNewPrivs {
    if new_privileges {
        sentry::filter::NoNewPrivs::Leave
    } else {
        sentry::filter::NoNewPrivs::Set
    }
}

/// Installs the container's own seccomp filters on top of the sentry's (the init's and every
/// exec'd process's, the same way).
pub fn install_spec_filters(
    filters: &[seccompiler::BpfProgram],
    new_privileges: bool,
) -> Result<(), SandboxError> {
    let privs = filter_privs(new_privileges);
    for filter in filters {
        sentry::filter::install_as(filter, privs)
            .map_err(|e| SandboxError::Setup(format!("the container's seccomp filter: {e}")))?;
    }
    Ok(())
}

/// Applies resource limits.
pub fn set_rlimits(rlimits: &[Rlimit]) -> Result<(), SandboxError> {
    for r in rlimits {
        let lim = libc::rlimit {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: `lim` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(r.resource as _, &lim) } != 0 {
            return Err(Errno::last()).ctx(|| format!("setrlimit {}", r.resource));
        }
    }
    Ok(())
}

/// PR_SET_DUMPABLE: whether processes of the same user (without CAP_SYS_PTRACE over our memory)
/// may trace us, take our fds or read our memory.
pub fn set_dumpable(on: bool) {
    // SAFETY: PR_SET_DUMPABLE takes integers only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
}
