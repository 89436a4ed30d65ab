//! A bundle's `config.json` (parsed by oci-spec) turned into a sandbox.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};

use super::OciError;
use crate::sandbox::hooks::Hook;
use crate::sandbox::ns_join::{NsJoin, NsKind};
use crate::sandbox::{CapSets, ContainerSettings, Network, Overlay, Rlimit, SandboxSpec};

/// Capability names in kernel order (`CAP_CHOWN` is 0).
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Resource limit names, `RLIMIT_` stripped, by number.
const RLIMIT_NAMES: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

/// Namespaced sysctls a container may set (as runc allows).
const SYSCTL_PREFIXES: [&str; 3] = ["kernel.msg", "kernel.sem", "fs.mqueue."];
const SYSCTL_NAMES: [&str; 4] = [
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Runtime-wide choices (global flags) that shape every container.
#[derive(Debug, Clone)]
pub struct Options {
    /// What takes writes to a writable root (`root.readonly: false`): the rootfs itself by
    /// default, as with runc.
    pub overlay: Overlay,
    /// `--init`: a reaper is PID 1 and the process its child.
    pub init: bool,
    /// `--host-uds=open`: the guest may reach Unix sockets it did not create.
    pub host_sockets: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            overlay: Overlay::Rootfs,
            init: false,
            host_sockets: false,
        }
    }
}

/// Every hook kind the spec names.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// prestart (run by create, in the runtime's namespaces).
    pub prestart: Vec<Hook>,
    /// createRuntime.
    pub create_runtime: Vec<Hook>,
    /// createContainer.
    pub create_container: Vec<Hook>,
    /// poststart.
    pub poststart: Vec<Hook>,
    /// poststop.
    pub poststop: Vec<Hook>,
}

/// A bundle, ready to create.
#[derive(Debug)]
pub struct Bundle {
    /// The sandbox to start.
    pub sandbox: SandboxSpec,
    /// Hooks the runtime runs (startContainer ones are in the sandbox).
    pub hooks: Hooks,
    /// Cgroup limits.
    pub resources: Option<LinuxResources>,
    /// The spec's cgroupsPath.
    pub cgroups_path: Option<PathBuf>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Absolute root filesystem path.
    pub rootfs: PathBuf,
    /// The spec's seccomp profile, kept for the processes `exec` adds later.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

pub(super) fn spec_err(what: impl Into<String>) -> OciError {
    OciError::Spec(what.into())
}

/// The serde name of a spec enum value (`"CAP_CHOWN"`, `"RLIMIT_NOFILE"`).
fn serde_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn caps(set: Option<&oci_spec::runtime::Capabilities>) -> Vec<u32> {
    let mut out: Vec<u32> = set
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_name(c);
            let name = name.strip_prefix("CAP_")?;
            CAP_NAMES.iter().position(|n| *n == name).map(|i| i as u32)
        })
        .collect();
    out.sort_unstable();
    out
}

fn hooks(list: &Option<Vec<oci_spec::runtime::Hook>>) -> Vec<Hook> {
    list.iter()
        .flatten()
        .map(|h| Hook {
            path: h.path().clone(),
            args: h.args().clone().unwrap_or_default(),
            env: h.env().clone().unwrap_or_default(),
            timeout: h
                .timeout()
                .and_then(|t| u64::try_from(t).ok())
                .filter(|&t| t > 0),
        })
        .collect()
}

/// Reads and checks `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, OciError> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| spec_err(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| spec_err(format!("{}: {e}", path.display())))
}

