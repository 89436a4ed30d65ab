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
    set_bounding(keep)?;
    set_sets(keep, keep, &[], &[])
}

fn mask(caps: &[u32]) -> [u32; 2] {
    let mut words = [0u32; 2];
    for &cap in caps.iter().filter(|&&c| c <= LAST_CAP) {
        words[(cap / 32) as usize] |= 1 << (cap % 32);
    }
    words
}

/// Sets the bounding set (needs CAP_SETPCAP, so call before dropping it). Capabilities the
/// kernel does not know are skipped.
pub fn set_bounding(bounding: &[u32]) -> Result<(), Errno> {
    for cap in 0..=LAST_CAP {
        if !bounding.contains(&cap) {
            // SAFETY: PR_CAPBSET_DROP takes integer arguments only.
            let rc =
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            if rc != 0 && Errno::last() != Errno::EINVAL {
                return Err(Errno::last());
            }
        }
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets, then raises the ambient ones.
pub fn set_sets(
    effective: &[u32],
    permitted: &[u32],
    inheritable: &[u32],
    ambient: &[u32],
) -> Result<(), Errno> {
    let (e, p, i) = (mask(effective), mask(permitted), mask(inheritable));
    let data = [0, 1].map(|w| Data {
        effective: e[w],
        permitted: p[w],
        inheritable: i[w],
    });
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    // SAFETY: header and two data words, the layout capset's version 3 takes.
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
    for &cap in ambient {
        // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                libc::c_ulong::from(cap),
                0,
                0,
            )
        };
        // A cap not in permitted and inheritable cannot be ambient; runc ignores those too.
        if rc != 0 && Errno::last() != Errno::EPERM && Errno::last() != Errno::EINVAL {
            return Err(Errno::last());
        }
    }
    Ok(())
}
