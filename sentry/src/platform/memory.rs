//! Guest memory access by thread id (process_vm_readv/writev), for every platform: the sentry
//! may read a trapped thread's memory while it waits, whether it waits on a seccomp listener or
//! in a ptrace-stop.

use nix::errno::Errno;

fn transfer(
    tid: i32,
    addr: u64,
    local: *mut libc::c_void,
    len: usize,
    write: bool,
) -> Result<usize, Errno> {
    let local = libc::iovec {
        iov_base: local,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    let n = if write {
        // SAFETY: `local` describes a caller-owned buffer of `len` bytes; the remote iovec is only
        // interpreted by the kernel, in the target's address space.
        unsafe { libc::process_vm_writev(tid, &local, 1, &remote, 1, 0) }
    } else {
        // SAFETY: as above; the kernel writes at most `len` bytes into the caller's buffer.
        unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) }
    };
    Errno::result(n).map(|n| n as usize)
}

/// Copies guest memory at `addr` into `buf`; returns how many bytes were read.
pub fn read(tid: i32, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    transfer(tid, addr, buf.as_mut_ptr().cast(), buf.len(), false)
}

/// Copies `data` into guest memory at `addr`; returns how many bytes were written.
pub fn write(tid: i32, addr: u64, data: &[u8]) -> Result<usize, Errno> {
    // process_vm_writev never writes through the local iovec; the cast only satisfies the type.
    transfer(tid, addr, data.as_ptr().cast_mut().cast(), data.len(), true)
}
