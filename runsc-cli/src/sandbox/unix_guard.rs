//! A kernel backstop behind the sentry's socket emulation: the guest runs in a cgroup whose BPF
//! programs refuse every Unix-domain connect, and every Unix send with an address, that a guest
//! process makes natively (`BPF_CGROUP_UNIX_CONNECT`/`_SENDMSG`, Linux 6.7).
//!
//! The sentry makes the legitimate ones itself, on duplicates of the guest's sockets, from outside
//! that cgroup. So a Unix address that reaches the kernel straight from the guest can only come
//! from a race on the guest's fd table (a `sendmsg` let through for a stream socket, after which
//! a sibling thread `dup2`s a datagram socket over the fd), and the kernel refuses it (EPERM).
//!
//! Best effort: it needs root, a cgroup2 hierarchy and BPF. Where the container's own limits live
//! in cgroup2 (a pure v2 host), an OCI guest stays in its container cgroup and runs without it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::Pid;

/// Prefix of the guard cgroup's name (a child of the guest's cgroup2 cgroup).
const NAME_PREFIX: &str = "rvisor-guard-";
/// `bpf(2)` commands.
pub(crate) const BPF_PROG_LOAD: libc::c_int = 5;
/// `BPF_PROG_ATTACH`.
pub(crate) const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
/// `enum bpf_attach_type`: `BPF_CGROUP_UNIX_CONNECT`, `BPF_CGROUP_UNIX_SENDMSG`.
const ATTACH_UNIX: [u32; 2] = [49, 50];

/// The guard cgroup; [`UnixGuard::remove`] deletes it once the guest is gone.
#[derive(Debug)]
pub struct UnixGuard {
    parent: OwnedFd,
    name: CString,
    /// The guard itself, until the guest init is in it: the init is created there
    /// (`CLONE_INTO_CGROUP`), or moved there through it.
    dir: Option<OwnedFd>,
}

/// Where cgroup2 is mounted, and whether it holds controllers (then an OCI container's limits
/// live there).
fn cgroup2() -> Option<(PathBuf, bool)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split(' ').next()? == "cgroup2")
            .then(|| left.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    Some((mount, !controllers.trim().is_empty()))
}

/// `pid`'s cgroup2 path (relative to the mount).
fn cgroup_of(pid: Pid) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(path.trim_start_matches('/').to_string())
}

/// One `struct bpf_insn`: code, dst and src registers, offset, immediate.
pub(crate) fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst | (src << 4)) << 8
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

