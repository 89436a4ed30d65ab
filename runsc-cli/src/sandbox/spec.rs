//! What a sandbox is asked to run, and with which view of the host.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

use super::container::ContainerSettings;

/// How the guest reaches the network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// A new network namespace with loopback up and nothing else.
    #[default]
    Loopback,
    /// The host's network namespace.
    Host,
    /// An existing network namespace, by path (joined by the sentry, inherited by the rest).
    Join(PathBuf),
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" | "loopback" | "sandbox" => Ok(Network::Loopback),
            "host" => Ok(Network::Host),
            _ => Err(format!(
                "unknown network mode {s:?} (expected \"loopback\" or \"host\")"
            )),
        }
    }
}

/// What backs writes to the sandbox root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// An overlay whose upper layer is memory: the guest may change anything, the host nothing.
    Memory {
        /// Bytes the upper layer may hold, together with `/tmp`, `/run` and `/dev/shm` (one
        /// budget for the whole sandbox); [`default_memory_budget`] when `None`.
        size: Option<u64>,
    },
    /// No overlay: writes go to the root itself, made by the gofer (OCI's `root.readonly:
    /// false`, as with runc: the bundle's rootfs is the container's snapshot). The guest's own
    /// view of the root stays read-only.
    Rootfs,
    /// No overlay: the root is read-only; only rw volumes (and /tmp, /run) take writes.
    None,
}

impl Default for Overlay {
    fn default() -> Self {
        Overlay::Memory { size: None }
    }
}

impl Overlay {
    /// Bytes the sandbox's memory filesystems (the overlay's upper layer, `/tmp`, `/run`,
    /// `/dev/shm`) may hold together: the requested size, else the default.
    pub fn budget(self) -> u64 {
        match self {
            Overlay::Memory { size: Some(size) } => size,
            _ => default_memory_budget(),
        }
    }
}

impl FromStr for Overlay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Overlay::default()),
            "rootfs" => Ok(Overlay::Rootfs),
            "none" => Ok(Overlay::None),
            _ => Err(format!(
                "unknown overlay {s:?} (expected \"rootfs\", \"memory\" or \"none\")"
            )),
        }
    }
}

/// The fixed ceiling of the default memory budget.
const DEFAULT_BUDGET_CAP: u64 = 4 << 30;

/// The memory budget of a sandbox that names none: a quarter of the host's memory, at most
/// 4 GiB. A quarter leaves the host three quarters even when a guest fills everything it may
/// (tmpfs pages cannot be reclaimed without swap, and outlive the process that wrote them, so
/// the OOM killer would not free them); the ceiling keeps a large host running many sandboxes
/// from granting each a large share by default. `--overlay-size` asks for more or less.
pub fn default_memory_budget() -> u64 {
    mem_total().map_or(DEFAULT_BUDGET_CAP, |total| {
        (total / 4).min(DEFAULT_BUDGET_CAP)
    })
}

/// The host's memory (`MemTotal`), in bytes.
fn mem_total() -> Option<u64> {
    nix::sys::sysinfo::sysinfo().ok().map(|i| i.ram_total())
}

/// Why a size (`--overlay-size`, the `io.github.rvisor.overlay-size` annotation) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number with an optional unit.
    #[error("{0:?} is not a size (expected bytes, or a number with k, m, g or t, or a percentage of memory: 512m, 2g, 10%)")]
    Malformed(String),
    /// Zero (which tmpfs would take as "unlimited").
    #[error("{0:?}: the size must be more than zero")]
    Zero(String),
    /// A percentage above 100.
    #[error("{0:?}: a percentage of the host's memory must be at most 100%")]
    Percent(String),
    /// More bytes than a u64 holds.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a memory size: bytes (`1048576`), binary units (`512k`, `512m`, `2g`, `1t`, with an
/// optional trailing `b` or `ib`, any case) or a percentage of the host's memory (`10%`, from 1
/// to 100). Zero is refused.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let malformed = || SizeError::Malformed(s.to_string());
    let t = s.trim();
    if let Some(percent) = t.strip_suffix('%') {
        let p = digits(s, percent)?;
        return match p {
            0 => Err(SizeError::Zero(s.to_string())),
            101.. => Err(SizeError::Percent(s.to_string())),
            p => {
                let total = mem_total().ok_or_else(malformed)?;
                Ok((u128::from(total) * u128::from(p) / 100) as u64)
            }
        };
    }
    let lower = t.to_ascii_lowercase();
    let unit_at = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(unit_at);
    let n = digits(s, number)?;
    // "k", "kb" and "kib" are all KiB; "b" alone is bytes, "ib" alone no unit.
    let prefix = match unit.strip_suffix("ib") {
        Some("") => return Err(malformed()),
        Some(prefix) => prefix,
        None => unit.strip_suffix('b').unwrap_or(unit),
    };
    let shift = match prefix {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(malformed()),
    };
    if n == 0 {
        return Err(SizeError::Zero(s.to_string()));
    }
    n.checked_mul(1 << shift)
        .ok_or_else(|| SizeError::TooLarge(s.to_string()))
}

