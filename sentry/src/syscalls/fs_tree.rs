//! Changes to the tree: mkdir, mknod, unlink, rmdir, rename, link, symlink.

use std::os::fd::AsFd;

use nix::errno::Errno;
use rvisor_protocol::{Loc, Request};

use super::fs_path::{
    ask, ask_with_fd, guest_fd, locate, locate_path, own_fd_link, proc_link, umask, value, Target,
    DELETED,
};
use super::pseudo;
use super::{Action, Arg, Ctx, Def};
use crate::guest::MAX_STRING;
use crate::platform::Reply;
use crate::task::cap;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "mkdir",
        action: Action::Emulated(mkdir),
        args: &[Arg::Str, Arg::Hex],
    },
    Def {
        name: "mkdirat",
        action: Action::Emulated(mkdirat),
        args: &[Arg::Int, Arg::Str, Arg::Hex],
    },
    Def {
        name: "mknod",
        action: Action::Emulated(mknod),
        args: &[Arg::Str, Arg::Hex, Arg::Hex],
    },
    Def {
        name: "mknodat",
        action: Action::Emulated(mknodat),
        args: &[Arg::Int, Arg::Str, Arg::Hex, Arg::Hex],
    },
    Def {
        name: "unlink",
        action: Action::Emulated(unlink),
        args: &[Arg::Str],
    },
    Def {
        name: "unlinkat",
        action: Action::Emulated(unlinkat),
        args: &[Arg::Int, Arg::Str, Arg::Hex],
    },
    Def {
        name: "rmdir",
        action: Action::Emulated(rmdir),
        args: &[Arg::Str],
    },
    Def {
        name: "rename",
        action: Action::Emulated(rename),
        args: &[Arg::Str, Arg::Str],
    },
    Def {
        name: "renameat",
        action: Action::Emulated(renameat),
        args: &[Arg::Int, Arg::Str, Arg::Int, Arg::Str],
    },
    Def {
        name: "renameat2",
        action: Action::Emulated(renameat2),
        args: &[Arg::Int, Arg::Str, Arg::Int, Arg::Str, Arg::Hex],
    },
    Def {
        name: "link",
        action: Action::Emulated(link),
        args: &[Arg::Str, Arg::Str],
    },
    Def {
        name: "linkat",
        action: Action::Emulated(linkat),
        args: &[Arg::Int, Arg::Str, Arg::Int, Arg::Str, Arg::Hex],
    },
    Def {
        name: "symlink",
        action: Action::Emulated(symlink),
        args: &[Arg::Str, Arg::Str],
    },
    Def {
        name: "symlinkat",
        action: Action::Emulated(symlinkat),
        args: &[Arg::Str, Arg::Int, Arg::Str],
    },
];

const CWD: i32 = libc::AT_FDCWD;

fn done(ctx: &Ctx<'_>, req: &Request<'_>) -> Result<Reply, Errno> {
    value(ask(ctx, req)?).map(Reply::Value)
}

/// One path for the gofer, or a reply that settles the call.
fn one<'a>(ctx: &Ctx<'a>, dirfd: i32, addr: u64) -> Result<Result<Loc<'a>, Reply>, Errno> {
    Ok(match locate(ctx, dirfd, addr, 0)? {
        Target::Gofer(at) => Ok(at),
        Target::Native | Target::Fd(_) => Err(Reply::Continue),
    })
}

fn mkdir_at(ctx: &mut Ctx<'_>, dirfd: i32, addr: u64, mode: u32) -> Result<Reply, Errno> {
    match one(ctx, dirfd, addr)? {
        Ok(at) => done(
            ctx,
            &Request::Mkdir {
                at,
                mode: mode & !umask(ctx) & 0o7777,
            },
        ),
        Err(reply) => Ok(reply),
    }
}
fn mkdir(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    mkdir_at(ctx, CWD, ctx.arg(0), ctx.arg(1) as u32)
}
fn mkdirat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    mkdir_at(ctx, ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2) as u32)
}

