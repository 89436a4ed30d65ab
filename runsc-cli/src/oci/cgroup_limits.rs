//! `linux.resources` written to the container's cgroup: memory and cpu when it is created (the
//! whole sandbox is charged for them), pids and devices once the sandbox's own processes have
//! left what concerns the guest alone. Fields a controller here cannot apply are logged and
//! ignored, as runc ignores them (README's table lists each field).

use cgroups_rs::cpu::CpuController;
use cgroups_rs::cpuset::CpuSetController;
use cgroups_rs::memory::MemController;
use cgroups_rs::{Controller, MaxValue};
use oci_spec::runtime::{LinuxMemory, LinuxResources};

use super::cgroup::Cgroup;
use super::{device_bpf, device_rules, OciError};

/// Memory and cpu, on the container's cgroup.
pub fn apply_sandbox(cg: &Cgroup, r: &LinuxResources) -> Result<(), OciError> {
    if let Some(mem) = r.memory() {
        memory(cg, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        if let Some(c) = cg.inner().controller_of::<CpuController>() {
            if let Some(shares) = cpu.shares() {
                // cgroups-rs writes v2's cpu.weight as given: convert as runc does.
                let value = if cg.inner().v2() {
                    shares_to_weight(shares)
                } else {
                    shares
                };
                c.set_shares(value).map_err(|e| cg.err("cpu shares", e))?;
            }
            if cpu.quota().is_some() || cpu.period().is_some() {
                c.set_cfs_quota_and_period(cpu.quota(), cpu.period())
                    .map_err(|e| cg.err("cpu quota", e))?;
            }
        }
        if let Some(c) = cg.inner().controller_of::<CpuSetController>() {
            if let Some(cpus) = cpu.cpus() {
                c.set_cpus(cpus).map_err(|e| cg.err("cpuset.cpus", e))?;
            }
            if let Some(mems) = cpu.mems() {
                c.set_mems(mems).map_err(|e| cg.err("cpuset.mems", e))?;
            }
        }
    }
    let realtime = r.cpu().as_ref().is_some_and(|c| {
        c.realtime_runtime().is_some() || c.realtime_period().is_some() || c.idle().is_some()
    });
    for (set, what) in [
        (realtime, "cpu.realtimeRuntime/realtimePeriod/idle"),
        (r.block_io().is_some(), "blockIO"),
        (r.hugepage_limits().is_some(), "hugepageLimits"),
        (r.network().is_some(), "network"),
        (r.rdma().is_some(), "rdma"),
        (r.unified().is_some(), "unified"),
    ] {
        if set {
            tracing::warn!("linux.resources.{what} is not applied by rvisor; ignored");
        }
    }
    Ok(())
}

/// runc's conversion of v1 `cpu.shares` (2 to 262144) to v2 `cpu.weight` (1 to 10000).
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// runc's conversion of `swap` (memory+swap, v1's meaning) to v2's `memory.swap.max` (swap
/// alone).
fn v2_swap(swap: i64, limit: Option<i64>) -> Result<String, String> {
    match (swap, limit) {
        (-1, _) => Ok("max".into()),
        (_, None | Some(-1) | Some(0)) => Err("swap needs a memory limit".into()),
        (swap, Some(limit)) if swap < limit => Err(format!(
            "swap {swap} (memory+swap) is below the memory limit {limit}"
        )),
        (swap, Some(limit)) => Ok((swap - limit).to_string()),
    }
}

fn memory(cg: &Cgroup, mem: &LinuxMemory) -> Result<(), OciError> {
    let Some(c) = cg.inner().controller_of::<MemController>() else {
        return Ok(());
    };
    let v2 = cg.inner().v2();
    if let Some(limit) = mem.limit() {
        c.set_limit(limit).map_err(|e| cg.err("memory limit", e))?;
    }
    if let Some(swap) = mem.swap() {
        if v2 {
            let value = v2_swap(swap, mem.limit()).map_err(|e| cg.err("memory swap", e))?;
            std::fs::write(c.path().join("memory.swap.max"), value)
                .map_err(|e| cg.err("memory.swap.max", e))?;
        } else {
            c.set_memswap_limit(swap)
                .map_err(|e| cg.err("memory+swap limit (is swap accounting on?)", e))?;
        }
    }
    if let Some(reservation) = mem.reservation() {
        // v1 memory.soft_limit_in_bytes, v2 memory.low (cgroups-rs picks the file).
        let value = if v2 && reservation == -1 {
            "max".to_string()
        } else {
            reservation.to_string()
        };
        let file = if v2 {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        std::fs::write(c.path().join(file), value).map_err(|e| cg.err("memory reservation", e))?;
    }
    if let Some(swappiness) = mem.swappiness() {
        if v2 {
            tracing::warn!("memory.swappiness: cgroup v2 has none; ignored (as runc)");
        } else if swappiness > 100 {
            return Err(OciError::Spec(format!(
                "linux.resources.memory.swappiness {swappiness}: at most 100"
            )));
        } else {
            c.set_swappiness(swappiness)
                .map_err(|e| cg.err("memory.swappiness", e))?;
        }
    }
    if mem.disable_oom_killer() == Some(true) {
        if v2 {
            tracing::warn!("memory.disableOOMKiller: cgroup v2 cannot; ignored (as runc)");
        } else {
            c.disable_oom_killer()
                .map_err(|e| cg.err("memory.oom_control", e))?;
        }
    }
    if mem.kernel().is_some() {
        tracing::warn!(
            "memory.kernel: kernel memory limits are gone from Linux; ignored (as runc)"
        );
    }
    if let Some(tcp) = mem.kernel_tcp() {
        if v2 {
            tracing::warn!("memory.kernelTCP: cgroup v2 has none; ignored (as runc)");
        } else {
            c.set_tcp_limit(tcp)
                .map_err(|e| cg.err("memory.kmem.tcp.limit_in_bytes", e))?;
        }
    }
    Ok(())
}

/// The guest's limits: its task count, and the devices it may open or create (default deny, as
/// runc: the spec's rules then runc's usual nodes).
pub fn apply_guest(cg: &Cgroup, r: Option<&LinuxResources>) -> Result<(), OciError> {
    let limit = r
        .and_then(|r| r.pids().as_ref().map(|p| p.limit()))
        .map(|n| {
            if n > 0 {
                MaxValue::Value(n)
            } else {
                MaxValue::Max
            }
        });
    let rules = device_rules::rules(r.and_then(|r| r.devices().as_deref()))?;
    if cg.inner().v2() {
        let dir = cg.v2_guest_dir();
        if let Some(limit) = limit {
            let value = match limit {
                MaxValue::Value(n) => n.to_string(),
                MaxValue::Max => "max".into(),
            };
            std::fs::write(dir.join("pids.max"), value).map_err(|e| cg.err("pids.max", e))?;
        }
        return device_bpf::attach(&dir, &device_rules::fold(&rules))
            .map_err(|e| cg.err("devices", e));
    }
    if let (Some(limit), Some(c)) = (
        limit,
        cg.inner().controller_of::<cgroups_rs::pid::PidController>(),
    ) {
        c.set_pid_max(limit).map_err(|e| cg.err("pids limit", e))?;
    }
    // Rootless, in a cgroup delegated to the caller without the devices hierarchy: nothing to
    // apply (a rootless guest can create no device node anyway).
    let devices = cg
        .v1_dir("devices")
        .filter(|d| d.exists() || nix::unistd::geteuid().is_root());
    if let Some(dir) = devices {
        for rule in &rules {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            std::fs::write(dir.join(file), rule.v1_line())
                .map_err(|e| cg.err(&format!("{file} {:?}", rule.v1_line()), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{shares_to_weight, v2_swap};

    #[test]
    fn shares_become_weights_as_in_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn v2_swap_is_what_swap_adds_to_memory() {
        assert_eq!(v2_swap(-1, None).unwrap(), "max");
        assert_eq!(v2_swap(300, Some(100)).unwrap(), "200");
        assert_eq!(v2_swap(100, Some(100)).unwrap(), "0");
        assert!(v2_swap(50, Some(100)).is_err());
        assert!(v2_swap(100, None).is_err());
    }
}
