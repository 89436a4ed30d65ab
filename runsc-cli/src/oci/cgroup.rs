//! The container's cgroup, through the cgroups-rs crate: v1 hierarchies (this machine's hybrid
//! layout puts every controller there) or a pure v2 hierarchy, whichever the host mounts.
//!
//! The whole sandbox (sentry, gofer, guest) is charged to it for memory and cpu, as runsc does:
//! the sentry's own memory is the container's. What counts or polices the guest's tasks (pids,
//! devices) concerns the guest alone, as with runc:
//! - v1: the sandbox's own processes leave the container's `pids` and `devices` cgroups once the
//!   sandbox exists (for the runtime's own cgroup in those hierarchies), before the limits there
//!   are set;
//! - v2 (one hierarchy): the container's cgroup holds the limits on memory and cpu and no process
//!   of its own; its leaves `guest` (the guest: `pids.max`, the device program) and `sandbox`
//!   (sentry and gofer) hold the processes.

use cgroups_rs::cpu::CpuController;
use cgroups_rs::freezer::{FreezerController, FreezerState};
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;
use cgroups_rs::{CgroupPid, Controller, MaxValue};
use oci_spec::runtime::LinuxResources;

use super::OciError;

/// Controllers used on v1 (the others are left alone).
const V1_CONTROLLERS: [&str; 7] = [
    "memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices",
];
/// v1 hierarchies in which the container's cgroup holds the guest alone.
const V1_GUEST_ONLY: [&str; 2] = ["pids", "devices"];
/// v2: the leaf holding the guest.
const V2_GUEST: &str = "guest";
/// v2: the leaf holding the sentry and the gofer.
const V2_SANDBOX: &str = "sandbox";

/// A container cgroup.
#[derive(Debug)]
pub struct Cgroup {
    inner: cgroups_rs::Cgroup,
    path: String,
}

/// Where containers go by default (`/rvisor/<id>`), and the parent of a relative `cgroupsPath`.
const DEFAULT_PARENT: &str = "rvisor";

/// `path` cleaned lexically as if it were rooted at `/`, as runc's `utils.CleanPath` does: empty
/// and `.` components go, and `..` removes the component before it but never climbs above the
/// root. The result is relative to a hierarchy's root (no leading `/`; empty for the root
/// itself), so joined onto a hierarchy's mount point it always stays inside it.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// The cgroup for a container, relative to each hierarchy's root: the spec's `cgroupsPath`
/// cleaned (an absolute one from the root, a relative one under `/rvisor`, as runc puts a
/// relative one under its own cgroup), or `/rvisor/<id>`. Refuses a path with a NUL, one that
/// names the root itself, and systemd's `slice:prefix:name` form.
pub fn path_for(spec_path: Option<&std::path::Path>, id: &str) -> Result<String, OciError> {
    let Some(raw) = spec_path.filter(|p| !p.as_os_str().is_empty()) else {
        super::state::validate_id(id)?;
        return Ok(format!("{DEFAULT_PARENT}/{id}"));
    };
    let invalid = |why: &str| OciError::Spec(format!("linux.cgroupsPath {raw:?}: {why}"));
    let text = raw.to_str().ok_or_else(|| invalid("not UTF-8"))?;
    if text.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if !text.contains('/') && text.split(':').count() == 3 {
        return Err(OciError::Unsupported(format!(
            "linux.cgroupsPath {text:?} is in systemd's slice:prefix:name form; rvisor manages \
             cgroupfs (v1 or v2) directly and needs a path"
        )));
    }
    let cleaned = clean_path(text);
    if cleaned.is_empty() {
        return Err(invalid(
            "names the hierarchy's root; a container needs a cgroup of its own",
        ));
    }
    Ok(if text.starts_with('/') {
        cleaned
    } else {
        format!("{DEFAULT_PARENT}/{cleaned}")
    })
}

/// A cgroups-rs handle for `path`, which must be clean and relative (cgroups-rs pushes it onto
/// each hierarchy's mount point: an absolute path would replace the mount point, `..` would
/// climb out of it).
fn handle(path: &str) -> cgroups_rs::Cgroup {
    debug_assert_eq!(path, clean_path(path));
    let hier = cgroups_rs::hierarchies::auto();
    if hier.v2() {
        cgroups_rs::Cgroup::load(hier, path)
    } else {
        let controllers = V1_CONTROLLERS.iter().map(|s| s.to_string()).collect();
        cgroups_rs::Cgroup::load_with_specified_controllers(hier, path, controllers)
    }
}