/// `number`, a non-empty run of ASCII digits (no sign, no spaces) of the size `s`, as a number.
fn digits(s: &str, number: &str) -> Result<u64, SizeError> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SizeError::Malformed(s.to_string()));
    }
    number
        .parse()
        .map_err(|_| SizeError::TooLarge(s.to_string()))
}

/// How the sentry traps the guest's system calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlatformKind {
    /// A seccomp user-notify listener (SECCOMP_RET_USER_NOTIF).
    #[default]
    SeccompNotify,
    /// The sentry traces the guest (SECCOMP_RET_TRACE, PTRACE_SEIZE): for kernels or
    /// environments without user-notify.
    Ptrace,
}

impl PlatformKind {
    /// Every platform, as `--platform` names them.
    pub const NAMES: [&'static str; 2] = ["seccomp-notify", "ptrace"];

    /// The name `--platform` takes (and the state records).
    pub fn name(self) -> &'static str {
        match self {
            PlatformKind::SeccompNotify => Self::NAMES[0],
            PlatformKind::Ptrace => Self::NAMES[1],
        }
    }

    /// What the filter returns for a trapped call.
    pub fn trap_return(self) -> sentry::filter::TrapReturn {
        match self {
            PlatformKind::SeccompNotify => sentry::filter::TrapReturn::UserNotif,
            PlatformKind::Ptrace => sentry::filter::TrapReturn::Trace,
        }
    }
}

impl FromStr for PlatformKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match [PlatformKind::SeccompNotify, PlatformKind::Ptrace]
            .into_iter()
            .find(|k| k.name() == s)
        {
            Some(kind) => Ok(kind),
            None => Err(format!(
                "unknown platform {s:?} (expected \"seccomp-notify\" or \"ptrace\")"
            )),
        }
    }
}

/// A host path mounted into the sandbox: `SRC[:DST[:ro|rw]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Host path.
    pub source: PathBuf,
    /// Path inside the sandbox (absolute).
    pub dest: PathBuf,
    /// Mounted read-only.
    pub readonly: bool,
    /// Mounted noexec.
    pub noexec: bool,
}

impl FromStr for Volume {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [src] => (*src, *src, "rw"),
            [src, dst] => (*src, *dst, "rw"),
            [src, dst, mode] => (*src, *dst, *mode),
            _ => return Err(format!("volume {s:?}: expected SRC[:DST[:ro|rw]]")),
        };
        let readonly = match mode {
            "ro" => true,
            "rw" => false,
            _ => {
                return Err(format!(
                    "volume {s:?}: mode must be \"ro\" or \"rw\", not {mode:?}"
                ))
            }
        };
        if !src.starts_with('/') || !dst.starts_with('/') {
            return Err(format!("volume {s:?}: both paths must be absolute"));
        }
        if dst.split('/').any(|c| c == "..") {
            return Err(format!(
                "volume {s:?}: the destination may not contain \"..\""
            ));
        }
        // The sandbox mounts its own /proc, /sys and /dev over whatever a volume put there.
        let top = dst.split('/').find(|c| !c.is_empty()).unwrap_or("");
        if ["proc", "sys", "dev"].contains(&top) {
            return Err(format!(
                "volume {s:?}: the sandbox makes its own /{top}; mount elsewhere"
            ));
        }
        Ok(Volume {
            source: src.into(),
            dest: dst.into(),
            readonly,
            noexec: false,
        })
    }
}

