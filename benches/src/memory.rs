//! Peak memory of a sandbox: everything it runs (rvisor's CLI, sentry, gofer and guest; runsc's
//! processes; bwrap and its child) is started in a fresh memory cgroup (a child of the bench's
//! own), whose peak the kernel
//! keeps (cgroup v1 `memory.max_usage_in_bytes`, v2 `memory.peak`: anonymous memory, page
//! cache first touched by the sandbox, kernel memory), and the peak RSS (VmHWM) of every process
//! in it is sampled and added up (shared pages count once per process). Without a usable memory
//! cgroup only the sampled sum is given, over the process tree.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How the peak was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounting {
    /// A cgroup v1 memory controller.
    CgroupV1,
    /// A cgroup v2 hierarchy with the memory controller.
    CgroupV2,
    /// No memory cgroup: the sampled sum only.
    Sampled,
}

impl Accounting {
    /// What the table says.
    pub fn describe(self) -> &'static str {
        match self {
            Accounting::CgroupV1 => "cgroup v1 memory.max_usage_in_bytes",
            Accounting::CgroupV2 => "cgroup v2 memory.peak",
            Accounting::Sampled => "no memory cgroup here: sampled sum of VmHWM only",
        }
    }
}

/// One measured run's peaks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Peak {
    /// The cgroup's peak, KiB (`None` without a memory cgroup).
    pub cgroup_kib: Option<u64>,
    /// Sum over the processes seen of their peak RSS, KiB (sampled every 5 ms).
    pub rss_sum_kib: u64,
    /// Processes seen.
    pub processes: usize,
}

const V1: &str = "/sys/fs/cgroup/memory";
const V2: &str = "/sys/fs/cgroup";

/// The accounting this machine offers (a cgroup is tried once: a machine may show one it
/// does not let us create).
pub fn accounting() -> Accounting {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    match CACHED.load(Ordering::Relaxed) {
        1 => return Accounting::CgroupV1,
        2 => return Accounting::CgroupV2,
        3 => return Accounting::Sampled,
        _ => {}
    }
    let found = [Accounting::CgroupV1, Accounting::CgroupV2]
        .into_iter()
        .find(|&a| {
            new_cgroup(a).is_some_and(|d| {
                let _ = std::fs::remove_dir(d);
                true
            })
        })
        .unwrap_or(Accounting::Sampled);
    CACHED.store(
        match found {
            Accounting::CgroupV1 => 1,
            Accounting::CgroupV2 => 2,
            Accounting::Sampled => 3,
        },
        Ordering::Relaxed,
    );
    found
}

/// Our own cgroup in `a`'s hierarchy (from /proc/self/cgroup), under its mount: the
/// measurement cgroups are made beneath it, so the sandbox stays within whatever limits and
/// accounting the bench itself runs under.
fn own_cgroup(a: Accounting) -> Option<PathBuf> {
    let (mount, wanted) = match a {
        Accounting::CgroupV1 => (V1, "memory"),
        Accounting::CgroupV2 => (V2, ""),
        Accounting::Sampled => return None,
    };
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if wanted.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == wanted)
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })?;
    Some(Path::new(mount).join(rel))
}

fn new_cgroup(a: Accounting) -> Option<PathBuf> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = own_cgroup(a)?;
    let base = match a {
        Accounting::CgroupV1 => base
            .join("memory.max_usage_in_bytes")
            .exists()
            .then_some(base)?,
        Accounting::CgroupV2 => {
            // The memory controller must be on for our cgroup's children (cgroup2 allows that
            // only where the cgroup has no processes of its own, or at the root).
            let on = |f: &str| {
                std::fs::read_to_string(base.join(f))
                    .is_ok_and(|s| s.split_whitespace().any(|c| c == "memory"))
            };
            on("cgroup.subtree_control").then_some(base)?
        }
        Accounting::Sampled => return None,
    };
    let dir = base.join(format!(
        "rvisor-bench-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).ok()?;
    let peak = match a {
        Accounting::CgroupV1 => "memory.max_usage_in_bytes",
        _ => "memory.peak",
    };
    if dir.join(peak).exists() {
        Some(dir)
    } else {
        let _ = std::fs::remove_dir(&dir);
        None
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .ok()
        })
}

/// The pids in `cgroup`, or `root` and its descendants.
fn members(cgroup: Option<&Path>, root: u32) -> Vec<u32> {
    if let Some(dir) = cgroup {
        return std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let pid = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                let children =
                    std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                out.extend(
                    children
                        .split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    out
}

/// Runs `cmd` (as [`crate::field::output_within`] does) in a fresh memory cgroup where there is
/// one, sampling its processes' peak RSS; returns its output and the peaks.
pub fn run_measured(cmd: &mut Command, limit: Duration) -> Result<(Output, Peak), String> {
    let kind = accounting();
    let cgroup = new_cgroup(kind);
    if let Some(dir) = &cgroup {
        let procs = CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(|e| e.to_string())?;
        let join = move || {
            // SAFETY: a NUL-terminated path; the fd is ours and closed below.
            let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: one byte from a literal.
            let rc = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            // SAFETY: `fd` was opened above.
            unsafe { libc::close(fd) };
            if rc != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        };
        // SAFETY: `join` only makes raw system calls on memory it owns (async-signal-safe).
        unsafe { cmd.pre_exec(join) };
    }
    // The sampler learns the child's pid once it runs (the tree fallback needs it).
    let root = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (root, done, cgroup) = (root.clone(), done.clone(), cgroup.clone());
        std::thread::spawn(move || {
            let mut seen: BTreeMap<u32, u64> = BTreeMap::new();
            while !done.load(Ordering::Relaxed) {
                let r = root.load(Ordering::Relaxed) as u32;
                if cgroup.is_some() || r != 0 {
                    for pid in members(cgroup.as_deref(), r) {
                        if let Some(kib) = status_kib(pid, "VmHWM:") {
                            let e = seen.entry(pid).or_default();
                            *e = (*e).max(kib);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        })
    };
    let out = crate::field::output_within_with(cmd, limit, |pid| {
        root.store(pid as usize, Ordering::Relaxed)
    });
    done.store(true, Ordering::Relaxed);
    let seen = sampler.join().unwrap_or_default();
    let cgroup_kib = cgroup.as_ref().and_then(|dir| {
        let file = if kind == Accounting::CgroupV1 {
            "memory.max_usage_in_bytes"
        } else {
            "memory.peak"
        };
        let v = std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(v / 1024)
    });
    if let Some(dir) = &cgroup {
        // What the sandbox left behind exits shortly (runsc's gofer, a sentry tearing down).
        let t = Instant::now();
        while !members(Some(dir), 0).is_empty() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(dir);
    }
    let out = out?;
    Ok((
        out,
        Peak {
            cgroup_kib,
            rss_sum_kib: seen.values().sum(),
            processes: seen.len(),
        },
    ))
}