fn mknod_at(ctx: &mut Ctx<'_>, dirfd: i32, addr: u64, mode: u32, dev: u64) -> Result<Reply, Errno> {
    match one(ctx, dirfd, addr)? {
        Ok(at) => {
            let mode = (mode & libc::S_IFMT) | (mode & !umask(ctx) & 0o7777);
            done(ctx, &Request::Mknod { at, mode, dev })
        }
        Err(reply) => Ok(reply),
    }
}
fn mknod(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    mknod_at(ctx, CWD, ctx.arg(0), ctx.arg(1) as u32, ctx.arg(2))
}
fn mknodat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    mknod_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as u32,
        ctx.arg(3),
    )
}

fn unlink_at(ctx: &mut Ctx<'_>, dirfd: i32, addr: u64, flags: u32) -> Result<Reply, Errno> {
    if flags & !(libc::AT_REMOVEDIR as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.guest.read_cstr(ctx.arena, addr, MAX_STRING)?;
    match locate_path(ctx, dirfd, path, 0)? {
        Target::Gofer(at) => done(ctx, &Request::Unlink { at, flags }),
        // The guest's /proc and /sys are read-only: answer as writable ones would.
        Target::Native => {
            let dir = flags & libc::AT_REMOVEDIR as u32 != 0;
            Ok(pseudo::unlink(ctx, dirfd, path, dir)?.unwrap_or(Reply::Continue))
        }
        Target::Fd(_) => Ok(Reply::Continue),
    }
}
fn unlink(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    unlink_at(ctx, CWD, ctx.arg(0), 0)
}
fn unlinkat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    unlink_at(ctx, ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2) as u32)
}
fn rmdir(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    unlink_at(ctx, CWD, ctx.arg(0), libc::AT_REMOVEDIR as u32)
}

fn rename_at(
    ctx: &mut Ctx<'_>,
    fd1: i32,
    a1: u64,
    fd2: i32,
    a2: u64,
    flags: u32,
) -> Result<Reply, Errno> {
    if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT) != 0
        || (flags & (libc::RENAME_NOREPLACE | libc::RENAME_WHITEOUT) != 0
            && flags & libc::RENAME_EXCHANGE != 0)
    {
        return Err(Errno::EINVAL);
    }
    let p1 = ctx.guest.read_cstr(ctx.arena, a1, MAX_STRING)?;
    let p2 = ctx.guest.read_cstr(ctx.arena, a2, MAX_STRING)?;
    match (locate_path(ctx, fd1, p1, 0)?, locate_path(ctx, fd2, p2, 0)?) {
        (Target::Gofer(from), Target::Gofer(to)) => done(ctx, &Request::Rename { from, to, flags }),
        // A /proc or /sys entry onto itself succeeds on Linux; their read-only mounts say EROFS.
        (Target::Native, Target::Native) => {
            Ok(pseudo::rename_onto_itself(ctx, (fd1, p1), (fd2, p2))?.unwrap_or(Reply::Continue))
        }
        (Target::Native, _) | (_, Target::Native) => Err(Errno::EXDEV),
        _ => Err(Errno::ENOENT),
    }
}
fn rename(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    rename_at(ctx, CWD, ctx.arg(0), CWD, ctx.arg(1), 0)
}
fn renameat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    rename_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as i32,
        ctx.arg(3),
        0,
    )
}
fn renameat2(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    rename_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as i32,
        ctx.arg(3),
        ctx.arg(4) as u32,
    )
}