/// Everything needed to start one sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Command and arguments; `args[0]` is looked up in the guest's `PATH`.
    pub args: Vec<OsString>,
    /// Complete environment, `KEY=VALUE`.
    pub env: Vec<OsString>,
    /// Host directory that becomes the guest's `/` (read-only).
    pub root: PathBuf,
    /// Working directory inside the sandbox.
    pub cwd: PathBuf,
    /// Start in `/` when `cwd` does not exist in the sandbox (a defaulted, not a requested, cwd:
    /// the caller's directory may lie under the sandbox's own `/tmp`).
    pub cwd_fallback: bool,
    /// Extra bind mounts.
    pub volumes: Vec<Volume>,
    /// Sandbox uid of the command.
    pub uid: u32,
    /// Sandbox gid of the command.
    pub gid: u32,
    /// Host name inside the sandbox.
    pub hostname: String,
    /// Kernel release reported by uname; the host's when `None`.
    pub release: Option<String>,
    /// Network mode.
    pub network: Network,
    /// What backs writes to the root.
    pub overlay: Overlay,
    /// How guest calls are trapped.
    pub platform: PlatformKind,
    /// Sentry service threads (seccomp-notify; the ptrace platform has one, the tracer). One
    /// serves while trapped calls come one at a time; the others join while they overlap.
    pub workers: usize,
    /// Print the sentry's counters when the sandbox ends.
    pub stats: bool,
    /// Serve every open through the gofer (no fd cache), to measure what the cache saves.
    pub no_fd_cache: bool,
    /// What an OCI container adds.
    pub container: ContainerSettings,
}

/// Sentry workers when not asked: one per CPU this process may use, at most 4 (a second worker
/// only serves while the guest's trapped calls overlap).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_forms() {
        let v: Volume = "/a".parse().unwrap();
        assert_eq!(
            (v.source.to_str(), v.dest.to_str(), v.readonly),
            (Some("/a"), Some("/a"), false)
        );
        let v: Volume = "/a:/b:ro".parse().unwrap();
        assert_eq!((v.dest.to_str(), v.readonly), (Some("/b"), true));
        assert!("/a:/b:rx".parse::<Volume>().is_err());
        assert!("a:/b".parse::<Volume>().is_err());
        assert!("/a:/b/../etc".parse::<Volume>().is_err());
        assert!("/a:/b:ro:x".parse::<Volume>().is_err());
        for under in ["/a:/dev/x", "/a:/proc", "/a://sys/x", "/a:/dev"] {
            assert!(under.parse::<Volume>().is_err(), "{under}");
        }
        assert!("/a:/device".parse::<Volume>().is_ok());
    }

    #[test]
    fn platform_names() {
        for name in PlatformKind::NAMES {
            assert_eq!(name.parse::<PlatformKind>().map(|k| k.name()), Ok(name));
        }
        assert!("kvm".parse::<PlatformKind>().is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert_eq!(parse_size("100b"), Ok(100));
        let total = mem_total().unwrap();
        assert_eq!(parse_size("100%"), Ok(total));
        assert_eq!(parse_size("10%"), Ok(total / 10));
        for bad in [
            "abc", "", "m", "-1", "+1", "1.5g", "1 g", "1x", "1ib", "1kbb", "g1", "%", "-5%",
        ] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert_eq!(parse_size("0"), Err(SizeError::Zero("0".into())));
        assert_eq!(parse_size("0g"), Err(SizeError::Zero("0g".into())));
        assert_eq!(parse_size("0%"), Err(SizeError::Zero("0%".into())));
        assert_eq!(parse_size("200%"), Err(SizeError::Percent("200%".into())));
        for huge in [
            "99999999999t",
            "99999999999999999999999",
            "99999999999999999999999%",
        ] {
            assert!(
                matches!(parse_size(huge), Err(SizeError::TooLarge(_))),
                "{huge:?}"
            );
        }
    }

    #[test]
    fn default_budget_is_bounded() {
        let budget = default_memory_budget();
        assert!(budget > 0 && budget <= DEFAULT_BUDGET_CAP);
        assert!(budget <= mem_total().unwrap() / 4);
        assert_eq!(Overlay::default().budget(), budget);
        assert_eq!(Overlay::Memory { size: Some(5) }.budget(), 5);
    }

    #[test]
    fn overlay_names() {
        assert_eq!("rootfs".parse::<Overlay>(), Ok(Overlay::Rootfs));
        assert_eq!("memory".parse::<Overlay>(), Ok(Overlay::default()));
        assert_eq!("none".parse::<Overlay>(), Ok(Overlay::None));
        assert!("disk".parse::<Overlay>().is_err());
    }

    #[test]
    fn network_modes() {
        assert_eq!("host".parse::<Network>(), Ok(Network::Host));
        assert_eq!("loopback".parse::<Network>(), Ok(Network::Loopback));
        assert!("bridge".parse::<Network>().is_err());
    }
}
