//! Per-sandbox state the handlers share: the emulated UTS names, the task table, the clock.

use std::time::Instant;

use parking_lot::Mutex;

use crate::gofer_client::GoferClient;
use crate::syscalls::UTS_LEN;
use crate::task::{IdView, TaskTable};
use rvisor_protocol::MAX_OUTSIDE;

/// One UTS name: at most 64 bytes, kept inline so that setting it never allocates.
#[derive(Debug, Clone, Copy)]
struct UtsField {
    bytes: [u8; UTS_LEN],
    len: usize,
}

impl UtsField {
    fn new(value: &[u8]) -> Self {
        let mut f = UtsField {
            bytes: [0; UTS_LEN],
            len: 0,
        };
        f.set(value);
        f
    }
    fn set(&mut self, value: &[u8]) {
        let len = value.len().min(UTS_LEN);
        self.bytes[..len].copy_from_slice(&value[..len]);
        self.len = len;
    }
    fn get(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The names `uname` reports.
#[derive(Debug)]
pub struct Uts {
    hostname: UtsField,
    domainname: UtsField,
    release: UtsField,
    version: UtsField,
}

impl Uts {
    /// Node name.
    pub fn hostname(&self) -> &[u8] {
        self.hostname.get()
    }
    /// NIS domain name.
    pub fn domainname(&self) -> &[u8] {
        self.domainname.get()
    }
    /// Kernel release string.
    pub fn release(&self) -> &[u8] {
        self.release.get()
    }
    /// Kernel version string.
    pub fn version(&self) -> &[u8] {
        self.version.get()
    }
    /// sethostname(2).
    pub fn set_hostname(&mut self, name: &[u8]) {
        self.hostname.set(name);
    }
    /// setdomainname(2).
    pub fn set_domainname(&mut self, name: &[u8]) {
        self.domainname.set(name);
    }
}

/// How a sandbox presents itself.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Initial host name.
    pub hostname: String,
    /// Initial domain name.
    pub domainname: String,
    /// Kernel release reported by uname.
    pub release: String,
    /// Kernel version reported by uname.
    pub version: String,
    /// The kernel refuses Unix connects and addressed Unix sends that guest tasks make natively
    /// (the runtime's guard cgroup): only then may `sendmsg` on a socket that cannot address a
    /// path run natively, since a sibling thread may swap the fd before the kernel runs it.
    pub kernel_unix_guard: bool,
    /// The fd number every guest process holds the platform's reserved socket at (ptrace: the
    /// tracer hands it fds there), if any. A second handle to it would let one guest process
    /// receive the fds meant for another, so no `sendmsg` runs natively (its SCM_RIGHTS are in
    /// guest memory) and none made here may carry it.
    pub reserved_fd: Option<i32>,
    /// The guest shares the host's network namespace (`--network=host`, an OCI spec without
    /// a network namespace): then it may also use what no namespace separates (vsock).
    pub host_network: bool,
    /// The objects (device, inode) handed in from outside: the caller's stdio and
    /// `--preserve-fds` that are files, devices, directories or named FIFOs. The guest uses them
    /// through its fds, but changes none of their attributes.
    pub outside: Vec<(u64, u64)>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let host = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            host.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        SandboxConfig {
            hostname: "rvisor".into(),
            domainname: "(none)".into(),
            release: field(|u| u.release()),
            version: field(|u| u.version()),
            kernel_unix_guard: false,
            reserved_fd: None,
            host_network: false,
            outside: Vec::new(),
        }
    }
}

/// The state of one sandbox as its handlers see it.
#[derive(Debug)]
pub struct Sandbox {
    /// Emulated UTS names.
    pub uts: Mutex<Uts>,
    /// Guest threads and processes.
    pub tasks: TaskTable,
    /// The channel to the gofer, once there is one.
    pub gofer: Option<GoferClient>,
    /// How host ids appear to the guest (for metadata the sentry reads itself).
    pub ids: HostIds,
    /// See [`SandboxConfig::kernel_unix_guard`].
    pub kernel_unix_guard: bool,
    /// See [`SandboxConfig::reserved_fd`].
    pub reserved_fd: Option<i32>,
    /// See [`SandboxConfig::host_network`].
    pub host_network: bool,
    /// See [`SandboxConfig::outside`]; processes that join add theirs.
    outside: Mutex<Vec<(u64, u64)>>,
    started: Instant,
}

impl Sandbox {
    /// A fresh sandbox.
    pub fn new(config: &SandboxConfig) -> Self {
        Sandbox {
            uts: Mutex::new(Uts {
                hostname: UtsField::new(config.hostname.as_bytes()),
                domainname: UtsField::new(config.domainname.as_bytes()),
                release: UtsField::new(config.release.as_bytes()),
                version: UtsField::new(config.version.as_bytes()),
            }),
            tasks: TaskTable::new(),
            gofer: None,
            ids: HostIds::default(),
            kernel_unix_guard: config.kernel_unix_guard,
            reserved_fd: config.reserved_fd,
            host_network: config.host_network,
            outside: Mutex::new(config.outside.clone()),
            started: Instant::now(),
        }
    }

    /// Host ids as the guest's user namespace shows them.
    pub fn with_ids(mut self, ids: HostIds) -> Self {
        self.tasks.set_view(std::sync::Arc::new(ids.clone()));
        self.ids = ids;
        self
    }

    /// Serves file calls through `gofer`.
    pub fn with_gofer(mut self, gofer: GoferClient) -> Self {
        self.gofer = Some(gofer);
        self
    }