/// A loaded program for `attach` that refuses the call (returns 0) when the calling task is in
/// cgroup `guard`, and allows it otherwise. The hook runs for the socket's cgroup, where the
/// guest made it; the sentry's calls on its duplicates must pass.
fn refusing_program(attach: u32, guard: u64) -> Result<OwnedFd, Errno> {
    const CALL_GET_CURRENT_CGROUP_ID: i32 = 80;
    let insns: [u64; 8] = [
        insn(0x85, 0, 0, 0, CALL_GET_CURRENT_CGROUP_ID), // call: r0 = the caller's cgroup
        insn(0x18, 1, 0, 0, guard as u32 as i32),        // r1 = guard (ld_imm64, low half)
        insn(0, 0, 0, 0, (guard >> 32) as u32 as i32),   // (high half)
        insn(0x1d, 0, 1, 2, 0),                          // if r0 == r1 goto refuse
        insn(0xb7, 0, 0, 0, 1),                          // r0 = 1 (allow)
        insn(0x95, 0, 0, 0, 0),                          // exit
        insn(0xb7, 0, 0, 0, 0),                          // refuse: r0 = 0
        insn(0x95, 0, 0, 0, 0),                          // exit
    ];
    let license = c"GPL";
    // union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size,
    // log_buf, kern_version, prog_flags, prog_name[16], prog_ifindex, expected_attach_type.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_SOCK_ADDR.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[68..72].copy_from_slice(&attach.to_ne_bytes());
    // The instructions and license `attr` points at are alive for the call.
    let fd = bpf(BPF_PROG_LOAD, &attr)?;
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The bpf system call with `attr` (a `union bpf_attr` prefix; the kernel zero-fills the rest).
pub(crate) fn bpf(cmd: libc::c_int, attr: &[u8]) -> Result<libc::c_long, Errno> {
    // SAFETY: bpf reads `attr.len()` bytes of `attr`, alive for the call, and whatever those
    // bytes point at, which the callers keep alive too.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

fn attach(cgroup: &OwnedFd, prog: &OwnedFd, kind: u32) -> Result<(), Errno> {
    // union bpf_attr, BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags.
    let mut attr = [0u8; 32];
    attr[0..4].copy_from_slice(&cgroup.as_raw_fd().to_ne_bytes());
    attr[4..8].copy_from_slice(&prog.as_raw_fd().to_ne_bytes());
    attr[8..12].copy_from_slice(&kind.to_ne_bytes());
    bpf(BPF_PROG_ATTACH, &attr).map(drop)
}

/// Creates the guard cgroup for a sandbox whose guest init we (or a process we create) are
/// about to create: a child of our own cgroup2 cgroup, which the init's would be, named after
/// us (we live as long as the sandbox). The init is then created in it with `CLONE_INTO_CGROUP`
/// (see [`UnixGuard::dir`]), or moved there with [`UnixGuard::move_in`]: moving a process costs
/// the kernel an RCU grace period (milliseconds, on every start), creating it there does not.
/// `container`: an OCI container (skipped where its limits live in cgroup2). `None` where the
/// kernel or our privileges do not allow it.
pub fn prepare(container: bool) -> Option<UnixGuard> {
    let result = (|| -> Result<Option<UnixGuard>, String> {
        let Some((mount, limits_here)) = cgroup2() else {
            return Ok(None);
        };
        if container && limits_here {
            return Ok(None);
        }
        let rel = cgroup_of(Pid::this()).ok_or("no cgroup2 path")?;
        let parent_path = mount.join(&rel);
        let parent = std::fs::File::open(&parent_path)
            .map_err(|e| format!("{}: {e}", parent_path.display()))?;
        let name =
            CString::new(format!("{NAME_PREFIX}{}", Pid::this())).map_err(|e| e.to_string())?;
        remove_stale(&parent_path);
        let dir = parent_path.join(name.to_str().unwrap_or_default());
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut guard = UnixGuard {
            parent: parent.into(),
            name,
            dir: None,
        };
        let armed = (|| -> Result<OwnedFd, String> {
            let cgroup =
                std::fs::File::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // A cgroup2 directory's inode number is the cgroup's id.
            let id =
                std::os::unix::fs::MetadataExt::ino(&cgroup.metadata().map_err(|e| e.to_string())?);
            let cgroup: OwnedFd = cgroup.into();
            for kind in ATTACH_UNIX {
                let prog = refusing_program(kind, id).map_err(|e| format!("loading: {e}"))?;
                attach(&cgroup, &prog, kind).map_err(|e| format!("attaching: {e}"))?;
            }
            Ok(cgroup)
        })();
        match armed {
            Ok(cgroup) => {
                guard.dir = Some(cgroup);
                Ok(Some(guard))
            }
            Err(e) => {
                guard.remove();
                Err(e)
            }
        }
    })();
    result.unwrap_or_else(|e| {
        tracing::debug!("no Unix-socket guard cgroup ({e}); the sentry's checks stand alone");
        None
    })
}

/// Removes guard cgroups that sandboxes killed before cleaning up left in `parent`: those whose
/// sentry is gone (a live sandbox's guard may be empty still, its init not created yet; an
/// occupied one refuses rmdir with EBUSY and stays).
fn remove_stale(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(|n| n.strip_prefix(NAME_PREFIX)) else {
            continue;
        };
        let alive = owner.parse::<i32>().is_ok_and(|pid| {
            pid > 0 && nix::sys::signal::kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH)
        });
        if !alive {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Moves the calling process into `init`'s guard cgroup, if it has one (`rvisor exec`).
pub fn join(init: Pid) {
    let (Some((mount, _)), Some(rel)) = (cgroup2(), cgroup_of(init)) else {
        return;
    };
    if rel
        .rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with(NAME_PREFIX))
    {
        let _ = std::fs::write(
            mount.join(rel).join("cgroup.procs"),
            std::process::id().to_string(),
        );
    }
}

impl UnixGuard {
    /// The guard cgroup's directory, for `CLONE_INTO_CGROUP`, until [`UnixGuard::settled`].
    pub fn dir(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.dir.as_ref().map(|d| d.as_fd())
    }

    /// Moves `pid` into the guard (where it could not be created there).
    pub fn move_in(&self, pid: Pid) -> Result<(), String> {
        use std::io::Write;
        let dir = self.dir.as_ref().ok_or("the guard is settled")?;
        let procs = nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            "cgroup.procs",
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("opening cgroup.procs: {e}"))?;
        // SAFETY: openat just returned this fd; nothing else owns it.
        let mut procs = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(procs) });
        procs
            .write_all(pid.to_string().as_bytes())
            .map_err(|e| format!("moving the guest: {e}"))
    }

    /// The guest init is in the guard: its directory is no longer needed.
    pub fn settled(&mut self) {
        self.dir = None;
    }

    /// Removes the cgroup once its last process has left (briefly retried while they exit).
    pub fn remove(&self) {
        for _ in 0..100 {
            // SAFETY: `parent` is an open directory and `name` NUL-terminated.
            let rc = unsafe {
                libc::unlinkat(
                    self.parent.as_raw_fd(),
                    self.name.as_ptr(),
                    libc::AT_REMOVEDIR,
                )
            };
            if rc == 0 || Errno::last() != Errno::EBUSY {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