fn process_settings(p: &Process, settings: &mut ContainerSettings) -> Result<(), OciError> {
    settings.extra_gids = p.user().additional_gids().clone().unwrap_or_default();
    // (uid_t)-1 is "leave unchanged" to setresuid and setresgid: taken as an id, the process
    // would silently stay root.
    let user = p.user();
    for (what, id) in [("uid", user.uid()), ("gid", user.gid())]
        .into_iter()
        .chain(settings.extra_gids.iter().map(|&g| ("additional gid", g)))
    {
        if id == u32::MAX {
            return Err(spec_err(format!(
                "process.user: {what} {id} is (uid_t)-1, not an id"
            )));
        }
    }
    settings.terminal = p.terminal().unwrap_or(false);
    settings.oom_score_adj = p.oom_score_adj();
    // Absent is false, as in runc (Docker's and Kubernetes' default).
    settings.new_privileges = !p.no_new_privileges().unwrap_or(false);
    for r in p.rlimits().iter().flatten() {
        let name = serde_name(&r.typ());
        let resource = name
            .strip_prefix("RLIMIT_")
            .and_then(|n| RLIMIT_NAMES.iter().position(|x| *x == n))
            .ok_or_else(|| spec_err(format!("unknown rlimit {name}")))?;
        if r.soft() > r.hard() {
            return Err(spec_err(format!(
                "rlimit {name}: soft {} above hard {}",
                r.soft(),
                r.hard()
            )));
        }
        settings.rlimits.push(Rlimit {
            resource: resource as u32,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    if let Some(c) = p.capabilities() {
        settings.capabilities = Some(CapSets {
            bounding: caps(c.bounding().as_ref()),
            effective: caps(c.effective().as_ref()),
            permitted: caps(c.permitted().as_ref()),
            inheritable: caps(c.inheritable().as_ref()),
            ambient: caps(c.ambient().as_ref()),
        });
    }
    Ok(())
}

/// A process of the spec (the container's, or one given to `exec`) as a process joining the
/// sandbox.
pub fn join_spec(p: &Process) -> Result<crate::sandbox::join::JoinSpec, OciError> {
    super::lsm::check_process(p)?;
    let mut settings = ContainerSettings::default();
    process_settings(p, &mut settings)?;
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(spec_err("the process has no args"));
    }
    Ok(crate::sandbox::join::JoinSpec {
        args,
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().clone(),
        uid: p.user().uid(),
        gid: p.user().gid(),
        groups: settings.extra_gids,
        capabilities: settings.capabilities,
        rlimits: settings.rlimits,
        preserve_fds: 0,
        new_privileges: settings.new_privileges,
        seccomp: Vec::new(),
    })
}

/// Refuses a namespace path that is the runtime's own namespace of that kind (`kind` as in
/// `/proc/self/ns/<kind>`), or the host init's: the pid a container reports is its sentry's,
/// which lives in the host's namespaces, so `/proc/<that pid>/ns/net` would silently give a
/// container the host's network. Namespaces are compared by (st_dev, st_ino).
fn refuse_host_namespace(path: &Path, kind: &str, name: &str) -> Result<(), OciError> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    let target =
        id(path).map_err(|e| spec_err(format!("{name} namespace {}: {e}", path.display())))?;
    let own = Path::new("/proc/self/ns").join(kind);
    let own = id(&own).map_err(|e| {
        spec_err(format!(
            "{name} namespace {}: cannot tell it from the host's ({}: {e})",
            path.display(),
            own.display()
        ))
    })?;
    let init = id(&Path::new("/proc/1/ns").join(kind)).ok();
    if target == own || Some(target) == init {
        return Err(spec_err(format!(
            "{name} namespace {} is the host's own (the runtime's): refusing to join it; give \
             the container a namespace of its own",
            path.display()
        )));
    }
    Ok(())
}

fn namespaces(spec: &Spec, sandbox: &mut SandboxSpec) -> Result<(), OciError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    sandbox.network = Network::Host;
    for ns in linux.namespaces().iter().flatten() {
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::Network, None) => sandbox.network = Network::Loopback,
            (LinuxNamespaceType::Network, Some(path)) => {
                refuse_host_namespace(path, "net", "network")?;
                sandbox.network = Network::Join(path.clone());
            }
            (_, None) => {}
            (typ, Some(path)) => {
                let kind = match typ {
                    LinuxNamespaceType::Ipc => NsKind::Ipc,
                    LinuxNamespaceType::Uts => NsKind::Uts,
                    LinuxNamespaceType::Pid => NsKind::Pid,
                    LinuxNamespaceType::Cgroup => NsKind::Cgroup,
                    LinuxNamespaceType::Time => NsKind::Time,
                    LinuxNamespaceType::Mount => {
                        return Err(OciError::Unsupported(format!(
                            "joining the mount namespace {}: the sandbox's files are served by \
                             its own gofer, which another mount namespace would contradict",
                            path.display()
                        )))
                    }
                    LinuxNamespaceType::User => NsKind::User,
                    LinuxNamespaceType::Network => unreachable!("matched above"),
                };
                refuse_host_namespace(path, kind.proc_name(), kind.proc_name())?;
                sandbox.container.joins.push(NsJoin {
                    kind,
                    path: path.clone(),
                });
            }
        }
    }
    // A joined uts namespace keeps its names (as runc, a spec may not set them there).
    if let Some(uts) = sandbox
        .container
        .joins
        .iter()
        .find(|j| j.kind == NsKind::Uts)
    {
        if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) {
            return Err(spec_err(
                "hostname is set but the uts namespace is joined, not new: cannot set it",
            ));
        }
        let (host, domain) = crate::sandbox::ns_join::hostname_of(&uts.path)?;
        sandbox.hostname = host;
        sandbox.container.domainname = domain;
    }
    Ok(())
}

