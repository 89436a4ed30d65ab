//! The guest's own /proc and /sys are mounted read-only, so its kernel answers EROFS to calls
//! Linux allows there or refuses otherwise. Here the sentry answers them instead: writes to the
//! caller's own `comm` and `mem` (opened by the sentry in the host's procfs, installed in the
//! guest), and the errnos of unlink, rmdir and rename-onto-itself (looked up in the guest's own
//! view, then judged as the kernel would on a writable procfs or sysfs).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use bumpalo::collections::Vec as ArenaVec;
use nix::errno::Errno;

use super::fs_path::{base_of, open_in_guest_root};
use super::Ctx;
use crate::platform::Reply;
use crate::procfs::prefix;
use crate::task::{cap, Creds};

/// `PROC_SUPER_MAGIC` and `SYSFS_MAGIC`: the filesystems this module answers for.
const PROC_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// `base` + `path` lexically normalised, with `self` and `thread-self` under `/proc` spelled as
/// the caller's ids in the guest's pid namespace where a walk goes through them (the sentry is
/// outside that namespace: those links would not resolve for it). `None` unless the path lies
/// under `/proc` or `/sys` and has no `..` (after a symlink, `..` is not lexical).
fn parts<'a>(ctx: &Ctx<'a>, dirfd: i32, path: &'a [u8]) -> Result<Option<Parts<'a>>, Errno> {
    let base = base_of(ctx, dirfd, path)?;
    let walk = if path.first() == Some(&b'/') {
        &[][..]
    } else {
        base
    };
    let mut raw: ArenaVec<'a, &'a [u8]> = ArenaVec::new_in(ctx.arena);
    for part in walk.split(|&b| b == b'/').chain(path.split(|&b| b == b'/')) {
        match part {
            b"" | b"." => {}
            b".." => return Ok(None),
            p => raw.push(p),
        }
    }
    if !matches!(raw.first().copied(), Some(b"proc" | b"sys")) {
        return Ok(None);
    }
    let ids = ctx.sandbox.tasks.ids(ctx.trap.tid)?;
    let pid = ctx.arena.alloc_str(&ids.ns_tgid.to_string()).as_bytes();
    let tid = ctx.arena.alloc_str(&ids.ns_tid.to_string()).as_bytes();
    respell_own(&mut raw, pid, tid, false);
    Ok(Some(Parts {
        parts: raw,
        pid,
        tid,
        host_tgid: ids.host_tgid,
    }))
}

/// Spells a `self` or `thread-self` right under `proc` in `parts` as the caller's `pid` (and
/// `task/<tid>`) in the guest's pid namespace: the sentry is outside it, and those links would
/// not resolve for it. Only where a walk goes through the link, unless `final_too` (a call that
/// follows a final one).
pub(super) fn respell_own<'a>(
    parts: &mut ArenaVec<'a, &'a [u8]>,
    pid: &'a [u8],
    tid: &'a [u8],
    final_too: bool,
) {
    let through = parts.len() > 2 || (final_too && parts.len() == 2);
    if !through || parts[0] != b"proc" {
        return;
    }
    match parts[1] {
        b"self" => parts[1] = pid,
        b"thread-self" => {
            parts[1] = pid;
            parts.insert(2, b"task");
            parts.insert(3, tid);
        }
        _ => {}
    }
}

/// A normalised pseudo path and the caller's ids as they appear in it.
struct Parts<'a> {
    parts: ArenaVec<'a, &'a [u8]>,
    pid: &'a [u8],
    tid: &'a [u8],
    /// The caller's process on the host.
    host_tgid: i32,
}

impl Parts<'_> {
    fn joined(&self) -> Vec<u8> {
        let mut v = self.parts.join(&b'/');
        v.push(0);
        v
    }
}

/// The host thread id of the caller's thread `ns_tid` (a thread of its own process only).
fn host_thread(host_tgid: i32, ns_tid: &[u8]) -> Option<i32> {
    let ns_tid: i32 = std::str::from_utf8(ns_tid).ok()?.parse().ok()?;
    let dir = format!("{}{host_tgid}/task", prefix());
    std::fs::read_dir(&dir).ok()?.find_map(|entry| {
        let host: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let status = std::fs::read_to_string(format!("{dir}/{host}/status")).ok()?;
        let nspid = crate::task::parse_status_ids(&status, "NSpid:");
        (nspid.last() == Some(&ns_tid)).then_some(host)
    })
}

