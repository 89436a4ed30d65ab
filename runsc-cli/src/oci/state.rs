//! Container state under `--root`: one directory per container holding `state.json` (written
//! atomically), `exit` (the sentry writes the exit status there) and `control.sock`. Every
//! command on an id holds an exclusive `flock` on its directory, so concurrent commands on one
//! container are serialised.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OciError;
use crate::sandbox::hooks::Hook;

/// Longest container id accepted.
pub const MAX_ID_LEN: usize = 255;

/// Lifecycle phase as last recorded by a command (the process may have ended since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Created, waiting for start.
    Created,
    /// Started.
    Running,
}

/// Status, as the OCI runtime spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for start.
    Created,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// Its process has exited.
    Stopped,
}

impl Status {
    /// The spec's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Hooks run by later commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LaterHooks {
    /// Run by `start` once the process runs.
    pub poststart: Vec<Hook>,
    /// Run by `delete`.
    pub poststop: Vec<Hook>,
}

/// What `create` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// Bundle directory (absolute).
    pub bundle: PathBuf,
    /// Root filesystem (absolute).
    pub rootfs: PathBuf,
    /// The pid reported (`state`, `--pid-file`): the container's process, the guest init, in
    /// the container's namespaces, and a child of `create`'s caller (whose reaper gets its
    /// status).
    pub pid: i32,
    /// Its start time (clock ticks after boot), to tell it from a reused pid.
    pub pid_start: u64,
    /// Host pid of the container's process (the guest init; the same as `pid`).
    pub init_pid: i32,
    /// The sentry, which outlives the init by its teardown (and records the exit status).
    #[serde(default)]
    pub sentry_pid: i32,
    /// Its start time.
    #[serde(default)]
    pub sentry_start: u64,
    /// Host pid of the gofer.
    pub gofer_pid: i32,
    /// Last recorded phase.
    pub phase: Phase,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Owner's user name (or uid).
    pub owner: String,
    /// The spec's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The container's cgroup, relative to each hierarchy's root.
    pub cgroup: Option<String>,
    /// Hooks for later commands.
    pub hooks: LaterHooks,
    /// The platform the sandbox traps with (`--platform` at create).
    #[serde(default)]
    pub platform: String,
    /// The spec's seccomp profile, as at create: `exec` puts the processes it adds under it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

/// Start time of `pid` in clock ticks, and whether it is a zombie; `None` if it does not exist.
pub fn process_start(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let zombie = fields.first() == Some(&"Z") || fields.first() == Some(&"X");
    Some((fields.get(19)?.parse().ok()?, zombie))
}

impl Record {
    /// Whether the container's process is still alive (same pid, same start time, not a
    /// zombie).
    pub fn alive(&self) -> bool {
        matches!(process_start(self.pid), Some((start, false)) if start == self.pid_start)
    }

    /// Whether the sentry is still alive (the sandbox is torn down once it is gone).
    pub fn sentry_alive(&self) -> bool {
        self.sentry_pid > 0
            && matches!(process_start(self.sentry_pid), Some((start, false)) if start == self.sentry_start)
    }

    /// The status now.
    pub fn status(&self, dir: &ContainerDir) -> Status {
        if !self.alive() || dir.exit_code().is_some() {
            return Status::Stopped;
        }
        if self
            .cgroup
            .as_deref()
            .is_some_and(|cg| super::cgroup::Cgroup::load(cg).frozen())
        {
            return Status::Paused;
        }
        match self.phase {
            Phase::Created => Status::Created,
            Phase::Running => Status::Running,
        }
    }

    /// The OCI state document.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": "1.2.0",
            "id": self.id,
            "status": status.as_str(),
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        if status != Status::Stopped {
            v["pid"] = self.pid.into();
        }
        v
    }
}

/// The `--root` directory.
#[derive(Debug, Clone)]
pub struct StateRoot {
    root: PathBuf,
}

/// One container's directory, locked for as long as this lives.
#[derive(Debug)]
pub struct ContainerDir {
    /// The directory.
    pub path: PathBuf,
    _lock: File,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |err| OciError::State {
        path: path.display().to_string(),
        err,
    }
}

/// Checks an id the way runc does.
pub fn validate_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OciError::InvalidId(id.into()))
    }
}

fn lock(path: &Path) -> Result<File, OciError> {
    let dir = File::open(path).map_err(io_err(path))?;
    // SAFETY: flock takes an open fd and integer flags.
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io_err(path)(std::io::Error::last_os_error()));
    }
    Ok(dir)
}

