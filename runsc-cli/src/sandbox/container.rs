//! What an OCI container asks of a sandbox beyond what `rvisor do` does. Everything here is
//! empty for `rvisor do`.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use sentry::filter::BpfProgram;

use super::hooks::Hook;

/// A resource limit set on the command (`RLIMIT_*`, soft, hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `libc::RLIMIT_*`.
    pub resource: u32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Capability sets of the command, as capability numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: Vec<u32>,
    /// Effective set.
    pub effective: Vec<u32>,
    /// Permitted set.
    pub permitted: Vec<u32>,
    /// Inheritable set.
    pub inheritable: Vec<u32>,
    /// Ambient set.
    pub ambient: Vec<u32>,
}

/// A tmpfs the spec mounts somewhere the sandbox does not already provide one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    /// Absolute path in the sandbox.
    pub dest: PathBuf,
    /// tmpfs data options (`size=`, `mode=`...).
    pub data: String,
    /// Read-only.
    pub readonly: bool,
    /// How many of the sandbox's volumes come before it in the spec: the tree's mounts are made
    /// in the spec's order, so a later one lands on top of an earlier one.
    pub after_volumes: usize,
}

/// A mount the spec places in the guest's own pseudo filesystems (`/proc`, `/sys`, `/dev`),
/// whose paths the kernel resolves in the guest's view: made by the guest init over its own
/// proc, sys and dev, in the spec's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestMount {
    /// A tmpfs (`/dev/shm` with the spec's size).
    Tmpfs(Tmpfs),
    /// A bind of a host path, which the gofer stages (held, restricted) for the init.
    Bind(super::spec::Volume),
    /// A POSIX message queue filesystem.
    Mqueue(PathBuf),
}

impl GuestMount {
    /// Where it goes.
    pub fn dest(&self) -> &std::path::Path {
        match self {
            GuestMount::Tmpfs(t) => &t.dest,
            GuestMount::Bind(v) => &v.dest,
            GuestMount::Mqueue(dest) => dest,
        }
    }
}

/// A device node of the spec (`linux.devices`), created in the guest's `/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Absolute path in the sandbox, under `/dev`.
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO` with the permission bits.
    pub mode: u32,
    /// Major and minor number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Owner, as a host id (the spec's, through the id map).
    pub uid: u32,
    /// Group, as a host id.
    pub gid: u32,
}

/// OCI-only settings.
#[derive(Debug, Clone, Default)]
pub struct ContainerSettings {
    /// The command replaces the guest init as PID 1 (an OCI container's process is PID 1
    /// unless `--init` asks for a reaper).
    pub exec_as_init: bool,
    /// The guest's id map, run as root: the spec's uid/gid mappings, or every id to itself (as
    /// runc without a user namespace). `None`: `rvisor do`'s map.
    pub id_map: Option<gofer::IdMap>,
    /// Supplementary groups.
    pub extra_gids: Vec<u32>,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
    /// Capabilities; `None` keeps what the identity gives.
    pub capabilities: Option<CapSets>,
    /// The command gets a new pty, whose master goes to the console socket.
    pub terminal: bool,
    /// Extra tmpfs mounts in the tree.
    pub tmpfs: Vec<Tmpfs>,
    /// Mounts in the guest's own proc, sys and dev (and mqueue), in the spec's order.
    pub guest_mounts: Vec<GuestMount>,
    /// Device nodes of the spec.
    pub devices: Vec<Device>,
    /// Paths hidden from the guest.
    pub masked_paths: Vec<PathBuf>,
    /// Paths made read-only.
    pub readonly_paths: Vec<PathBuf>,
    /// Namespaced sysctls to set (`net.ipv4.ip_forward`, `1`).
    pub sysctls: Vec<(String, String)>,
    /// The spec's own seccomp filters, installed on top of the sentry's.
    pub seccomp: Vec<BpfProgram>,
    /// NIS domain name.
    pub domainname: String,
    /// `oom_score_adj` of every sandbox process.
    pub oom_score_adj: Option<i32>,
    /// `startContainer` hooks: run in the container after `start`, before the command.
    pub start_hooks: Vec<Hook>,
    /// `--preserve-fds N` (also `rvisor do`): the caller's fds 3 to 2+N reach the command; no
    /// other fd of the caller or of rvisor does.
    pub preserve_fds: u32,
    /// `--host-uds=open` (also `rvisor do`): the guest may connect to Unix sockets it did not
    /// create (a volume's, or the host root's with `--overlay=none`).
    pub host_sockets: bool,
    /// Existing namespaces to join (a pod's ipc, uts, pid...), by path.
    pub joins: Vec<super::ns_join::NsJoin>,
    /// The spec's `noNewPrivileges` is false: no_new_privs stays off in the guest (the
    /// default, for `rvisor do`, sets it).
    pub new_privileges: bool,
}

/// Descriptors a detached sandbox is handed by the runtime that creates it.
#[derive(Debug, Default)]
pub struct Attach {
    /// A connected `--console-socket`, for the pty master.
    pub console: Option<OwnedFd>,
    /// The listening control socket (start, exec, stats).
    pub control: Option<OwnedFd>,
    /// Where the sentry writes the exit status.
    pub exit_status: Option<OwnedFd>,
    /// Where the sentry reports "created" (pids) or a setup failure.
    pub created: Option<OwnedFd>,
}

impl Attach {
    /// Whether the sandbox outlives the runtime command that made it (an OCI container).
    pub fn detached(&self) -> bool {
        self.created.is_some()
    }
}

/// Points stdio at /dev/null: a detached sentry or gofer must not hold the creating command's
/// stdio (containerd's shim reads `create`'s output to EOF), only the guest keeps it.
pub fn release_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd);
        }
    }
}
