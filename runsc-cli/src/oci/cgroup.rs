//! The container's cgroup, through the cgroups-rs crate: v1 hierarchies (this machine's hybrid
//! layout puts every controller there) or a pure v2 hierarchy, whichever the host mounts.
//! The whole sandbox (sentry, gofer, guest) is placed in it, as runsc does: the sentry's own
//! memory is the container's.

use cgroups_rs::cpu::CpuController;
use cgroups_rs::cpuset::CpuSetController;
use cgroups_rs::freezer::{FreezerController, FreezerState};
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;
use cgroups_rs::{CgroupPid, Controller, MaxValue};
use oci_spec::runtime::LinuxResources;

use super::OciError;

/// Controllers used on v1 (the others are left alone).
const V1_CONTROLLERS: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "cpuset", "freezer"];

/// A container cgroup.
#[derive(Debug)]
pub struct Cgroup {
    inner: cgroups_rs::Cgroup,
    path: String,
}

/// The cgroup path for a container: the spec's `cgroupsPath`, or `/rvisor/<id>`.
pub fn path_for(spec_path: Option<&std::path::Path>, id: &str) -> String {
    match spec_path.and_then(|p| p.to_str()) {
        Some(p) if !p.is_empty() => p.trim_start_matches('/').to_string(),
        _ => format!("rvisor/{id}"),
    }
}

fn handle(path: &str) -> cgroups_rs::Cgroup {
    let hier = cgroups_rs::hierarchies::auto();
    if hier.v2() {
        cgroups_rs::Cgroup::load(hier, path)
    } else {
        let controllers = V1_CONTROLLERS.iter().map(|s| s.to_string()).collect();
        cgroups_rs::Cgroup::load_with_specified_controllers(hier, path, controllers)
    }
}

impl Cgroup {
    /// A handle to an existing cgroup (nothing is created).
    pub fn load(path: &str) -> Self {
        Cgroup {
            inner: handle(path),
            path: path.into(),
        }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> OciError {
        OciError::Cgroup {
            path: self.path.clone(),
            message: format!("{what}: {e}"),
        }
    }

    /// Creates the cgroup and applies the spec's limits.
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Self, OciError> {
        let cg = Cgroup::load(path);
        cg.inner.create().map_err(|e| cg.err("creating", e))?;
        if let Some(r) = resources {
            if let Err(e) = cg.apply(r) {
                let _ = cg.inner.delete();
                return Err(e);
            }
        }
        Ok(cg)
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), OciError> {
        if let (Some(mem), Some(c)) = (r.memory(), self.inner.controller_of::<MemController>()) {
            if let Some(limit) = mem.limit() {
                c.set_limit(limit)
                    .map_err(|e| self.err("memory limit", e))?;
            }
            if let Some(swap) = mem.swap() {
                c.set_memswap_limit(swap)
                    .map_err(|e| self.err("memory+swap limit (is swap accounting on?)", e))?;
            }
        }
        if let (Some(pids), Some(c)) = (r.pids(), self.inner.controller_of::<PidController>()) {
            let max = match pids.limit() {
                n if n > 0 => MaxValue::Value(n),
                _ => MaxValue::Max,
            };
            c.set_pid_max(max).map_err(|e| self.err("pids limit", e))?;
        }
        if let Some(cpu) = r.cpu() {
            if let Some(c) = self.inner.controller_of::<CpuController>() {
                if let Some(shares) = cpu.shares() {
                    c.set_shares(shares)
                        .map_err(|e| self.err("cpu shares", e))?;
                }
                if cpu.quota().is_some() || cpu.period().is_some() {
                    c.set_cfs_quota_and_period(cpu.quota(), cpu.period())
                        .map_err(|e| self.err("cpu quota", e))?;
                }
            }
            if let Some(c) = self.inner.controller_of::<CpuSetController>() {
                if let Some(cpus) = cpu.cpus() {
                    c.set_cpus(cpus).map_err(|e| self.err("cpuset.cpus", e))?;
                }
                if let Some(mems) = cpu.mems() {
                    c.set_mems(mems).map_err(|e| self.err("cpuset.mems", e))?;
                }
            }
        }
        Ok(())
    }

    /// Moves process `pid` (all its threads) into the cgroup.
    pub fn add(&self, pid: i32) -> Result<(), OciError> {
        self.inner
            .add_task_by_tgid(CgroupPid::from(pid as u64))
            .map_err(|e| self.err("adding a process", e))
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
        let c = self
            .inner
            .controller_of::<FreezerController>()
            .ok_or_else(|| self.err("freezer", "no freezer controller"))?;
        if frozen {
            c.freeze().map_err(|e| self.err("freezing", e))
        } else {
            c.thaw().map_err(|e| self.err("thawing", e))
        }
    }

    /// Host pids of every process in it.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.inner.procs().iter().map(|p| p.pid as i32).collect();
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
        if let Some(c) = self.inner.controller_of::<PidController>() {
            let limit = match c.get_pid_max() {
                Ok(MaxValue::Value(n)) => n,
                _ => 0,
            };
            v["pids"] = serde_json::json!({
                "current": c.get_pid_current().unwrap_or(0),
                "limit": limit,
            });
        }
        v["cpu"] = serde_json::json!({ "usage": { "total": self.cpu_usage_ns() } });
        v
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
        if !self.inner.exists() {
            return Ok(());
        }
        let _ = self.set_frozen(false);
        let mut last = None;
        for _ in 0..200 {
            match self.inner.delete() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(self.err("removing", last.map(|e| e.to_string()).unwrap_or_default()))
    }
}
