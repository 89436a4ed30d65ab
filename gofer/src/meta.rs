//! Questions about files: stat, readlink, statfs, access, extended attributes.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use rvisor_protocol::{Loc, MAX_PATH};

use crate::resolve::{cstring, Last};
use crate::server::{check, Gofer, Outcome};

const SYS_GETXATTRAT: libc::c_long = 464;
const SYS_LISTXATTRAT: libc::c_long = 465;
/// Every basic field plus birth time and mount id.
const STATX_WANTED: u32 = 0x0fff;

/// `struct xattr_args` of getxattrat/setxattrat.
#[repr(C)]
pub(crate) struct XattrArgs {
    pub value: u64,
    pub size: u32,
    pub flags: u32,
}

fn nofollow(flags: u32) -> bool {
    flags & libc::AT_SYMLINK_NOFOLLOW as u32 != 0
}

pub(crate) fn lookup(g: &mut Gofer, at: &Loc<'_>, flags: u32) -> Result<OwnedFd, Errno> {
    g.root.lookup(&mut g.scratch, at, nofollow(flags))
}

/// Where an xattr call acts: (parent dir fd, final name, AT_ flags). The kernel's xattr calls
/// refuse O_PATH handles, so the parent is resolved in the root and the kernel resolves the last
/// component (and, when following, its target) itself, in the gofer's own root, which is the
/// sandbox tree.
pub(crate) fn xattr_target(
    g: &mut Gofer,
    at: &Loc<'_>,
    flags: u32,
) -> Result<(OwnedFd, std::ffi::CString, i32), Errno> {
    let at_flags = if nofollow(flags) {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    match g.root.parent(&mut g.scratch, at)? {
        (dir, Last::Name(name)) => Ok((dir, name, at_flags)),
        // The root itself, or a path ending in "." or "..": a directory, named from inside.
        _ => {
            let dir = g.root.lookup(&mut g.scratch, at, false)?;
            Ok((dir, std::ffi::CString::from(c"."), at_flags))
        }
    }
}

fn put_bytes(g: &mut Gofer, data: &[u8]) -> Outcome {
    g.bytes.clear();
    g.bytes.extend_from_slice(data);
    Outcome::Bytes(data.len())
}

/// Raw bytes of a padding-free kernel struct.
fn raw<T>(v: &T) -> &[u8] {
    // SAFETY: only used for statx and statfs, which the kernel filled entirely and which have no
    // implicit padding on x86_64.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// statx, with owners given as the guest's namespace names them.
pub fn stat(g: &mut Gofer, at: &Loc<'_>, flags: u32) -> Result<Outcome, Errno> {
    let fd = lookup(g, at, flags)?;
    // SAFETY: statx is plain data; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on our fd with an empty path writes into `stx`, which we own.
    check(unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_SYNC_AS_STAT,
            STATX_WANTED,
            &mut stx,
        )
    })?;
    stx.stx_uid = g.ids.uid_in(stx.stx_uid);
    stx.stx_gid = g.ids.gid_in(stx.stx_gid);
    let bytes = raw(&stx).to_vec();
    Ok(put_bytes(g, &bytes))
}

/// readlink: EINVAL for what is no symlink.
pub fn readlink(g: &mut Gofer, at: &Loc<'_>) -> Result<Outcome, Errno> {
    let fd = g.root.lookup(&mut g.scratch, at, true)?;
    // readlinkat on a handle says ENOENT for anything but a symlink; readlink(2) of a path
    // names says EINVAL (what realpath(3) and friends test for).
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Err(Errno::EINVAL);
    }
    let mut buf = [0u8; MAX_PATH];
    // SAFETY: readlinkat on our fd with an empty path writes at most buf.len() bytes into buf.
    let n = check(unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })?;
    Ok(put_bytes(g, &buf[..n as usize]))
}

/// statfs.
pub fn statfs(g: &mut Gofer, at: &Loc<'_>) -> Result<Outcome, Errno> {
    let fd = g.root.lookup(&mut g.scratch, at, false)?;
    // SAFETY: statfs is plain data; the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes into `st`, which we own.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    let bytes = raw(&st).to_vec();
    Ok(put_bytes(g, &bytes))
}

/// faccessat2, always against the guest's identity (AT_EACCESS: our real ids are not the
/// guest's).
pub fn access(g: &mut Gofer, at: &Loc<'_>, mode: u32, flags: u32) -> Result<Outcome, Errno> {
    let fd = lookup(g, at, flags)?;
    // SAFETY: faccessat2 with an fd and an empty path reads nothing else.
    check(unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH | libc::AT_EACCESS,
        )
    })?;
    Ok(Outcome::Value(0))
}

/// getxattr; size 0 asks for the size.
pub fn getxattr(
    g: &mut Gofer,
    at: &Loc<'_>,
    name: &[u8],
    size: u32,
    flags: u32,
) -> Result<Outcome, Errno> {
    let (dir, last, at_flags) = xattr_target(g, at, flags)?;
    let name = cstring(name)?;
    g.bytes.resize(size as usize, 0);
    let args = XattrArgs {
        value: g.bytes.as_mut_ptr() as u64,
        size,
        flags: 0,
    };
    // SAFETY: getxattrat writes at most `size` bytes to `value`, our buffer of that size.
    let n = check(unsafe {
        libc::syscall(
            SYS_GETXATTRAT,
            dir.as_raw_fd(),
            last.as_ptr(),
            at_flags,
            name.as_ptr(),
            std::ptr::addr_of!(args),
            std::mem::size_of::<XattrArgs>(),
        )
    })?;
    Ok(if size == 0 {
        Outcome::Value(n as i64)
    } else {
        Outcome::Bytes(n as usize)
    })
}

/// listxattr; size 0 asks for the size.
pub fn listxattr(g: &mut Gofer, at: &Loc<'_>, size: u32, flags: u32) -> Result<Outcome, Errno> {
    let (dir, last, at_flags) = xattr_target(g, at, flags)?;
    g.bytes.resize(size as usize, 0);
    // SAFETY: listxattrat writes at most `size` bytes into our buffer of that size.
    let n = check(unsafe {
        libc::syscall(
            SYS_LISTXATTRAT,
            dir.as_raw_fd(),
            last.as_ptr(),
            at_flags,
            g.bytes.as_mut_ptr(),
            size as usize,
        )
    })?;
    Ok(if size == 0 {
        Outcome::Value(n as i64)
    } else {
        Outcome::Bytes(n as usize)
    })
}