fn sysctls(spec: &Spec, sandbox: &mut SandboxSpec) -> Result<(), OciError> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().clone()) else {
        return Ok(());
    };
    let mut list: Vec<(String, String)> = map.into_iter().collect();
    list.sort();
    for (key, _) in &list {
        let net_ok = key.starts_with("net.") && sandbox.network == Network::Loopback;
        let ok = net_ok
            || SYSCTL_NAMES.contains(&key.as_str())
            || SYSCTL_PREFIXES.iter().any(|p| key.starts_with(p));
        if !ok || key.contains('/') || key.contains("..") {
            return Err(spec_err(format!(
                "sysctl {key:?} is not namespaced (not allowed in a container)"
            )));
        }
    }
    sandbox.container.sysctls = list;
    Ok(())
}

/// The guest's id map: the spec's mappings when it asks for a user namespace, else every id to
/// itself.
fn id_map(spec: &Spec) -> Result<gofer::IdMap, OciError> {
    let Some(linux) = spec.linux() else {
        return Ok(crate::sandbox::idmap::container_map());
    };
    // A user namespace joined by path brings its own maps (read from its owner at create).
    let userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let ranges = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<gofer::IdRange> {
        m.iter()
            .flatten()
            .map(|r| gofer::IdRange {
                inside: r.container_id(),
                outside: r.host_id(),
                count: r.size(),
            })
            .collect()
    };
    let (uids, gids) = (ranges(linux.uid_mappings()), ranges(linux.gid_mappings()));
    match (userns, uids.is_empty() || gids.is_empty()) {
        (false, _) => Ok(crate::sandbox::idmap::container_map()),
        (true, true) => Err(spec_err(
            "a user namespace needs uidMappings and gidMappings",
        )),
        (true, false) => Ok(gofer::IdMap { uids, gids }),
    }
}

/// The guest's hostname: the spec's, or where it names none (or an empty one) the host's, which
/// is what runc's container sees (a new uts namespace starts with a copy of its creator's).
fn hostname(spec: &Spec) -> String {
    match spec.hostname().as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => nix::unistd::gethostname()
            .ok()
            .and_then(|n| n.into_string().ok())
            .unwrap_or_default(),
    }
}