impl StateRoot {
    /// The state root at `root` (created when needed, mode 0700).
    pub fn new(root: &Path) -> Result<Self, OciError> {
        use std::os::unix::fs::DirBuilderExt;
        if root.exists() && !root.is_dir() {
            return Err(OciError::State {
                path: root.display().to_string(),
                err: std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "--root must name a directory",
                ),
            });
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_err(root))?;
        Ok(StateRoot {
            root: root.to_path_buf(),
        })
    }

    /// Claims a new id: its directory is made atomically, so two creates of one id cannot
    /// both succeed.
    pub fn claim(&self, id: &str) -> Result<ContainerDir, OciError> {
        validate_id(id)?;
        let path = self.root.join(id);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(OciError::Exists(id.into()))
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        Ok(ContainerDir {
            _lock: lock(&path)?,
            path,
        })
    }

    /// Opens and locks an existing container's directory and reads its record.
    pub fn open(&self, id: &str) -> Result<(ContainerDir, Record), OciError> {
        validate_id(id)?;
        let path = self.root.join(id);
        let not_found = || OciError::NotFound(id.into());
        let lock = lock(&path).map_err(|_| not_found())?;
        let dir = ContainerDir { path, _lock: lock };
        // A delete that held the lock before us removed the record.
        let record = dir.read().map_err(|_| not_found())?;
        Ok((dir, record))
    }

    /// A container directory without a record: one whose `create` was killed before it wrote
    /// it (the lock is free then; a create still running holds it, and this waits). `None` if
    /// there is no such directory or it has a record.
    pub fn open_unrecorded(&self, id: &str) -> Result<Option<ContainerDir>, OciError> {
        validate_id(id)?;
        let path = self.root.join(id);
        if !path.is_dir() {
            return Ok(None);
        }
        let Ok(lock) = lock(&path) else {
            return Ok(None);
        };
        let dir = ContainerDir { path, _lock: lock };
        Ok((!dir.state_file().exists()).then_some(dir))
    }

    /// An existing container's record, read without its lock (records are replaced
    /// atomically); `None` if there is none.
    pub fn peek(&self, id: &str) -> Option<Record> {
        validate_id(id).ok()?;
        let bytes = std::fs::read(self.root.join(id).join("state.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Ids of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>, OciError> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .map_err(io_err(&self.root))?
            .flatten()
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl ContainerDir {
    /// The fd holding the lock: a forked sandbox process must close its copy, or the lock
    /// (which belongs to the open file, not the process) would outlive this command.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    /// `state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// The control socket's path.
    pub fn control_socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    /// The exit status file's path.
    pub fn exit_file(&self) -> PathBuf {
        self.path.join("exit")
    }

    /// The recorded exit status, once the sandbox has ended.
    pub fn exit_code(&self) -> Option<i32> {
        std::fs::read_to_string(self.exit_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Notes the cgroup the sandbox is about to be made in, before anything is, so that a
    /// `delete` finds what a killed `create` left.
    pub fn note_cgroup(&self, cgroup: &str) -> Result<(), OciError> {
        let path = self.path.join("cgroup");
        std::fs::write(&path, cgroup).map_err(io_err(&path))
    }

    /// Notes the sentry's pid and start time as soon as it exists: what a `delete` of a
    /// container whose `create` was killed may kill (its gofer and init end with it).
    pub fn note_sentry(&self, pid: i32) {
        let start = process_start(pid).map_or(0, |(s, _)| s);
        let _ = std::fs::write(self.path.join("sentry"), format!("{pid} {start}"));
    }

    /// The sentry noted by [`ContainerDir::note_sentry`], if it still runs (the same process:
    /// its start time matches).
    pub fn noted_sentry(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.path.join("sentry")).ok()?;
        let mut it = text.split(' ').filter_map(|w| w.trim().parse::<u64>().ok());
        let (pid, start) = (i32::try_from(it.next()?).ok()?, it.next()?);
        process_start(pid)
            .is_some_and(|(s, zombie)| s == start && !zombie)
            .then_some(pid)
    }

    /// The cgroup noted by [`ContainerDir::note_cgroup`].
    pub fn noted_cgroup(&self) -> Option<String> {
        std::fs::read_to_string(self.path.join("cgroup")).ok()
    }

    /// Reads the record.
    pub fn read(&self) -> Result<Record, OciError> {
        let path = self.state_file();
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| OciError::State {
            path: path.display().to_string(),
            err: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Writes the record atomically (a temporary file renamed over the old one).
    pub fn write(&self, record: &Record) -> Result<(), OciError> {
        let path = self.state_file();
        let tmp = self.path.join("state.json.tmp");
        let bytes = serde_json::to_vec(record).map_err(|e| OciError::State {
            path: path.display().to_string(),
            err: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    /// Removes the directory and everything in it (the lock goes with it).
    pub fn remove(self) -> Result<(), OciError> {
        std::fs::remove_dir_all(&self.path).map_err(io_err(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "abc-1.2_3+x", &"x".repeat(MAX_ID_LEN)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            ".hidden",
            &"x".repeat(MAX_ID_LEN + 1),
            "é",
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn claim_is_exclusive_and_records_round_trip() {
        let tmp = std::env::temp_dir().join(format!("rvisor-state-test-{}", std::process::id()));
        let root = StateRoot::new(&tmp).unwrap();
        let dir = root.claim("c1").unwrap();
        assert!(matches!(root.claim("c1"), Err(OciError::Exists(_))));
        let record = Record {
            id: "c1".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            pid: 1,
            pid_start: 0,
            init_pid: 2,
            sentry_pid: 4,
            sentry_start: 0,
            gofer_pid: 3,
            phase: Phase::Created,
            created: "x".into(),
            owner: "root".into(),
            annotations: BTreeMap::new(),
            cgroup: None,
            hooks: LaterHooks::default(),
            platform: "ptrace".into(),
            seccomp: None,
        };
        dir.write(&record).unwrap();
        assert_eq!(dir.read().unwrap().init_pid, 2);
        assert_eq!(dir.read().unwrap().platform, "ptrace");
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
        dir.remove().unwrap();
        assert!(matches!(root.open("c1"), Err(OciError::NotFound(_))));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