impl Cgroup {
    /// A handle to an existing cgroup (nothing is created). `path` is cleaned again: whatever
    /// a state file says, the handle is inside the hierarchies.
    pub fn load(path: &str) -> Self {
        let path = clean_path(path);
        Cgroup {
            inner: handle(&path),
            path,
        }
    }

    /// Whether this is a hierarchy's root (which no container owns: never changed or removed).
    fn is_root(&self) -> bool {
        self.path.is_empty()
    }

    /// The cgroups-rs handle.
    pub(super) fn inner(&self) -> &cgroups_rs::Cgroup {
        &self.inner
    }

    /// v2: the directory of the container's cgroup, or of its leaf `leaf`.
    fn v2_dir(&self, leaf: Option<&str>) -> std::path::PathBuf {
        let dir = cgroups_rs::hierarchies::auto().root().join(&self.path);
        leaf.map_or_else(|| dir.clone(), |l| dir.join(l))
    }

    pub(super) fn err(&self, what: &str, e: impl std::fmt::Display) -> OciError {
        OciError::Cgroup {
            path: self.path.clone(),
            message: format!("{what}: {}", plain(&e.to_string())),
        }
    }

    /// Creates the cgroup (on v2 with its two leaves) and applies the spec's limits on what the
    /// whole sandbox is charged for (memory, cpu); the guest's come with
    /// [`Cgroup::confine_guest`].
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Self, OciError> {
        let cg = Cgroup::load(path);
        if cg.is_root() {
            return Err(cg.err(
                "creating",
                "the hierarchy's root is not a container's cgroup",
            ));
        }
        // cgroups-rs leaves out (with a warning) a v1 hierarchy it cannot make the cgroup in:
        // make the directories first, so that is an error, with its errno.
        let unavailable = |err| OciError::CgroupUnavailable {
            path: cg.path.clone(),
            err,
        };
        if !cg.inner.v2() {
            // A v1 devices hierarchy is not delegated to users (its rules need CAP_SYS_ADMIN):
            // rootless, the container goes without it.
            let rootless = !nix::unistd::geteuid().is_root();
            for s in cg.inner.subsystems() {
                if rootless && s.controller_name() == "devices" {
                    continue;
                }
                if let Err(err) = std::fs::create_dir_all(s.to_controller().path()) {
                    let _ = cg.inner.delete();
                    return Err(unavailable(err));
                }
            }
        }
        if let Err(e) = cg.inner.create() {
            let io = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error);
            return Err(match io {
                Some(errno) => unavailable(std::io::Error::from_raw_os_error(errno)),
                None => cg.err("creating", e),
            });
        }
        let made = cg.make_leaves().and_then(|()| match resources {
            Some(r) => super::cgroup_limits::apply_sandbox(&cg, r),
            None => Ok(()),
        });
        if let Err(e) = made {
            let _ = cg.destroy();
            return Err(e);
        }
        Ok(cg)
    }

    /// v2: the leaves, with the pids controller enabled for them.
    fn make_leaves(&self) -> Result<(), OciError> {
        if !self.inner.v2() {
            return Ok(());
        }
        let dir = self.v2_dir(None);
        std::fs::write(dir.join("cgroup.subtree_control"), "+pids")
            .map_err(|e| self.err("enabling pids for the guest's cgroup", e))?;
        for leaf in [V2_GUEST, V2_SANDBOX] {
            std::fs::create_dir(dir.join(leaf)).map_err(|e| self.err(leaf, e))?;
        }
        Ok(())
    }

    /// Once the sandbox exists: its own processes (`sandbox`: the sentry and the gofer) leave
    /// what concerns the guest alone, and the guest's limits (pids, devices) are set there.
    /// The guest has not started yet.
    pub fn confine_guest(
        &self,
        sandbox: &[i32],
        resources: Option<&LinuxResources>,
    ) -> Result<(), OciError> {
        self.leave_guest_only(sandbox)?;
        super::cgroup_limits::apply_guest(self, resources)
    }

    /// Moves processes of the sandbox's own (not the guest's: the sentry, the gofer, an `exec`
    /// keeper) out of what concerns the guest alone; their children stay where they are.
    pub fn leave_guest_only(&self, pids: &[i32]) -> Result<(), OciError> {
        if !self.inner.v2() {
            return self.leave_v1_guest_only(pids);
        }
        let to = self.v2_dir(Some(V2_SANDBOX)).join("cgroup.procs");
        pids.iter().try_for_each(|pid| {
            std::fs::write(&to, pid.to_string())
                .map_err(|e| self.err("moving the sandbox out of the guest's cgroup", e))
        })
    }

    /// v1: moves `pids` into the runtime's own cgroup of each guest-only hierarchy.
    fn leave_v1_guest_only(&self, pids: &[i32]) -> Result<(), OciError> {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        for name in V1_GUEST_ONLY {
            let Some(dir) = self.v1_dir(name) else {
                continue;
            };
            // `dir` is <mount>/<path>: the hierarchy's mount is above the path's components.
            let depth = std::path::Path::new(&self.path).components().count();
            let Some(mount) = dir.ancestors().nth(depth) else {
                continue;
            };
            let mine = own
                .lines()
                .filter_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    Some((parts.nth(1)?, parts.next()?))
                })
                .find(|(controllers, _)| controllers.split(',').any(|c| c == name))
                .map(|(_, path)| clean_path(path))
                .ok_or_else(|| self.err(name, "the runtime's own cgroup is unknown"))?;
            let to = mount.join(mine).join("cgroup.procs");
            for pid in pids {
                match std::fs::write(&to, pid.to_string()) {
                    Ok(()) => {}
                    // Rootless, in a cgroup delegated to the caller: the caller's own cgroup is
                    // not its to write, so the sandbox stays counted with the guest there.
                    Err(e)
                        if !nix::unistd::geteuid().is_root()
                            && matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) =>
                    {
                        tracing::warn!(
                            "{}: the sandbox's processes stay in its {name} cgroup (rootless: {e})",
                            self.path
                        );
                        break;
                    }
                    Err(e) => {
                        return Err(
                            self.err(&format!("moving the sandbox out of its {name} cgroup"), e)
                        )
                    }
                }
            }
        }
        Ok(())
    }

    /// v1: the directory of the container's cgroup in hierarchy `name`.
    pub(super) fn v1_dir(&self, name: &str) -> Option<std::path::PathBuf> {
        self.inner
            .subsystems()
            .iter()
            .find(|s| s.controller_name() == name)
            .map(|s| s.to_controller().path().to_path_buf())
    }

    /// v2: the guest's leaf (pids.max, the device program).
    pub(super) fn v2_guest_dir(&self) -> std::path::PathBuf {
        self.v2_dir(Some(V2_GUEST))
    }

    /// Moves process `pid` (all its threads) into the cgroup (on v2, its guest leaf).
    pub fn add(&self, pid: i32) -> Result<(), OciError> {
        if self.is_root() {
            return Err(self.err("adding a process", "not in the hierarchy's root"));
        }
        if self.inner.v2() {
            return std::fs::write(self.v2_guest_dir().join("cgroup.procs"), pid.to_string())
                .map_err(|e| self.err("adding a process", e));
        }
        if nix::unistd::geteuid().is_root() {
            return self
                .inner
                .add_task_by_tgid(CgroupPid::from(pid as u64))
                .map_err(|e| self.err("adding a process", e));
        }
        // Rootless: into the hierarchies delegated to the caller (see `create`).
        for s in self.inner.subsystems() {
            let dir = s.to_controller().path().to_path_buf();
            if s.controller_name() == "devices" && !dir.exists() {
                continue;
            }
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())
                .map_err(|e| self.err("adding a process", e))?;
        }
        Ok(())
    }

    /// Whether the cgroup is frozen.
    pub fn frozen(&self) -> bool {
        self.inner
            .controller_of::<FreezerController>()
            .and_then(|c| c.state().ok())
            .is_some_and(|s| matches!(s, FreezerState::Frozen))
    }

    /// Freezes (`pause`) or thaws (`resume`) every process in it.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), OciError> {
        if self.is_root() {
            return Err(self.err("freezer", "the hierarchy's root is never frozen"));
        }
        let c = self
            .inner
            .controller_of::<FreezerController>()
            .ok_or_else(|| self.err("freezer", "no freezer controller"))?;
        if frozen {
            c.freeze().map_err(|e| self.err("freezing", e))?;
            // v1 says FREEZING until every task has stopped: return once they have, as runc's
            // pause does, so that a `state` right after says paused.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut nap = std::time::Duration::from_millis(1);
            while std::time::Instant::now() < deadline {
                if matches!(c.state(), Ok(FreezerState::Frozen)) {
                    return Ok(());
                }
                std::thread::sleep(nap);
                nap = (nap * 2).min(std::time::Duration::from_millis(50));
            }
            let _ = c.thaw();
            Err(self.err("freezing", "its processes did not all stop within 5 s"))
        } else {
            c.thaw().map_err(|e| self.err("thawing", e))
        }
    }

    /// Host pids of every process in it.
    pub fn pids(&self) -> Vec<i32> {
        if self.is_root() {
            return Vec::new();
        }
        let mut pids: Vec<i32> = self.inner.procs().iter().map(|p| p.pid as i32).collect();
        if self.inner.v2() {
            for leaf in [V2_GUEST, V2_SANDBOX] {
                let procs = std::fs::read_to_string(self.v2_dir(Some(leaf)).join("cgroup.procs"));
                pids.extend(
                    procs
                        .iter()
                        .flat_map(|t| t.lines())
                        .filter_map(|l| l.parse::<i32>().ok()),
                );
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    fn memory_file(&self, name: &str) -> Option<String> {
        let c = self.inner.controller_of::<MemController>()?;
        std::fs::read_to_string(c.path().join(name)).ok()
    }

    /// Processes the OOM killer has killed in it.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.inner.v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.memory_file(file)
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Memory, pids and cpu figures for `events`.
    pub fn stats(&self) -> serde_json::Value {
        let mut v = serde_json::json!({});
        if let Some(c) = self.inner.controller_of::<MemController>() {
            let m = c.memory_stat();
            v["memory"] = serde_json::json!({
                "usage": { "usage": m.usage_in_bytes, "max": m.max_usage_in_bytes,
                           "limit": m.limit_in_bytes, "failcnt": m.fail_cnt },
                "oom_kills": self.oom_kills(),
            });
        }
        if let Some((current, limit)) = self.guest_pids() {
            v["pids"] = serde_json::json!({ "current": current, "limit": limit });
        }
        v["cpu"] = serde_json::json!({ "usage": { "total": self.cpu_usage_ns() } });
        v
    }

    /// The guest's task count and limit (0: none).
    fn guest_pids(&self) -> Option<(u64, i64)> {
        if self.inner.v2() {
            let read = |f: &str| std::fs::read_to_string(self.v2_guest_dir().join(f)).ok();
            let current = read("pids.current")?.trim().parse().ok()?;
            let limit = read("pids.max")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            return Some((current, limit));
        }
        let c = self.inner.controller_of::<PidController>()?;
        let limit = match c.get_pid_max() {
            Ok(MaxValue::Value(n)) => n,
            _ => 0,
        };
        Some((c.get_pid_current().unwrap_or(0), limit))
    }

    fn cpu_usage_ns(&self) -> u64 {
        if self.inner.v2() {
            return self
                .inner
                .controller_of::<CpuController>()
                .and_then(|c| std::fs::read_to_string(c.path().join("cpu.stat")).ok())
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())
                })
                .map_or(0, |us| us * 1000);
        }
        self.inner
            .controller_of::<cgroups_rs::cpuacct::CpuAcctController>()
            .map_or(0, |c| c.cpuacct().usage)
    }

    /// Removes the cgroup, waiting briefly for exiting processes to leave it.
    pub fn destroy(&self) -> Result<(), OciError> {
        if self.is_root() || !self.inner.exists() {
            return Ok(());
        }
        let _ = self.set_frozen(false);
        let mut last = None;
        for _ in 0..200 {
            if self.inner.v2() {
                for leaf in [V2_GUEST, V2_SANDBOX] {
                    let _ = std::fs::remove_dir(self.v2_dir(Some(leaf)));
                }
            }
            match self.inner.delete() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(self.err("removing", last.map(|e| e.to_string()).unwrap_or_default()))
    }
}