/// Turns the bundle's spec into a sandbox.
pub fn convert(spec: &Spec, bundle: &Path, opts: &Options) -> Result<Bundle, OciError> {
    super::lsm::check(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| spec_err("the spec has no process"))?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(spec_err("process.args is empty"));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| spec_err("the spec has no root"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let mut settings = ContainerSettings {
        exec_as_init: !opts.init,
        host_sockets: opts.host_sockets,
        ..Default::default()
    };
    process_settings(process, &mut settings)?;
    settings.domainname = spec.domainname().clone().unwrap_or_default();
    let linux = spec.linux().as_ref();
    settings.masked_paths = linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    settings.readonly_paths = linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if let Some(profile) = linux.and_then(|l| l.seccomp().as_ref()) {
        settings.seccomp = super::seccomp::compile_profile(profile)?;
    }
    let all = spec.hooks().clone().unwrap_or_default();
    settings.start_hooks = hooks(all.start_container());
    let mut sandbox = SandboxSpec {
        args: args.into_iter().map(OsString::from).collect(),
        env: process
            .env()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(OsString::from)
            .collect(),
        root: rootfs.clone(),
        cwd: process.cwd().clone(),
        cwd_fallback: false,
        volumes: Vec::new(),
        uid: process.user().uid(),
        gid: process.user().gid(),
        hostname: hostname(spec),
        release: None,
        network: Network::Host,
        overlay: if root.readonly().unwrap_or(false) {
            Overlay::None
        } else {
            opts.overlay
        },
        platform: Default::default(),
        workers: crate::sandbox::spec::default_workers(),
        stats: false,
        no_fd_cache: false,
        container: settings,
    };
    sandbox.container.id_map = Some(id_map(spec)?);
    super::mounts::mounts(spec, bundle, &mut sandbox)?;
    sandbox.container.devices = super::devices::nodes(spec, sandbox.container.id_map.as_ref())?;
    namespaces(spec, &mut sandbox)?;
    sysctls(spec, &mut sandbox)?;
    Ok(Bundle {
        sandbox,
        hooks: Hooks {
            prestart: hooks(all.prestart()),
            create_runtime: hooks(all.create_runtime()),
            create_container: hooks(all.create_container()),
            poststart: hooks(all.poststart()),
            poststop: hooks(all.poststop()),
        },
        resources: linux.and_then(|l| l.resources().clone()),
        cgroups_path: linux.and_then(|l| l.cgroups_path().clone()),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        rootfs,
        seccomp: linux.and_then(|l| l.seccomp().clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_converts() {
        let spec = Spec::default();
        let b = convert(&spec, Path::new("/bundle"), &Options::default()).unwrap();
        assert_eq!(b.sandbox.args, vec![OsString::from("sh")]);
        assert_eq!(b.rootfs, PathBuf::from("/bundle/rootfs"));
        assert_eq!(b.sandbox.network, Network::Loopback);
        assert!(b.sandbox.container.exec_as_init);
        let caps = b.sandbox.container.capabilities.unwrap();
        // runc's default: AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
        assert_eq!(caps.bounding, vec![5, 10, 29]);
        assert_eq!(
            b.sandbox.container.rlimits,
            vec![Rlimit {
                resource: 7,
                soft: 1024,
                hard: 1024
            }]
        );
        assert!(b
            .sandbox
            .container
            .masked_paths
            .iter()
            .any(|p| p == Path::new("/proc/kcore")));
    }

    #[test]
    fn a_writable_root_is_written_through_unless_asked_otherwise() {
        let mut spec = Spec::default();
        let overlay = |spec: &Spec, opts: &Options| {
            convert(spec, Path::new("/b"), opts)
                .unwrap()
                .sandbox
                .overlay
        };
        let mut root = spec.root().clone().unwrap();
        root.set_readonly(Some(true));
        spec.set_root(Some(root.clone()));
        assert_eq!(overlay(&spec, &Options::default()), Overlay::None);
        root.set_readonly(Some(false));
        spec.set_root(Some(root));
        assert_eq!(overlay(&spec, &Options::default()), Overlay::Rootfs);
        let memory = Options {
            overlay: Overlay::default(),
            ..Options::default()
        };
        assert_eq!(overlay(&spec, &memory), Overlay::default());
    }

    #[test]
    fn rejects_what_it_cannot_do() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        ns.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Ipc)
                .path("/proc/self/ns/ipc")
                .build()
                .unwrap(),
        );
        linux.set_namespaces(Some(ns));
        spec.set_linux(Some(linux));
        let err = convert(&spec, Path::new("/b"), &Options::default()).unwrap_err();
        assert!(err.to_string().contains("is the host's own"), "{err}");
        // A mount namespace cannot be joined: the gofer serves the sandbox's files.
        let mut linux = spec.linux().clone().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        ns.pop();
        ns.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Mount)
                .path("/proc/self/ns/mnt")
                .build()
                .unwrap(),
        );
        linux.set_namespaces(Some(ns));
        spec.set_linux(Some(linux));
        let err = convert(&spec, Path::new("/b"), &Options::default()).unwrap_err();
        assert!(
            err.to_string().contains("joining the mount namespace"),
            "{err}"
        );
    }

    fn joining_network(path: &Path) -> Result<Bundle, OciError> {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        let ns = linux
            .namespaces()
            .clone()
            .unwrap()
            .into_iter()
            .map(|mut n| {
                if n.typ() == LinuxNamespaceType::Network {
                    n.set_path(Some(path.to_path_buf()));
                }
                n
            })
            .collect();
        linux.set_namespaces(Some(ns));
        spec.set_linux(Some(linux));
        convert(&spec, Path::new("/b"), &Options::default())
    }

    #[test]
    fn the_hosts_network_namespace_cannot_be_joined() {
        // The runtime's own (so the host's): as `/proc/<the sentry's pid>/ns/net` would be.
        let me = format!("/proc/{}/ns/net", std::process::id());
        for path in ["/proc/self/ns/net", "/proc/thread-self/ns/net", me.as_str()] {
            let err = joining_network(Path::new(path)).unwrap_err().to_string();
            assert!(
                err.contains(&format!("network namespace {path} is the host's own")),
                "{path}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        let err = joining_network(Path::new("/nonexistent/netns"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("network namespace /nonexistent/netns"),
            "{err}"
        );
        // Anything else is left to setns (a file that is not a namespace fails there).
        let other = std::env::temp_dir().join(format!("rvisor-netns-{}", std::process::id()));
        std::fs::write(&other, "").unwrap();
        let b = joining_network(&other);
        let _ = std::fs::remove_file(&other);
        assert_eq!(b.unwrap().sandbox.network, Network::Join(other));
    }
}