/// Opens the caller's own `comm` or `mem` for writing, where the guest's read-only /proc
/// would refuse it: `Ok(None)` for anything else (the kernel answers natively).
///
/// Only the caller's own process qualifies, so the file is the caller's (its comm refuses
/// writes from other processes at write time anyway; its mem is what `/proc/self/mem` gives
/// natively). The host path names the caller's process by host pid, which cannot be reused
/// while the caller waits for this reply; a thread is looked up inside that process's task
/// directory, so a reused thread id can only name another thread of the same process.
pub(super) fn open_own(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    path: &[u8],
    flags: u32,
) -> Result<Option<Reply>, Errno> {
    let path = ctx.arena.alloc_slice_copy(path);
    let Some(p) = parts(ctx, dirfd, path)? else {
        return Ok(None);
    };
    let host_tgid = p.host_tgid;
    if let [b"proc", b"sys", b"kernel", name @ (b"hostname" | b"domainname")] = &p.parts[..] {
        return open_uts_sysctl(ctx, name, flags);
    }
    let (thread, file) = match &p.parts[..] {
        [b"proc", pid, file] if *pid == p.pid => (host_tgid, *file),
        [b"proc", pid, b"task", tid, file] if *pid == p.pid => {
            let host = if *tid == p.tid {
                ctx.trap.tid
            } else {
                match host_thread(host_tgid, tid) {
                    Some(h) => h,
                    None => return Ok(None),
                }
            };
            (host, *file)
        }
        _ => return Ok(None),
    };
    let host_path = match file {
        b"comm" => format!("{}{host_tgid}/task/{thread}/comm\0", prefix()),
        // Every thread shares the process's memory.
        b"mem" => format!("{}{host_tgid}/mem\0", prefix()),
        // The process's own: raising is anyone's, lowering below the floor takes
        // CAP_SYS_RESOURCE, which the kernel checks of the writer (the guest) at write time.
        b"oom_score_adj" => format!("{}{host_tgid}/oom_score_adj\0", prefix()),
        _ => return Ok(None),
    };
    let creds = ctx.creds()?;
    open_for_guest(ctx, &creds, &host_path, flags)
}

/// `/proc/sys/kernel/hostname` or `domainname` for writing, when the sentry is in the guest's
/// UTS namespace and the caller is the host's root. Both are checked again, by the kernel, of
/// the writer at write time (the sysctl's permission, and the writer's own UTS namespace is
/// the one written), so the fd gives the guest nothing it could not do with sethostname.
fn open_uts_sysctl(ctx: &mut Ctx<'_>, name: &[u8], flags: u32) -> Result<Option<Reply>, Errno> {
    let creds = ctx.creds()?;
    if !super::system::kernel_uts() || creds.host.uid != 0 || creds.uid.effective != 0 {
        return Ok(None);
    }
    let name = std::str::from_utf8(name).map_err(|_| Errno::EINVAL)?;
    let host_path = format!("{}sys/kernel/{name}\0", prefix());
    open_for_guest(ctx, &creds, &host_path, flags)
}

/// Opens `host_path` (NUL-terminated) with the guest's open flags and installs it in the guest.
/// The open is made as the caller's file identity, `creds` (a root sentry takes it on), so the
/// kernel's permission check at open is the caller's: a process that changed its ids and is no
/// longer dumpable finds its own files root's, as natively.
fn open_for_guest(
    ctx: &mut Ctx<'_>,
    creds: &Creds,
    host_path: &str,
    flags: u32,
) -> Result<Option<Reply>, Errno> {
    crate::file_identity::take_on(creds)?;
    let ours = (flags as i32
        & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_PATH))
        | libc::O_CLOEXEC;
    // SAFETY: `host_path` is NUL-terminated; open reads nothing else.
    let fd = unsafe { libc::open(host_path.as_ptr().cast(), ours) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
    ctx.give_fd(fd, cloexec).map(Some)
}

/// An O_PATH handle on the normalised path in the guest's own view (its mount namespace, its
/// procfs), and the type of filesystem it is on.
fn look_up(ctx: &Ctx<'_>, p: &Parts<'_>) -> Result<(OwnedFd, i64), Errno> {
    let rel = p.joined();
    let rel = std::ffi::CStr::from_bytes_with_nul(&rel).map_err(|_| Errno::EINVAL)?;
    let fd = open_in_guest_root(ctx, rel, libc::O_PATH | libc::O_NOFOLLOW)?;
    let fs = nix::sys::statfs::fstatfs(&fd)?.filesystem_type().0;
    Ok((fd, fs))
}

/// The final component of `path` as given (trailing slashes dropped).
fn last(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |e| e + 1);
    let start = path[..end]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |s| s + 1);
    &path[start..end]
}

