//! Running the OCI commands as an unprivileged user, as `runc --rootless` does: where state
//! goes, which id mappings a spec may ask for, and when a cgroup may be done without.
//!
//! Unprivileged, the sandbox is built the way `rvisor do` builds it rootless: the gofer's user
//! namespace maps its root to the caller, and the guest's (a child of it) maps the process's
//! uid and gid to that root. Nothing is mapped that the caller could not map itself, so no
//! helper (`newuidmap`) is used, and a spec asking for more is refused.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, LinuxResources, Spec};

use super::cgroup::Cgroup;
use super::OciError;

/// State root of a root caller (as runc's `/run/runc`).
pub const ROOT_STATE_DIR: &str = "/run/rvisor";

/// `--rootless`, with runc's values: `auto` (rootless when not root) or a boolean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RootlessMode {
    /// Rootless when the effective uid is not 0.
    #[default]
    Auto,
    /// Always (as root too: a cgroup that cannot be made is done without, as below).
    True,
    /// Never: a cgroup that cannot be made is an error.
    False,
}

impl FromStr for RootlessMode {
    type Err = String;

    /// `auto`, or what Go's `strconv.ParseBool` (runc's parser) takes.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Self::True),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Self::False),
            _ => Err(format!("invalid value {s:?}: use auto, true or false")),
        }
    }
}

impl RootlessMode {
    /// Whether cgroups are handled the rootless way, for a caller whose euid is root or not.
    pub fn cgroups(self, euid_is_root: bool) -> bool {
        match self {
            Self::Auto => !euid_is_root,
            Self::True => true,
            Self::False => false,
        }
    }
}

/// The default `--root`: `/run/rvisor` for root; `$XDG_RUNTIME_DIR/rvisor` for anyone else, as
/// runc uses `$XDG_RUNTIME_DIR/runc` (a user cannot write `/run`).
pub fn default_state_root(euid_is_root: bool, xdg: Option<&OsStr>) -> Result<PathBuf, OciError> {
    if euid_is_root {
        return Ok(PathBuf::from(ROOT_STATE_DIR));
    }
    match xdg.filter(|d| !d.is_empty()).map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Ok(dir.join("rvisor")),
        Some(dir) => Err(OciError::Spec(format!(
            "XDG_RUNTIME_DIR {} is not absolute: fix it or pass --root DIR",
            dir.display()
        ))),
        None => Err(OciError::Spec(
            "running unprivileged, and XDG_RUNTIME_DIR is not set: set it (a directory only you \
             can write) or pass --root DIR for the container state"
                .into(),
        )),
    }
}

/// Why a rootless spec is refused, in one line.
fn refuse(what: String) -> OciError {
    OciError::Spec(format!("rootless container: {what}"))
}

/// The one range a rootless caller may write itself: container id `inside` to its own id.
fn own_range(list: &Option<Vec<LinuxIdMapping>>, kind: &str, own: u32) -> Result<u32, OciError> {
    let list = list.as_deref().unwrap_or_default();
    let describe = || {
        list.iter()
            .map(|m| format!("{}:{}:{}", m.container_id(), m.host_id(), m.size()))
            .collect::<Vec<_>>()
            .join(",")
    };
    match list {
        [] => Err(refuse(format!(
            "linux.{kind}Mappings is empty: map a container {kind} to yours ({own}), size 1 \
             (`rvisor spec --rootless` writes it)"
        ))),
        [m] if m.host_id() == own && m.size() == 1 => Ok(m.container_id()),
        _ => Err(refuse(format!(
            "linux.{kind}Mappings ({}, as container:host:size) maps more than your own {kind} \
             {own} (size 1); that needs new{kind}map and /etc/sub{kind}, which rvisor does not \
             use",
            describe()
        ))),
    }
}

