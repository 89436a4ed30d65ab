//! A platform over a byte array, for unit-testing handlers and guest-memory rules without a
//! kernel, root, or a guest.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{Platform, PlatformError, Reply, Trap};

/// Guest memory starts at this address in the fake.
pub const BASE: u64 = 0x10_000;

/// A fake guest: its memory, whether its call is still pending, and what it was answered.
#[derive(Debug, Default)]
pub struct FakePlatform {
    /// Guest memory at [`BASE`].
    pub memory: Mutex<Vec<u8>>,
    /// Cleared to simulate the caller dying (or its tid being reused) mid-service.
    pub pending: AtomicBool,
    /// Clears `pending` after this many reads (0: never).
    pub die_after_reads: AtomicUsize,
    reads: AtomicUsize,
    /// The last reply sent.
    pub replies: Mutex<Vec<Reply>>,
}

impl FakePlatform {
    /// A pending call whose guest has `memory` at [`BASE`].
    pub fn new(memory: Vec<u8>) -> Self {
        let p = FakePlatform {
            memory: Mutex::new(memory),
            ..Default::default()
        };
        p.pending.store(true, Ordering::SeqCst);
        p
    }

    fn range(&self, addr: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(addr.checked_sub(BASE)?).ok()?;
        let mem_len = self.memory.lock().len();
        (start <= mem_len).then(|| start..(start + len).min(mem_len))
    }
}

impl Platform for FakePlatform {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn receive(&self, _trap: &mut Trap) -> Result<(), PlatformError> {
        Err(PlatformError::Detached)
    }

    fn read_memory(&self, _trap: &Trap, addr: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.die_after_reads.load(Ordering::SeqCst) {
            self.pending.store(false, Ordering::SeqCst);
        }
        let range = self.range(addr, buf.len()).ok_or(PlatformError::Sys {
            op: "read",
            errno: nix::errno::Errno::EFAULT,
        })?;
        let len = range.len();
        buf[..len].copy_from_slice(&self.memory.lock()[range]);
        Ok(len)
    }

    fn write_memory(&self, _trap: &Trap, addr: u64, data: &[u8]) -> Result<usize, PlatformError> {
        let range = self.range(addr, data.len()).ok_or(PlatformError::Sys {
            op: "write",
            errno: nix::errno::Errno::EFAULT,
        })?;
        let len = range.len();
        self.memory.lock()[range].copy_from_slice(&data[..len]);
        Ok(len)
    }

    fn still_pending(&self, _trap: &Trap) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    fn reply(&self, _trap: &Trap, reply: Reply) -> Result<(), PlatformError> {
        self.replies.lock().push(reply);
        Ok(())
    }

    fn reply_with_fd(
        &self,
        _trap: &Trap,
        _fd: OwnedFd,
        _cloexec: bool,
    ) -> Result<i32, PlatformError> {
        Err(PlatformError::Sys {
            op: "addfd",
            errno: nix::errno::Errno::ENOSYS,
        })
    }
}
