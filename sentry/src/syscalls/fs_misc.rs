//! Path calls that end in the guest's own kernel after the gofer has checked them: exec and
//! chdir (the kernel re-resolves the path in the guest's read-only view of the same tree, which
//! confines the result), and inotify watches (set by the sentry on the guest's inotify instance
//! through a handle the gofer found).

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use rvisor_protocol::Request;

use super::fs_path::{
    ask, fd_dir, guest_fd, is_view_dir, live_ancestor_in_tree, local_access, locate,
    locate_for_kernel, locate_path, locate_path_for_kernel, own_fd_link, proc_link, stamped_key,
    value, with_cached, Target, DELETED,
};
use super::fs_stat::statx_of;
use super::{Action, Arg, Ctx, Def};
use crate::fd_cache::{cacheable, reopen, Cached};
use crate::gofer_client::Answer;
use crate::platform::Reply;
use crate::{loader, procfs};

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "execve",
        action: Action::Emulated(execve),
        args: &[Arg::Str, Arg::StrArray, Arg::Ptr],
    },
    Def {
        name: "execveat",
        action: Action::Emulated(execveat),
        args: &[Arg::Int, Arg::Str, Arg::StrArray, Arg::Ptr, Arg::Hex],
    },
    Def {
        name: "fchdir",
        action: Action::Emulated(fchdir),
        args: &[Arg::Int],
    },
    Def {
        name: "chdir",
        action: Action::Emulated(chdir),
        args: &[Arg::Str],
    },
    Def {
        name: "inotify_add_watch",
        action: Action::Emulated(inotify_add_watch),
        args: &[Arg::Int, Arg::Str, Arg::Hex],
    },
];

const X_OK: u32 = 1;

/// An exec may change the caller's capabilities (and, where a mount allows set-id bits, its
/// ids): its credentials are read again after it. One refused here (a PATH search's ENOENT,
/// most often) never reaches the kernel and changes nothing.
fn exec_at(ctx: &mut Ctx<'_>, dirfd: i32, addr: u64, flags: u32) -> Result<Reply, Errno> {
    let reply = exec_checked(ctx, dirfd, addr, flags);
    if matches!(reply, Ok(Reply::Continue)) {
        ctx.sandbox.tasks.exec_begins(ctx.trap.tid);
    }
    reply
}

fn exec_checked(ctx: &mut Ctx<'_>, dirfd: i32, addr: u64, flags: u32) -> Result<Reply, Errno> {
    match locate_for_kernel(ctx, dirfd, addr, flags, true)? {
        Target::Gofer(at) => {
            let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW as u32;
            let checked = if nofollow == 0 {
                with_cached(ctx, &at, false, |h| local_access(h, X_OK))?
            } else {
                None
            };
            match checked {
                Some(r) => {
                    r?;
                }
                None => {
                    value(ask(
                        ctx,
                        &Request::Access {
                            at,
                            mode: X_OK,
                            flags: nofollow,
                        },
                    )?)?;
                }
            }
            // The kernel will resolve a relative path from the guest's real directory: it must be
            // the one the gofer resolved (a directory fd handed in from outside is not).
            if at.path.first() != Some(&b'/') && !same_directory(ctx, dirfd, at.base)? {
                return ctx.refuse(Errno::EACCES);
            }
            prefetch_for_loader(ctx, &at);
            Ok(Reply::Continue)
        }
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
    }
}