/// Checks that an unprivileged caller's spec asks for nothing beyond the caller's own ids: a
/// user namespace whose uid and gid mappings are each the caller's id, size 1, and a process
/// running as those mapped ids without supplementary groups (all as runc refuses).
pub fn check_spec(spec: &Spec, euid: u32, egid: u32) -> Result<(), OciError> {
    let linux = spec.linux().as_ref();
    let userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    let linux = match linux {
        Some(l) if userns => l,
        _ => {
            return Err(refuse(
                "the spec has no user namespace (`rvisor spec --rootless` writes one mapping \
                 you to root)"
                    .into(),
            ))
        }
    };
    // setns needs CAP_SYS_ADMIN in our own user namespace too, which an unprivileged caller
    // never has: say so before anything is made.
    if let Some(ns) = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_some())
    {
        return Err(refuse(format!(
            "joining the network namespace {} needs privileges an unprivileged user does not \
             have; give the container a network namespace of its own (no path)",
            ns.path()
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        )));
    }
    let uid = own_range(linux.uid_mappings(), "uid", euid)?;
    let gid = own_range(linux.gid_mappings(), "gid", egid)?;
    let user = spec.process().as_ref().map(|p| p.user());
    if let Some(user) = user {
        if user.uid() != uid {
            return Err(refuse(format!(
                "process.user.uid {} is not mapped (linux.uidMappings maps only {uid})",
                user.uid()
            )));
        }
        if user.gid() != gid {
            return Err(refuse(format!(
                "process.user.gid {} is not mapped (linux.gidMappings maps only {gid})",
                user.gid()
            )));
        }
        if user
            .additional_gids()
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            return Err(refuse(
                "process.user.additionalGids cannot be set (an unprivileged user namespace \
                 denies setgroups)"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Checks that an exec into an unprivileged caller's container asks for ids its user namespace
/// maps (`/proc/<init>/{uid,gid}_map`, readable by anyone), and no supplementary groups: else the
/// kernel's bare EINVAL would come from deep in the joining process.
pub fn check_exec_ids(init: i32, uid: u32, gid: u32, groups: &[u32]) -> Result<(), OciError> {
    for (kind, id) in [("uid", uid), ("gid", gid)] {
        let map = std::fs::read_to_string(format!("/proc/{init}/{kind}_map")).unwrap_or_default();
        let ranges: Vec<(u32, u32)> = map
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace().map(|v| v.parse::<u32>().ok());
                let (inside, _, count) = (f.next()??, f.next()??, f.next()??);
                Some((inside, count))
            })
            .collect();
        if !ranges
            .iter()
            .any(|&(inside, count)| id >= inside && id - inside < count)
        {
            let mapped: Vec<String> = ranges
                .iter()
                .map(|&(i, c)| match c {
                    1 => i.to_string(),
                    c => format!("{i}-{}", i + (c - 1)),
                })
                .collect();
            return Err(refuse(format!(
                "{kind} {id} is not mapped in the container (its user namespace maps {})",
                mapped.join(",")
            )));
        }
    }
    if !groups.is_empty() {
        return Err(refuse(
            "supplementary groups cannot be set (an unprivileged user namespace denies setgroups)"
                .into(),
        ));
    }
    Ok(())
}

/// Whether the spec asks for a limit rvisor applies (memory, swap, pids, cpu): without a
/// cgroup it could not be held. Device rules are not limits here: the sandbox makes its own
/// `/dev`, and runc ignores them rootless too.
pub fn asks_for_limits(r: &LinuxResources) -> bool {
    let memory = r
        .memory()
        .as_ref()
        .is_some_and(|m| m.limit().is_some() || m.swap().is_some());
    let pids = r.pids().as_ref().is_some_and(|p| p.limit() > 0);
    let cpu = r.cpu().as_ref().is_some_and(|c| {
        c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.cpus().is_some()
            || c.mems().is_some()
    });
    memory || pids || cpu
}

/// The container's cgroup, at `path` (from the spec's `cgroups_path`). Handled rootless
/// (`--rootless`), a cgroup the caller may not create is done without when the spec neither
/// names one nor asks for limits, as runc does: the sandbox is then bounded by the caller's own
/// cgroup and rlimits. Otherwise, and when not rootless, failing to create it is an error.
pub fn cgroup(
    mode: RootlessMode,
    path: &str,
    cgroups_path: Option<&std::path::Path>,
    resources: Option<&LinuxResources>,
) -> Result<Option<Cgroup>, OciError> {
    let rootless = mode.cgroups(nix::unistd::geteuid().is_root());
    let named = cgroups_path.is_some_and(|p| !p.as_os_str().is_empty());
    let err = match Cgroup::create(path, resources) {
        Ok(cg) => return Ok(Some(cg)),
        Err(OciError::CgroupUnavailable { err, .. })
            if rootless
                && matches!(
                    err.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS)
                ) =>
        {
            err
        }
        Err(e) => return Err(e),
    };
    if named {
        return Err(refuse(format!(
            "linux.cgroupsPath names cgroup {path}, which you cannot create ({err}): have it \
             delegated to you, or leave cgroupsPath out"
        )));
    }
    if resources.is_some_and(asks_for_limits) {
        return Err(refuse(format!(
            "linux.resources asks for limits, but cgroup {path} cannot be created ({err}): \
             have a cgroup delegated to you and name it in linux.cgroupsPath, or drop the limits"
        )));
    }
    tracing::debug!("rootless: no cgroup ({path}: {err})");
    Ok(None)
}

/// Host pids of the processes in the pid namespace of `init`, for a container without a cgroup
/// (`kill --all`, `ps`): those whose `/proc/<pid>/ns/pid` is the init's, and the init and its
/// descendants (a process that made itself non-dumpable hides its namespace link, not its
/// parent).
pub fn pid_namespace_members(init: i32) -> Vec<i32> {
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            parents.push((pid, ppid));
        }
    }
    // The init's namespace: its own link, or (a non-dumpable init) a child's.
    let ns = ns_of(init).or_else(|| {
        parents
            .iter()
            .filter(|&&(_, ppid)| ppid == init)
            .find_map(|&(pid, _)| ns_of(pid))
    });
    let mut members = vec![init];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(
            parents
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(p, _)| p),
        );
        i += 1;
    }
    if let Some(ns) = ns {
        members.extend(
            parents
                .iter()
                .map(|&(pid, _)| pid)
                .filter(|&pid| ns_of(pid).as_ref() == Some(&ns)),
        );
    }
    members.retain(|&pid| parent_of(pid).is_some());
    members.sort_unstable();
    members.dedup();
    members
}

