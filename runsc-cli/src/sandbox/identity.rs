//! Taking on a process's identity: groups, uid/gid and capabilities, and its resource limits.
//! Shared by the guest init and by processes joining a running sandbox.

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::caps;
use super::container::{CapSets, Rlimit};
use super::error::{Context, SandboxError};

/// Sets groups, gid, uid and (if given) capabilities. An empty group list only clears groups
/// where the kernel lets us (rootless user namespaces deny setgroups).
pub fn assume(
    uid: u32,
    gid: u32,
    groups: &[u32],
    capabilities: Option<&CapSets>,
) -> Result<(), SandboxError> {
    let list: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    if nix::unistd::setgroups(&list).is_err() && !list.is_empty() {
        return Err(Errno::last()).ctx(|| format!("setting groups {groups:?}"));
    }
    if let Some(c) = capabilities {
        caps::set_bounding(&c.bounding).ctx(|| "capability bounding set".into())?;
        // SAFETY: PR_SET_KEEPCAPS takes integers only; the sets are replaced right after.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1) };
    }
    let (g, u) = (Gid::from_raw(gid), Uid::from_raw(uid));
    nix::unistd::setresgid(g, g, g).ctx(|| format!("setting gid {gid}"))?;
    nix::unistd::setresuid(u, u, u).ctx(|| format!("setting uid {uid}"))?;
    if let Some(c) = capabilities {
        caps::set_sets(&c.effective, &c.permitted, &c.inheritable, &c.ambient)
            .ctx(|| "capabilities".into())?;
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