fn link_at(
    ctx: &mut Ctx<'_>,
    fd1: i32,
    a1: u64,
    fd2: i32,
    a2: u64,
    flags: u32,
) -> Result<Reply, Errno> {
    if flags & !((libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    let p1 = ctx.guest.read_cstr(ctx.arena, a1, MAX_STRING)?;
    // The caller's own /proc/<pid>/fd/N, followed: the file that fd is open on, an O_TMPFILE
    // one included, with no capability needed (the kernel only lets a process follow its own
    // fd links that way).
    if flags & libc::AT_SYMLINK_FOLLOW as u32 != 0 && (fd1 == CWD || p1.first() == Some(&b'/')) {
        if let Some((fd, b"")) = own_fd_link(ctx, p1)? {
            let to = match locate(ctx, fd2, a2, 0)? {
                Target::Gofer(to) => to,
                Target::Native => return Err(Errno::EXDEV),
                Target::Fd(_) => return Err(Errno::ENOENT),
            };
            return link_fd(ctx, fd, to, true);
        }
    }
    let from = locate_path(ctx, fd1, p1, flags)?;
    let to = locate(ctx, fd2, a2, 0)?;
    let (from, to) = match (from, to) {
        (Target::Native, Target::Native) => return Ok(Reply::Continue),
        (Target::Native, _) | (_, Target::Native) => return Err(Errno::EXDEV),
        (from, Target::Gofer(to)) => (from, to),
        (_, Target::Fd(_)) => return Err(Errno::ENOENT),
    };
    match from {
        Target::Gofer(from) => done(
            ctx,
            &Request::Link {
                from,
                to,
                flags: flags & !(libc::AT_EMPTY_PATH as u32),
            },
        ),
        Target::Fd(fd) => {
            // Linux lets AT_EMPTY_PATH link a file with CAP_DAC_READ_SEARCH, or one the caller
            // opened itself (the same credentials); the gofer's kernel judges the latter by who
            // opened the fd for the guest.
            let privileged = ctx.creds()?.has_cap(cap::DAC_READ_SEARCH);
            link_fd(ctx, fd, to, privileged)
        }
        Target::Native => Err(Errno::EXDEV),
    }
}

/// Links the file the caller's `fd` is open on as `to`. `entitled`: Linux would allow it
/// whoever opened the fd; the gofer then links its own handle on the fd's path when that is
/// still the same file (its kernel checks an fd's opener, which for the guest's fds is the
/// sentry or the gofer, not the guest).
fn link_fd(ctx: &Ctx<'_>, fd: i32, to: Loc<'_>, entitled: bool) -> Result<Reply, Errno> {
    let source = guest_fd(ctx, fd)?;
    // An fd the guest's kernel opened in its read-only view (an open for reading) is on another
    // mount than the gofer's tree, where linking it would be a link across mounts: only its
    // path can be linked, which takes the entitlement. Unentitled, the answer is Linux's for an
    // fd opened by someone else (Linux 6.10+ lets a caller link a file it opened itself: who
    // opened an fd is not known here).
    if !entitled
        && nix::sys::statvfs::fstatvfs(&source)
            .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    {
        return Err(Errno::ENOENT);
    }
    let path = if entitled {
        proc_link(ctx, format_args!("fd/{fd}"))
            .ok()
            .filter(|p| p.first() == Some(&b'/') && !p.ends_with(DELETED))
            .unwrap_or(b"")
    } else {
        b""
    };
    let req = Request::Link {
        from: Loc { base: b"/", path },
        to,
        flags: libc::AT_EMPTY_PATH as u32,
    };
    value(ask_with_fd(ctx, &req, Some(source.as_fd()))?).map(Reply::Value)
}
fn link(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    link_at(ctx, CWD, ctx.arg(0), CWD, ctx.arg(1), 0)
}
fn linkat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    link_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as i32,
        ctx.arg(3),
        ctx.arg(4) as u32,
    )
}

fn symlink_at(ctx: &mut Ctx<'_>, target: u64, dirfd: i32, addr: u64) -> Result<Reply, Errno> {
    let target = ctx.guest.read_cstr(ctx.arena, target, MAX_STRING)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    match one(ctx, dirfd, addr)? {
        Ok(at) => done(ctx, &Request::Symlink { target, at }),
        Err(reply) => Ok(reply),
    }
}
fn symlink(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    symlink_at(ctx, ctx.arg(0), CWD, ctx.arg(1))
}
fn symlinkat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    symlink_at(ctx, ctx.arg(0), ctx.arg(1) as i32, ctx.arg(2))
}