/// Looks up, in one batch per level, what the dynamic loader will open for the binary at `at`:
/// the interpreter, `/etc/ld.so.preload`, and the DT_NEEDED libraries (and theirs) as
/// `/etc/ld.so.cache` maps them. Only a hint: failures are ignored. Where opens for reading run
/// natively (under Landlock) the loader's opens never trap, and there is nothing to warm.
fn prefetch_for_loader(ctx: &Ctx<'_>, at: &rvisor_protocol::Loc<'_>) {
    if crate::filter::ReadOpens::here() == crate::filter::ReadOpens::Native {
        return;
    }
    let Some(gofer) = ctx.sandbox.gofer.as_ref().filter(|g| g.cache_enabled) else {
        return;
    };
    let Some(Ok(binary)) = with_cached(ctx, at, false, |h| reopen(h, libc::O_RDONLY as u32))
        .ok()
        .flatten()
    else {
        return;
    };
    let Some(deps) = loader::elf_deps(binary.as_raw_fd()) else {
        return;
    };
    let Some(interp) = deps.interp else { return };
    let ld_cache = {
        let mut memo = gofer.ld_cache.lock();
        if memo.is_none() {
            let cache_file = rvisor_protocol::Loc {
                base: b"/",
                path: b"/etc/ld.so.cache",
            };
            let bytes = with_cached(ctx, &cache_file, false, |h| {
                reopen(h, libc::O_RDONLY as u32)
            })
            .ok()
            .flatten()
            .and_then(Result::ok)
            .map(|fd| {
                let mut bytes = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut bytes);
                bytes
            })
            .unwrap_or_default();
            *memo = Some(std::sync::Arc::new(loader::LdCache::parse(&bytes)));
        }
        memo.clone().unwrap_or_default()
    };
    let Ok(stamp) = ctx.creds().map(|c| c.stamp) else {
        return;
    };
    let mut level: Vec<Vec<u8>> = vec![interp, b"/etc/ld.so.preload".to_vec()];
    level.extend(
        deps.needed
            .iter()
            .filter_map(|n| ld_cache.path(n).map(<[u8]>::to_vec)),
    );
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for _ in 0..4 {
        level.retain(|p| !seen.contains(p));
        seen.extend(level.iter().cloned());
        let fresh: Vec<&[u8]> = {
            let cache = gofer.cache.lock();
            level
                .iter()
                .map(Vec::as_slice)
                .filter(|p| cache.get(stamped_key(ctx.arena, stamp, false, p)).is_none())
                .collect()
        };
        for chunk in fresh.chunks(rvisor_protocol::MAX_BATCH) {
            walk_into_cache(ctx, stamp, chunk);
        }
        // The next level: what these libraries need in turn.
        let mut next = Vec::new();
        for lib in &level {
            let loc = rvisor_protocol::Loc {
                base: b"/",
                path: lib,
            };
            let Some(Ok(fd)) = with_cached(ctx, &loc, false, |h| reopen(h, libc::O_RDONLY as u32))
                .ok()
                .flatten()
            else {
                continue;
            };
            if let Some(d) = loader::elf_deps(fd.as_raw_fd()) {
                next.extend(
                    d.needed
                        .iter()
                        .filter_map(|n| ld_cache.path(n).map(<[u8]>::to_vec)),
                );
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
}

/// One walk for `paths` as the caller (whose identity has `stamp`), its answers kept in the fd
/// cache.
fn walk_into_cache(ctx: &Ctx<'_>, stamp: u64, paths: &[&[u8]]) {
    let Some(gofer) = ctx.sandbox.gofer.as_ref() else {
        return;
    };
    let Ok(Answer::Walked(results, fds)) = ask(
        ctx,
        &Request::Walk {
            paths: paths.to_vec(),
            nofollow: false,
        },
    ) else {
        return;
    };
    let mut fds = fds.into_iter();
    let mut cache = gofer.cache.lock();
    for (path, result) in paths.iter().zip(results) {
        match result {
            0 => {
                if let Some(fd) = fds.next().filter(cacheable) {
                    cache.insert(
                        stamped_key(ctx.arena, stamp, false, path),
                        Cached::Found(fd),
                    );
                }
            }
            e if e == libc::ENOENT => {
                cache.insert(stamped_key(ctx.arena, stamp, false, path), Cached::Missing)
            }
            _ => {}
        }
    }
}

/// Whether the guest's `dirfd` (or cwd) is the directory `base` names inside the sandbox.
pub(super) fn same_directory(ctx: &Ctx<'_>, dirfd: i32, base: &[u8]) -> Result<bool, Errno> {
    crate::file_identity::to_read_proc()?;
    let link = if dirfd == libc::AT_FDCWD {
        bumpalo::format!(in ctx.arena, "{}{}/cwd", procfs::prefix(), ctx.trap.tid)
    } else {
        bumpalo::format!(in ctx.arena, "{}{}/fd/{}", procfs::prefix(), ctx.trap.tid, dirfd)
    };
    let real = nix::sys::stat::stat(link.as_str())?;
    let x = statx_of(
        ctx,
        rvisor_protocol::Loc {
            base: b"/",
            path: base,
        },
        0,
    )?;
    let dev = libc::makedev(x.stx_dev_major, x.stx_dev_minor);
    Ok(real.st_ino == x.stx_ino && real.st_dev == dev)
}

fn execve(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    exec_at(ctx, libc::AT_FDCWD, ctx.arg(0), 0)
}

fn execveat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    exec_at(ctx, ctx.arg(0) as i32, ctx.arg(1), ctx.arg(4) as u32)
}

/// The working directory must stay where the gofer can vouch for it: native calls that take a
/// relative path (connect to a Unix socket, say) resolve from it. A directory fd from outside
/// the root (or anything the gofer does not find at the fd's path) is refused.
fn fchdir(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    match fd_in_tree(ctx, ctx.arg(0) as i32)? {
        Some(true) | None => Ok(Reply::Continue),
        Some(false) => ctx.refuse(Errno::EACCES),
    }
}

/// Whether the caller's directory fd `fd` lies in the tree: `None` for one in its pseudo
/// filesystems (the kernel's to judge). A live directory must be what the gofer finds at its
/// path. A deleted one has no path: it qualifies when its nearest live ancestor (walked by
/// `..`, which is how a lookup from it leaves it) is what the gofer finds at that one's path.
fn fd_in_tree(ctx: &Ctx<'_>, fd: i32) -> Result<Option<bool>, Errno> {
    let path = proc_link(ctx, format_args!("fd/{fd}")).map_err(|_| Errno::EBADF)?;
    if path.first() != Some(&b'/') {
        return Err(Errno::ENOTDIR);
    }
    if path.ends_with(DELETED) {
        let copy = guest_fd(ctx, fd)?;
        return Ok(Some(live_ancestor_in_tree(ctx, copy)?));
    }
    match locate_path(ctx, libc::AT_FDCWD, path, 0)? {
        Target::Gofer(_) => Ok(Some(same_directory(ctx, fd, path).unwrap_or(false))),
        // In the pseudo filesystems: the guest's own directory there, not one from outside
        // whose host path only reads the same (a received `/dev/shm/d`).
        Target::Native | Target::Fd(_) => {
            let copy = guest_fd(ctx, fd)?;
            Ok(Some(is_view_dir(ctx, &copy, path)))
        }
    }
}

/// chdir. A path through the caller's own `/proc/<pid>/fd/N` is followed by the kernel: fd `N`
/// must pass `fchdir`'s check (deleted directories included), and what follows it the gofer's.
fn chdir(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let path = ctx
        .guest
        .read_cstr(ctx.arena, ctx.arg(0), crate::guest::MAX_STRING)?;
    if let Some((fd, rest)) = own_fd_link(ctx, path)? {
        if fd_in_tree(ctx, fd)? == Some(false) {
            return ctx.refuse(Errno::EACCES);
        }
        if rest.iter().all(|&b| b == b'/') {
            return Ok(Reply::Continue);
        }
        let at = rvisor_protocol::Loc {
            base: fd_dir(ctx, fd)?,
            path: rest,
        };
        return directory_to_enter(ctx, at);
    }
    match locate_path_for_kernel(ctx, libc::AT_FDCWD, path, 0, false)? {
        Target::Gofer(at) => directory_to_enter(ctx, at),
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
    }
}

/// The gofer's checks before the kernel enters `at`: a directory the caller may search.
fn directory_to_enter(ctx: &mut Ctx<'_>, at: rvisor_protocol::Loc<'_>) -> Result<Reply, Errno> {
    let x = statx_of(ctx, at, 0)?;
    if u32::from(x.stx_mode) & libc::S_IFMT != libc::S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    value(ask(
        ctx,
        &Request::Access {
            at,
            mode: X_OK,
            flags: 0,
        },
    )?)?;
    Ok(Reply::Continue)
}

fn inotify_add_watch(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (ifd, mask) = (ctx.arg(0) as i32, ctx.arg(2) as u32);
    let at = match locate(ctx, libc::AT_FDCWD, ctx.arg(1), 0)? {
        Target::Gofer(at) => at,
        Target::Native | Target::Fd(_) => return Ok(Reply::Continue),
    };
    let mut flags = libc::O_PATH as u32;
    if mask & libc::IN_DONT_FOLLOW != 0 {
        flags |= libc::O_NOFOLLOW as u32;
    }
    let Answer::Fd(handle) = ask(
        ctx,
        &Request::Open {
            at,
            flags,
            mode: 0,
            resolve: 0,
        },
    )?
    else {
        return Err(Errno::EIO);
    };
    let instance = guest_fd(ctx, ifd)?;
    let path =
        bumpalo::format!(in ctx.arena, "{}self/fd/{}\0", procfs::prefix(), handle.as_raw_fd());
    // SAFETY: inotify_add_watch on the guest's instance (our copy) with a NUL-terminated path;
    // the magic link resolves to what the gofer found, so the mask must not forbid following it.
    let wd = unsafe {
        libc::inotify_add_watch(
            instance.as_raw_fd(),
            path.as_ptr().cast(),
            mask & !libc::IN_DONT_FOLLOW,
        )
    };
    if wd < 0 {
        return Err(Errno::last());
    }
    Ok(Reply::Value(i64::from(wd)))
}
