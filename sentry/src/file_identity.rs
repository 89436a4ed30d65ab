//! Who a file request acts for: the calling thread's file identity, sent to the gofer with each
//! request and taken on by a worker before it opens a cached handle itself.
//!
//! A worker takes on a thread's filesystem uid, gid, groups and file capabilities only when they
//! differ from what it holds, so a run of calls from one identity switches nothing. Only a root
//! sentry can switch at all; an unprivileged one is the one user its guest can be, without
//! capabilities, so its own checks are never looser than the guest's (a denial it gets sends
//! the call to the gofer, whose answer is the guest's).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use bumpalo::Bump;
use nix::errno::Errno;
use rvisor_protocol::{Identity, MAX_GROUPS};

use rvisor_protocol::thread_creds::{narrow_file_caps, set_fs_ids, set_groups, FILE_CAPS};

use crate::task::Creds;

static SWITCHING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The stamp of the identity this worker holds (`u64::MAX`: its own).
    static HELD: Cell<u64> = const { Cell::new(u64::MAX) };
    /// Whether the identity held may still read any guest thread's `/proc` entries (host root
    /// with the DAC capabilities, as the sentry itself).
    static HELD_READS_PROC: Cell<bool> = const { Cell::new(true) };
}

/// Workers take on each caller's identity before opening cached handles (a root sentry).
pub fn enable_switching() {
    SWITCHING.store(true, Ordering::Relaxed);
}

/// Whether workers take on callers' identities (a root sentry, which may also name another
/// process's credentials on a Unix send).
pub fn switching() -> bool {
    SWITCHING.load(Ordering::Relaxed)
}

/// The identity the gofer acts as for `creds`: its filesystem ids, or (`real`, for access(2)
/// without AT_EACCESS) its real ids, with the permitted capabilities for a real root and none
/// otherwise, as Linux does.
pub fn for_gofer<'a>(arena: &'a Bump, creds: &Creds, real: bool) -> Result<Identity<'a>, Errno> {
    let groups = creds.groups();
    if groups.len() > MAX_GROUPS {
        return Err(Errno::EPERM);
    }
    let bytes = arena.alloc_slice_fill_copy(groups.len() * 4, 0u8);
    for (chunk, g) in bytes.chunks_exact_mut(4).zip(groups) {
        chunk.copy_from_slice(&g.to_le_bytes());
    }
    let (uid, gid, caps) = if real {
        let caps = if creds.uid.real == 0 {
            creds.permitted
        } else {
            0
        };
        (creds.uid.real, creds.gid.real, caps)
    } else {
        (creds.uid.fs, creds.gid.fs, creds.caps)
    };
    Ok(Identity {
        uid,
        gid,
        caps,
        groups: bytes,
    })
}

/// Whether access(2) without AT_EACCESS would check `creds` as anything but its file identity
/// (Linux: the real ids, with the permitted capabilities for a real root and none otherwise).
pub fn real_differs(creds: &Creds) -> bool {
    let access_caps = if creds.uid.real == 0 {
        creds.permitted
    } else {
        0
    };
    creds.uid.real != creds.uid.fs
        || creds.gid.real != creds.gid.fs
        || (access_caps ^ creds.caps) & FILE_CAPS != 0
}

/// Makes this worker thread act as `creds` for file access.
pub fn take_on(creds: &Creds) -> Result<(), Errno> {
    if !SWITCHING.load(Ordering::Relaxed) || HELD.get() == creds.stamp {
        return Ok(());
    }
    HELD.set(u64::MAX);
    let host = &creds.host;
    set_fs_ids(host.uid, host.gid)?;
    set_groups(&host.groups)?;
    // A thread that is root on the host side keeps its file capabilities; any other acts as
    // its plain ids (its capabilities hold in its own namespace only).
    narrow_file_caps(if host.uid == 0 { creds.caps } else { 0 })?;
    HELD.set(creds.stamp);
    HELD_READS_PROC.set(host.uid == 0 && creds.caps & DAC_CAPS == DAC_CAPS);
    Ok(())
}

/// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
const DAC_CAPS: u64 = (1 << 1) | (1 << 2);

/// Before this worker reads a guest thread's `/proc/<tid>/...` (its fd and cwd links, status):
/// the identity it last took on for file access may not search them (`fd/` is its owner's
/// only), which would make the answer depend on which worker served the call before. Acts as
/// the sentry itself again unless the identity held may read them anyway.
pub fn to_read_proc() -> Result<(), Errno> {
    if HELD_READS_PROC.get() {
        return Ok(());
    }
    take_back()
}

/// Makes this worker thread act as the sentry itself again (a root sentry: fsuid and fsgid 0, no
/// supplementary groups, its file capabilities), to read what the kernel shows the sentry of a
/// guest thread that its own identity may not read (the `/proc` entries of a process that
/// changed its ids and is no longer dumpable are root's).
pub fn take_back() -> Result<(), Errno> {
    if !SWITCHING.load(Ordering::Relaxed) || HELD.get() == u64::MAX {
        return Ok(());
    }
    set_fs_ids(0, 0)?;
    set_groups(&[])?;
    narrow_file_caps(u64::MAX)?;
    HELD.set(u64::MAX);
    HELD_READS_PROC.set(true);
    Ok(())
}