/// The parent of `pid`, from `/proc/<pid>/stat` (readable by anyone); `None` if it is gone.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and parentheses: state, then ppid.
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_mode_parses_as_runc() {
        assert_eq!("auto".parse(), Ok(RootlessMode::Auto));
        for t in ["true", "1", "t", "TRUE", "True"] {
            assert_eq!(t.parse(), Ok(RootlessMode::True), "{t}");
        }
        for f in ["false", "0", "f", "FALSE", "False"] {
            assert_eq!(f.parse(), Ok(RootlessMode::False), "{f}");
        }
        assert!("yes".parse::<RootlessMode>().is_err());
        assert!(RootlessMode::Auto.cgroups(false));
        assert!(!RootlessMode::Auto.cgroups(true));
        assert!(RootlessMode::True.cgroups(true));
        assert!(!RootlessMode::False.cgroups(false));
    }

    #[test]
    fn state_root_defaults() {
        let xdg = Some(OsStr::new("/run/user/1000"));
        assert_eq!(
            default_state_root(true, xdg).unwrap(),
            PathBuf::from("/run/rvisor")
        );
        assert_eq!(
            default_state_root(false, xdg).unwrap(),
            PathBuf::from("/run/user/1000/rvisor")
        );
        for bad in [None, Some(OsStr::new("")), Some(OsStr::new("rel"))] {
            let err = default_state_root(false, bad).unwrap_err().to_string();
            assert!(err.contains("XDG_RUNTIME_DIR"), "{err}");
            assert!(err.contains("--root"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    fn rootless_spec(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v = serde_json::to_value(Spec::rootless(1000, 1001)).unwrap();
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_the_callers_own_ids_may_be_mapped() {
        assert!(check_spec(&rootless_spec(|_| {}), 1000, 1001).is_ok());
        // Another container id is fine, if the process runs as it.
        let other_inside = rootless_spec(|s| {
            s["linux"]["uidMappings"][0]["containerID"] = 7.into();
            s["process"]["user"]["uid"] = 7.into();
        });
        assert!(check_spec(&other_inside, 1000, 1001).is_ok());
        for (edit, says) in [
            (
                Box::new(|s: &mut serde_json::Value| {
                    s["linux"]["uidMappings"][0]["hostID"] = 0.into()
                }) as Box<dyn FnOnce(&mut serde_json::Value)>,
                "uidMappings (0:0:1",
            ),
            (
                Box::new(|s| s["linux"]["gidMappings"][0]["size"] = 65536.into()),
                "gidMappings (0:1001:65536",
            ),
            (
                Box::new(|s| {
                    s["linux"]["uidMappings"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"containerID": 1, "hostID": 100000, "size": 1}))
                }),
                "newuidmap",
            ),
            (
                Box::new(|s| s["linux"]["uidMappings"] = serde_json::json!([])),
                "uidMappings is empty",
            ),
            (
                Box::new(|s| s["process"]["user"]["uid"] = 5.into()),
                "uid 5 is not mapped",
            ),
            (
                Box::new(|s| s["process"]["user"]["gid"] = 5.into()),
                "gid 5 is not mapped",
            ),
            (
                Box::new(|s| s["process"]["user"]["additionalGids"] = serde_json::json!([0])),
                "additionalGids",
            ),
            (
                Box::new(|s| {
                    let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
                    ns.retain(|n| n["type"] != "user");
                }),
                "no user namespace",
            ),
            (
                Box::new(|s| {
                    let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
                    ns.push(serde_json::json!({"type": "network", "path": "/run/netns/x"}));
                }),
                "joining the network namespace /run/netns/x",
            ),
        ] {
            let err = check_spec(&rootless_spec(edit), 1000, 1001)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
            assert!(err.starts_with("rootless container: "), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        // Not for another caller.
        assert!(check_spec(&rootless_spec(|_| {}), 1002, 1001).is_err());
    }

    #[test]
    fn limits_are_what_rvisor_applies() {
        let r = |v: serde_json::Value| -> LinuxResources { serde_json::from_value(v).unwrap() };
        assert!(!asks_for_limits(&r(serde_json::json!({}))));
        assert!(!asks_for_limits(&r(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}]
        }))));
        assert!(!asks_for_limits(&r(
            serde_json::json!({"pids": {"limit": 0}})
        )));
        assert!(asks_for_limits(&r(
            serde_json::json!({"pids": {"limit": 10}})
        )));
        assert!(asks_for_limits(&r(
            serde_json::json!({"memory": {"limit": 1}})
        )));
        assert!(asks_for_limits(&r(
            serde_json::json!({"cpu": {"shares": 2}})
        )));
        assert!(asks_for_limits(&r(
            serde_json::json!({"cpu": {"cpus": "0"}})
        )));
    }
}
