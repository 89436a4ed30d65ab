//! Dropping capabilities to what a process role needs.

use nix::errno::Errno;

/// `_LINUX_CAPABILITY_VERSION_3`.
const VERSION_3: u32 = 0x2008_0522;
/// Highest capability number a kernel may know (CAP_CHECKPOINT_RESTORE is 40).
const LAST_CAP: u32 = 63;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Keeps only `keep` (capability numbers) in the bounding, permitted and effective sets.
pub fn keep_only(keep: &[u32]) -> Result<(), Errno> {
    for cap in 0..=LAST_CAP {
        if !keep.contains(&cap) {
            // SAFETY: PR_CAPBSET_DROP takes integers; EINVAL past the kernel's last capability.
            let rc =
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            if rc != 0 && Errno::last() != Errno::EINVAL {
                return Err(Errno::last());
            }
        }
    }
    let mut data = [Data::default(); 2];
    for &cap in keep {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        data[word].effective |= bit;
        data[word].permitted |= bit;
    }
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads a v3 header and two data words we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            std::ptr::addr_of_mut!(header),
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(())
}
