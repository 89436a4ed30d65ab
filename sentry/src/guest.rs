//! Bounded access to the memory of a trapped guest thread.
//!
//! Every read is followed by a check that the trapped call is still pending: if the guest thread
//! died and its tid was reused, what we read belongs to someone else and must not be acted on.

use std::cell::Cell;

use bumpalo::Bump;
use nix::errno::Errno;

use crate::platform::{Platform, PlatformError, Trap};

/// Longest string read from the guest (PATH_MAX, counting the NUL).
pub const MAX_STRING: usize = 4096;

/// The trapped thread's memory, as handlers see it.
#[derive(Clone, Copy)]
pub struct Guest<'a> {
    platform: &'a dyn Platform,
    trap: &'a Trap,
    /// Set by the first read: the dispatcher refuses to let such a call continue unless its
    /// table row says the kernel resolves it in the guest's own confined view.
    read: &'a Cell<bool>,
}

impl std::fmt::Debug for Guest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("tid", &self.trap.tid)
            .finish()
    }
}

fn to_errno(e: PlatformError) -> Errno {
    match e {
        PlatformError::Gone | PlatformError::Detached => Errno::EINTR,
        PlatformError::Sys { errno, .. } => errno,
    }
}

impl<'a> Guest<'a> {
    /// Memory of the thread that made `trap`; `read` records whether anything was read.
    pub fn new(platform: &'a dyn Platform, trap: &'a Trap, read: &'a Cell<bool>) -> Self {
        Self {
            platform,
            trap,
            read,
        }
    }

    /// `base + off` as a guest address: EFAULT where it would wrap (a hostile pointer must fail
    /// the call, not the sentry).
    pub fn offset(base: u64, off: u64) -> Result<u64, Errno> {
        base.checked_add(off).ok_or(Errno::EFAULT)
    }

    /// Whether the handler has read (or tried to read) guest memory for this call.
    pub fn was_read(&self) -> bool {
        self.read.get()
    }

    /// Whether the trapped call still waits for its reply (not abandoned to a signal, its
    /// thread not gone).
    pub fn still_pending(&self) -> bool {
        self.platform.still_pending(self.trap)
    }

    fn checked(&self) -> Result<(), Errno> {
        if self.still_pending() {
            Ok(())
        } else {
            Err(Errno::EINTR)
        }
    }

    /// Fills `buf` from `addr` exactly, or fails with EFAULT.
    pub fn read_exact(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.read.set(true);
        if addr == 0 && !buf.is_empty() {
            return Err(Errno::EFAULT);
        }
        let n = self
            .platform
            .read_memory(self.trap, addr, buf)
            .map_err(|e| match e {
                PlatformError::Sys {
                    errno: Errno::EFAULT,
                    ..
                } => Errno::EFAULT,
                e => to_errno(e),
            })?;
        self.checked()?;
        if n == buf.len() {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// Reads a NUL-terminated string of at most `max` bytes (NUL included) into `arena`.
    /// Reads page by page, so a string ending just before an unmapped page is still read.
    pub fn read_cstr<'b>(&self, arena: &'b Bump, addr: u64, max: usize) -> Result<&'b [u8], Errno> {
        self.read.set(true);
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        let buf = arena.alloc_slice_fill_copy(max, 0u8);
        let mut done = 0;
        while done < max {
            let at = Self::offset(addr, done as u64)?;
            let page_left = 4096 - (at % 4096) as usize;
            let want = page_left.min(max - done);
            let n = self
                .platform
                .read_memory(self.trap, at, &mut buf[done..done + want])
                .map_err(to_errno)?;
            if n == 0 {
                return Err(Errno::EFAULT);
            }
            if let Some(nul) = buf[done..done + n].iter().position(|&b| b == 0) {
                self.checked()?;
                return Ok(&buf[..done + nul]);
            }
            done += n;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// Reads a plain-old-data value.
    pub fn read_value<T: Pod>(&self, addr: u64) -> Result<T, Errno> {
        let mut value = T::zeroed();
        self.read_exact(addr, value.as_bytes_mut())?;
        Ok(value)
    }

    /// Writes `data` at `addr`, all of it or EFAULT.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        if addr == 0 && !data.is_empty() {
            return Err(Errno::EFAULT);
        }
        let n = self
            .platform
            .write_memory(self.trap, addr, data)
            .map_err(to_errno)?;
        if n == data.len() {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// Writes a plain-old-data value.
    pub fn write_value<T: Pod>(&self, addr: u64, value: &T) -> Result<(), Errno> {
        self.write(addr, value.as_bytes())
    }
}

/// Types that are valid for any bit pattern and have no padding, so they can cross the guest
/// boundary as raw bytes.
///
/// # Safety
/// Implementors must be `repr(C)` (or primitive), contain no padding bytes, no pointers or
/// references that Rust dereferences, and accept every bit pattern.
pub unsafe trait Pod: Copy + 'static {
    /// The all-zero value.
    fn zeroed() -> Self {
        // SAFETY: the trait contract says every bit pattern, zero included, is valid.
        unsafe { std::mem::zeroed() }
    }
    /// The value's bytes.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: no padding (trait contract), so every byte is initialised; the slice covers
        // exactly the value and borrows it.
        unsafe {
            std::slice::from_raw_parts(
                (self as *const Self).cast::<u8>(),
                std::mem::size_of::<Self>(),
            )
        }
    }
    /// The value's bytes, writable.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: any bit pattern is valid (trait contract), so arbitrary writes keep it valid.
        unsafe {
            std::slice::from_raw_parts_mut(
                (self as *mut Self).cast::<u8>(),
                std::mem::size_of::<Self>(),
            )
        }
    }
}