    /// Whether the object `(dev, ino)` was handed in from outside ([`SandboxConfig::outside`]).
    pub fn is_from_outside(&self, dev: u64, ino: u64) -> bool {
        self.outside.lock().contains(&(dev, ino))
    }

    /// Records objects handed in to a process that joins the sandbox (`rvisor exec`), up to
    /// [`MAX_OUTSIDE`] in all; the gofer records them too (a handed-in file may also lie in a
    /// volume). Fails when either cannot: the process must not start unguarded.
    pub fn hand_in(&self, objects: &[(u64, u64)]) -> Result<(), nix::errno::Errno> {
        {
            let mut outside = self.outside.lock();
            for &o in objects {
                if !outside.contains(&o) {
                    if outside.len() >= MAX_OUTSIDE {
                        return Err(nix::errno::Errno::ENOSPC);
                    }
                    outside.push(o);
                }
            }
        }
        if let Some(gofer) = &self.gofer {
            let arena = bumpalo::Bump::new();
            let req = rvisor_protocol::Request::HandIn {
                objects: objects.to_vec(),
            };
            gofer.call(&arena, rvisor_protocol::Identity::new(0, 0), &req, None)?;
        }
        Ok(())
    }

    /// Seconds since the sandbox started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// `(inside, outside, count)` ranges of a user namespace map.
pub type IdRanges = Vec<(u32, u32, u32)>;

/// Host uid/gid pairs `(host, guest)` the guest's user namespace maps; anything else shows as
/// the overflow id, as the kernel shows it.
#[derive(Debug, Clone, Default)]
pub struct HostIds {
    /// `(host uid, guest uid)` pairs.
    pub uids: Vec<(u32, u32)>,
    /// `(host gid, guest gid)` pairs.
    pub gids: Vec<(u32, u32)>,
    /// The whole map as `(inside, outside, count)` ranges of uids and gids, when it is more
    /// than pairs (an OCI container run as root); the pairs are then unused.
    pub ranges: Option<(IdRanges, IdRanges)>,
}

const OVERFLOW_ID: u32 = 65534;

impl HostIds {
    fn range_in(ranges: &[(u32, u32, u32)], host: u32) -> u32 {
        ranges
            .iter()
            .find(|&&(_, outside, count)| host >= outside && host - outside < count)
            .map_or(OVERFLOW_ID, |&(inside, outside, _)| {
                inside + (host - outside)
            })
    }

    fn map(pairs: &[(u32, u32)], host: u32) -> u32 {
        pairs
            .iter()
            .find(|p| p.0 == host)
            .map_or(OVERFLOW_ID, |p| p.1)
    }

    fn uid_of(&self, host: u32) -> u32 {
        match &self.ranges {
            Some((uids, _)) => Self::range_in(uids, host),
            None => Self::map(&self.uids, host),
        }
    }

    fn gid_of(&self, host: u32) -> u32 {
        match &self.ranges {
            Some((_, gids)) => Self::range_in(gids, host),
            None => Self::map(&self.gids, host),
        }
    }

    /// `guest` as the host knows it, through `ranges` (the whole map) or else `pairs` (host,
    /// guest); without either, itself.
    fn out_of(ranges: Option<&IdRanges>, pairs: &[(u32, u32)], guest: u32) -> Option<u32> {
        match ranges {
            Some(ranges) => ranges
                .iter()
                .find(|&&(inside, _, count)| guest >= inside && guest - inside < count)
                .map(|&(inside, outside, _)| outside + (guest - inside)),
            None if pairs.is_empty() => Some(guest),
            None => pairs.iter().find(|p| p.1 == guest).map(|p| p.0),
        }
    }

    /// The host uid the guest's `guest` is, if its namespace maps it (itself without a map).
    pub fn uid_to_host(&self, guest: u32) -> Option<u32> {
        Self::out_of(self.ranges.as_ref().map(|r| &r.0), &self.uids, guest)
    }

    /// The host gid the guest's `guest` is, if its namespace maps it (itself without a map).
    pub fn gid_to_host(&self, guest: u32) -> Option<u32> {
        Self::out_of(self.ranges.as_ref().map(|r| &r.1), &self.gids, guest)
    }

    /// A statx read by the sentry, with owners as the guest sees them.
    pub fn to_guest_statx(&self, mut x: libc::statx) -> libc::statx {
        x.stx_uid = self.uid_of(x.stx_uid);
        x.stx_gid = self.gid_of(x.stx_gid);
        x
    }
}

impl IdView for HostIds {
    fn uid(&self, host: u32) -> u32 {
        self.uid_of(host)
    }
    fn gid(&self, host: u32) -> u32 {
        self.gid_of(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_ids_go_back_to_the_host_through_the_map_that_made_them() {
        let pairs = HostIds {
            uids: vec![(1000, 0)],
            gids: vec![(1000, 0), (1001, 5)],
            ranges: None,
        };
        assert_eq!(pairs.uid_to_host(0), Some(1000));
        assert_eq!(pairs.uid_to_host(1), None);
        assert_eq!(pairs.gid_to_host(5), Some(1001));
        let ranges = HostIds {
            ranges: Some((vec![(0, 100_000, 65536)], vec![(0, 200_000, 10)])),
            ..HostIds::default()
        };
        assert_eq!(ranges.uid_to_host(65535), Some(165_535));
        assert_eq!(ranges.uid_to_host(65536), None);
        assert_eq!(ranges.gid_to_host(9), Some(200_009));
        assert_eq!(HostIds::default().uid_to_host(42), Some(42));
        // Each way round agrees.
        assert_eq!(ranges.uid_of(ranges.uid_to_host(7).unwrap()), 7);
    }
}