/// unlink or rmdir (`dir`) under /proc or /sys: `Ok(None)` leaves it to the kernel. Neither
/// filesystem removes anything; Linux's errnos on writable mounts, in its order (checked
/// against the host's, as root and unprivileged):
/// lookup errors; a final `.` or `..`; write permission on the parent (granted to everyone in a
/// pid or task directory, to no one under /proc/sys, else only with CAP_DAC_OVERRIDE: EACCES);
/// EPERM for anything of a process (/proc/<pid> and below); the type (ENOTDIR, EISDIR); EPERM.
pub(super) fn unlink(
    ctx: &Ctx<'_>,
    dirfd: i32,
    path: &[u8],
    dir: bool,
) -> Result<Option<Reply>, Errno> {
    let path = ctx.arena.alloc_slice_copy(path);
    match (dir, last(path)) {
        (true, b".") => return Err(Errno::EINVAL),
        (true, b"..") => return Err(Errno::ENOTEMPTY),
        (false, b"." | b"..") => return Err(Errno::EISDIR),
        _ => {}
    }
    let Some(p) = parts(ctx, dirfd, path)? else {
        return Ok(None);
    };
    let (fd, fs) = look_up(ctx, &p)?;
    if fs != PROC_MAGIC && fs != SYSFS_MAGIC {
        return Ok(None);
    }
    let numeric = |c: &[u8]| !c.is_empty() && c.iter().all(u8::is_ascii_digit);
    let v = &p.parts[..];
    let parent = &v[..v.len().saturating_sub(1)];
    let open_parent = matches!(parent, [b"proc", n] if numeric(n))
        || matches!(parent, [b"proc", n, b"task", t] if numeric(n) && numeric(t));
    if !open_parent {
        // CAP_DAC_OVERRIDE counts only over owners the caller's namespace maps: a process's
        // directories are its own user's; the rest of /proc and /sys is the host root's,
        // mapped only in a root-run sandbox's identity map.
        let creds = ctx.creds()?;
        let owner_mapped = matches!(parent, [b"proc", n, ..] if numeric(n)) || creds.host.uid == 0;
        let privileged = creds.has_cap(cap::DAC_OVERRIDE) && owner_mapped;
        if parent.get(..2) == Some(&[&b"proc"[..], &b"sys"[..]][..]) || !privileged {
            return Err(Errno::EACCES);
        }
    }
    if matches!(v, [b"proc", n, ..] if numeric(n)) {
        return Err(Errno::EPERM);
    }
    let is_dir = nix::sys::stat::fstat(fd.as_raw_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    Err(match (dir, is_dir) {
        (true, false) => Errno::ENOTDIR,
        (false, true) => Errno::EISDIR,
        _ => Errno::EPERM,
    })
}

/// rename of a /proc or /sys file onto itself: Linux succeeds without looking further once
/// both names are the same existing entry. `Ok(None)` leaves anything else to the kernel.
pub(super) fn rename_onto_itself(
    ctx: &Ctx<'_>,
    from: (i32, &[u8]),
    to: (i32, &[u8]),
) -> Result<Option<Reply>, Errno> {
    let (fp, tp) = (
        ctx.arena.alloc_slice_copy(from.1),
        ctx.arena.alloc_slice_copy(to.1),
    );
    let (Some(a), Some(b)) = (parts(ctx, from.0, fp)?, parts(ctx, to.0, tp)?) else {
        return Ok(None);
    };
    if a.parts[..] != b.parts[..] {
        return Ok(None);
    }
    let (_, fs) = look_up(ctx, &a)?;
    if fs != PROC_MAGIC && fs != SYSFS_MAGIC {
        return Ok(None);
    }
    Ok(Some(Reply::Value(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respelt(path: &str, final_too: bool) -> String {
        let arena = bumpalo::Bump::new();
        let mut parts: ArenaVec<'_, &[u8]> = ArenaVec::new_in(&arena);
        parts.extend(path.split('/').map(str::as_bytes));
        respell_own(&mut parts, b"7", b"9", final_too);
        String::from_utf8(parts.join(&b'/')).unwrap()
    }

    #[test]
    fn own_proc_links_are_spelled_where_the_walk_goes_through_them() {
        assert_eq!(respelt("proc/self/status", false), "proc/7/status");
        assert_eq!(
            respelt("proc/thread-self/comm", false),
            "proc/7/task/9/comm"
        );
        assert_eq!(respelt("proc/self", false), "proc/self");
        assert_eq!(respelt("proc/self", true), "proc/7");
        assert_eq!(respelt("sys/self/x", true), "sys/self/x");
        assert_eq!(respelt("proc/1/self", true), "proc/1/self");
    }
}