/// A cgroups-rs error in one plain line: its "caused by: Os { .. message: \"M\" }" (a debug
/// dump of the io::Error) becomes ": M".
fn plain(text: &str) -> String {
    let Some((head, cause)) = text.split_once(" caused by: ") else {
        return text.to_string();
    };
    let message = cause
        .split_once("message: \"")
        .and_then(|(_, m)| m.split_once('"'))
        .map_or(cause, |(m, _)| m);
    format!("{head}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cgroups_errors_read_in_one_plain_line() {
        assert_eq!(
            plain("unable to write to a control group file cpuset.cpus, value garbage caused by: Os { code: 22, kind: InvalidInput, message: \"Invalid argument\" }"),
            "unable to write to a control group file cpuset.cpus, value garbage: Invalid argument"
        );
        assert_eq!(plain("no such cgroup"), "no such cgroup");
    }

    #[test]
    fn clean_path_never_climbs_above_the_root() {
        for (path, clean) in [
            ("/../../x", "x"),
            ("/../../../../../../tmp/escape", "tmp/escape"),
            ("a/../../b", "b"),
            ("//x//y/", "x/y"),
            ("/x/./y/../z", "x/z"),
            ("x/y/../../..", ""),
            (".", ""),
            ("..", ""),
            ("/", ""),
            ("", ""),
            ("/a/b/c", "a/b/c"),
            ("a..b/..c/...", "a..b/..c/..."),
        ] {
            assert_eq!(clean_path(path), clean, "{path:?}");
            // Clean is a fixed point, and what goes to cgroups-rs is relative without `..`.
            assert_eq!(clean_path(clean), clean);
            let joined = Path::new("/sys/fs/cgroup/pids").join(clean);
            assert!(joined.starts_with("/sys/fs/cgroup/pids"), "{path:?}");
            assert!(!joined.components().any(|c| c.as_os_str() == ".."));
        }
    }

    fn path_of(p: &str) -> Result<String, OciError> {
        path_for(Some(Path::new(p)), "c1")
    }

    #[test]
    fn cgroups_path_is_confined_to_the_hierarchy() {
        assert_eq!(path_for(None, "c1").unwrap(), "rvisor/c1");
        assert_eq!(path_of("").unwrap(), "rvisor/c1");
        assert_eq!(path_of("/k8s.io/c1").unwrap(), "k8s.io/c1");
        assert_eq!(
            path_of("/../../../../../some/host/dir").unwrap(),
            "some/host/dir"
        );
        assert_eq!(path_of("//x//y/").unwrap(), "x/y");
        // A relative path goes under the default parent, and cannot climb out of it either.
        assert_eq!(path_of("pod1/c1").unwrap(), "rvisor/pod1/c1");
        assert_eq!(path_of("a/../../b").unwrap(), "rvisor/b");
        assert_eq!(path_of("../../../etc").unwrap(), "rvisor/etc");
    }

    #[test]
    fn cgroups_path_refusals_are_one_clear_line() {
        for (path, says) in [
            ("/", "root"),
            ("/..", "root"),
            ("/./", "root"),
            (".", "root"),
            ("..", "root"),
            ("a/..", "root"),
            ("/x\0y", "NUL"),
            ("system.slice:docker:c1", "systemd"),
        ] {
            let err = path_of(path).unwrap_err().to_string();
            assert!(err.contains(says), "{path:?}: {err}");
            assert!(err.contains("cgroupsPath"), "{path:?}: {err}");
            assert!(!err.contains('\n'), "{path:?}: {err}");
        }
        // A colon in a real path is just a name.
        assert_eq!(path_of("/a:b:c/d").unwrap(), "a:b:c/d");
        assert!(matches!(
            path_for(None, "../x"),
            Err(OciError::InvalidId(_))
        ));
    }

    #[test]
    fn a_handle_is_always_inside_the_hierarchies() {
        // A state file from before the check may hold anything: the handle is cleaned again.
        assert_eq!(Cgroup::load("../../../tmp/x").path, "tmp/x");
        let root = Cgroup::load("/..");
        assert!(root.is_root());
        assert!(root.pids().is_empty());
        assert!(root.destroy().is_ok());
        assert!(root.add(1).is_err());
        assert!(root.set_frozen(true).is_err());
    }
}
