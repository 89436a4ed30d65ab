//! What the caller hands the guest: its stdio and `--preserve-fds`. The sentry refuses any
//! attribute change (mode, owner, times, xattrs) to these objects; the guest uses them only
//! through its fds, as they allow.

/// The (device, inode) of each of our fds below `count` that names an object with attributes
/// of its own on the host: a file, device, directory or named FIFO (not a pipe or a socket).
pub(crate) fn objects(count: u32) -> Vec<(u64, u64)> {
    const PIPEFS_MAGIC: i64 = 0x5049_5045;
    (0..count as i32)
        .filter_map(|fd| {
            let st = nix::sys::stat::fstat(fd).ok()?;
            let kind = st.st_mode & libc::S_IFMT;
            if kind == libc::S_IFSOCK {
                return None;
            }
            if kind == libc::S_IFIFO {
                // SAFETY: `fd` is open (fstat just succeeded) and outlives the borrow.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let fs = nix::sys::statfs::fstatfs(fd).ok()?;
                if fs.filesystem_type().0 == PIPEFS_MAGIC {
                    return None;
                }
            }
            Some((st.st_dev, st.st_ino))
        })
        .collect()
}
