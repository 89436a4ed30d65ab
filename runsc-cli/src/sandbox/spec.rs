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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlay {
    /// An overlay whose upper layer is memory: the guest may change anything, the host nothing.
    #[default]
    Memory,
    /// No overlay: the root is read-only; only rw volumes (and /tmp, /run) take writes.
    None,
}

impl FromStr for Overlay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Overlay::Memory),
            "none" => Ok(Overlay::None),
            _ => Err(format!(
                "unknown overlay {s:?} (expected \"memory\" or \"none\")"
            )),
        }
    }
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
    /// Sentry service threads (seccomp-notify; the ptrace platform has one, the tracer).
    pub workers: usize,
    /// Print the sentry's counters when the sandbox ends.
    pub stats: bool,
    /// Serve every open through the gofer (no fd cache), to measure what the cache saves.
    pub no_fd_cache: bool,
    /// What an OCI container adds.
    pub container: ContainerSettings,
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
    }

    #[test]
    fn platform_names() {
        for name in PlatformKind::NAMES {
            assert_eq!(name.parse::<PlatformKind>().map(|k| k.name()), Ok(name));
        }
        assert!("kvm".parse::<PlatformKind>().is_err());
    }

    #[test]
    fn network_modes() {
        assert_eq!("host".parse::<Network>(), Ok(Network::Host));
        assert_eq!("loopback".parse::<Network>(), Ok(Network::Loopback));
        assert!("bridge".parse::<Network>().is_err());
    }
}