// SAFETY: primitive integers accept every bit pattern and have no padding.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for [u32; 3] {}
// SAFETY: utsname is six `c_char` arrays: no padding, any bit pattern.
unsafe impl Pod for libc::utsname {}

/// The kernel's x86_64 `struct sysinfo`, with its alignment padding spelled out (libc's has an
/// implicit hole after `pad`, so its bytes are not all initialised).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SysInfo {
    /// Seconds since boot.
    pub uptime: i64,
    /// 1, 5 and 15 minute load averages (fixed point, 16 bits).
    pub loads: [u64; 3],
    /// Total usable RAM.
    pub totalram: u64,
    /// Free RAM.
    pub freeram: u64,
    /// Shared memory.
    pub sharedram: u64,
    /// Buffer memory.
    pub bufferram: u64,
    /// Total swap.
    pub totalswap: u64,
    /// Free swap.
    pub freeswap: u64,
    /// Number of processes.
    pub procs: u16,
    /// Explicit padding, as in the kernel.
    pub pad: u16,
    /// Alignment hole before `totalhigh`.
    pub pad2: u32,
    /// Total high memory.
    pub totalhigh: u64,
    /// Free high memory.
    pub freehigh: u64,
    /// Memory unit size in bytes.
    pub mem_unit: u32,
    /// Trailing filler up to 64 bytes of fields, plus alignment.
    pub filler: [u8; 4],
}

// SAFETY: repr(C), every field an integer or byte array, all padding explicit (size 112, no
// holes), and any bit pattern is valid.
unsafe impl Pod for SysInfo {}

const _: () = assert!(std::mem::size_of::<SysInfo>() == std::mem::size_of::<libc::sysinfo>());

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::platform::fake::{FakePlatform, BASE};

    fn trap() -> Trap {
        Trap {
            tid: 1,
            ..Trap::default()
        }
    }

    #[test]
    fn reads_are_bounded_and_nul_terminated() {
        let mut mem = b"hello\0".to_vec();
        mem.extend(vec![b'a'; 5000]);
        let p = FakePlatform::new(mem);
        let t = trap();
        let read = Cell::new(false);
        let g = Guest::new(&p, &t, &read);
        let arena = Bump::new();
        assert_eq!(g.read_cstr(&arena, BASE, MAX_STRING).unwrap(), b"hello");
        assert_eq!(
            g.read_cstr(&arena, BASE + 6, MAX_STRING),
            Err(Errno::ENAMETOOLONG)
        );
        assert_eq!(g.read_cstr(&arena, 0, MAX_STRING), Err(Errno::EFAULT));
        let mut four = [0u8; 4];
        assert_eq!(
            g.read_exact(BASE + 5004, &mut four),
            Err(Errno::EFAULT),
            "short read past the end"
        );
    }

    /// What was read is discarded if the call stopped being pending while it was read: the bytes
    /// may come from another process that reused the tid.
    #[test]
    fn a_read_is_void_once_the_call_is_no_longer_pending() {
        let p = FakePlatform::new(b"/etc/passwd\0".to_vec());
        p.die_after_reads.store(1, Ordering::SeqCst);
        let t = trap();
        let read = Cell::new(false);
        let g = Guest::new(&p, &t, &read);
        let arena = Bump::new();
        assert_eq!(g.read_cstr(&arena, BASE, MAX_STRING), Err(Errno::EINTR));
        let mut buf = [0u8; 4];
        assert_eq!(g.read_exact(BASE, &mut buf), Err(Errno::EINTR));
        assert_eq!(g.read_value::<u32>(BASE), Err(Errno::EINTR));
    }

    #[test]
    fn writes_land_in_guest_memory() {
        let p = FakePlatform::new(vec![0; 8]);
        let t = trap();
        let read = Cell::new(false);
        let g = Guest::new(&p, &t, &read);
        g.write_value(BASE + 4, &0xdead_beef_u32).unwrap();
        assert_eq!(&p.memory.lock()[4..], &0xdead_beef_u32.to_ne_bytes());
        assert_eq!(g.write(BASE + 6, &[1, 2, 3, 4]), Err(Errno::EFAULT));
    }
}
