//! Acting as a guest thread's file identity on the calling thread: both ends of the protocol
//! (the gofer for every request, the sentry's workers for cached handles) take on the identity
//! a request names with these. Raw calls only: libc's setgroups would change every thread.

use nix::errno::Errno;

/// The capabilities that decide file access (the kernel's `CAP_FS_MASK`), CAP_SETFCAP (file
/// capabilities) and CAP_SYS_ADMIN (`trusted.*` xattrs): taken from the guest's effective set,
/// request by request.
pub const FILE_CAPS: u64 = (1 << 0) // CAP_CHOWN
    | (1 << 1) // CAP_DAC_OVERRIDE
    | (1 << 2) // CAP_DAC_READ_SEARCH
    | (1 << 3) // CAP_FOWNER
    | (1 << 4) // CAP_FSETID
    | (1 << 9) // CAP_LINUX_IMMUTABLE
    | (1 << 27) // CAP_MKNOD
    | (1 << 31) // CAP_SETFCAP
    | (1 << 32) // CAP_MAC_OVERRIDE
    | (1 << 21); // CAP_SYS_ADMIN

/// `_LINUX_CAPABILITY_VERSION_3`.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// This thread's (effective, permitted, inheritable) sets.
pub fn capget() -> Result<(u64, u64, u64), Errno> {
    let mut head = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData for version 3 into `data`, which holds two.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut head, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(Errno::last());
    }
    let join = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | (u64::from(f(&data[1])) << 32);
    Ok((
        join(|d| d.effective),
        join(|d| d.permitted),
        join(|d| d.inheritable),
    ))
}

pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let mut head = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let word = |v: u64, i: u32| (v >> (32 * i)) as u32;
    let data = [0, 1].map(|i| CapData {
        effective: word(effective, i),
        permitted: word(permitted, i),
        inheritable: word(inheritable, i),
    });
    // SAFETY: capset reads two CapData for version 3 from `data`.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut head, data.as_ptr()) };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets this thread's effective file capabilities (those in [`FILE_CAPS`]) to `caps`, as far
/// as the permitted set allows, leaving the others as they are.
pub fn narrow_file_caps(caps: u64) -> Result<(), Errno> {
    let (eff, prm, inh) = capget()?;
    capset((eff & !FILE_CAPS) | (caps & FILE_CAPS & prm), prm, inh)
}

/// Sets this thread's supplementary groups (raw: this thread only).
pub fn set_groups(groups: &[u32]) -> Result<(), Errno> {
    // SAFETY: the raw setgroups reads `len` gids from the slice and changes only this thread.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// setfsuid/setfsgid return the previous id and fail silently: read back to be sure.
pub fn set_fs_ids(uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: setfsgid/setfsuid take an id and only change this thread's credentials.
    unsafe {
        libc::setfsgid(gid);
    }
    // SAFETY: as above; -1 queries without changing.
    let now_gid = unsafe { libc::setfsgid(u32::MAX) } as u32;
    // SAFETY: as above.
    unsafe {
        libc::setfsuid(uid);
    }
    // SAFETY: as above.
    let now_uid = unsafe { libc::setfsuid(u32::MAX) } as u32;
    if (now_uid, now_gid) == (uid, gid) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}
