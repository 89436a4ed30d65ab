//! Joining existing namespaces by path (an OCI spec's `linux.namespaces[].path`), as a Kubernetes
//! pod's app containers join their sandbox's ipc, uts and pid namespaces.
//!
//! The namespaces a pod's sandbox container made are owned by its guest's user namespace, in
//! which a guest of ours, in a user namespace of its own, would hold no rights: it could not mount
//! a procfs for a joined pid namespace, nor an mqueue for a joined ipc one. So the guest init also
//! joins their owner, and makes its remaining new namespaces from there (a "joiner" process in
//! between does that, since a process cannot move itself into a new pid namespace).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;

use super::error::{Context, SandboxError};

/// Kinds of namespace a container may join by path (network goes through `Network::Join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    /// SysV IPC and POSIX message queues.
    Ipc,
    /// Host and domain name.
    Uts,
    /// Process ids.
    Pid,
    /// cgroup root.
    Cgroup,
    /// Clock offsets.
    Time,
    /// Ids and capabilities: the owner of the others, entered last.
    User,
}

impl NsKind {
    /// The name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Pid => "pid",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
            NsKind::User => "user",
        }
    }

    /// Its CLONE_NEW* flag.
    pub fn flag(self) -> libc::c_int {
        match self {
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Time => 0x80, // CLONE_NEWTIME
            NsKind::User => libc::CLONE_NEWUSER,
        }
    }

    /// Whether the guest init's user namespace needs rights in it (to mount a procfs, an
    /// mqueue, to set the host name).
    fn needs_owner(self) -> bool {
        matches!(self, NsKind::Ipc | NsKind::Uts | NsKind::Pid)
    }
}

/// One namespace to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsJoin {
    /// Which.
    pub kind: NsKind,
    /// `/proc/<pid>/ns/<kind>` or a bind mount of one.
    pub path: PathBuf,
}

/// The namespaces, opened, and the user namespace that owns them (when it is not ours).
#[derive(Debug)]
pub struct Opened {
    joins: Vec<(NsKind, OwnedFd)>,
    owner: Option<OwnedFd>,
}

const NS_GET_USERNS: libc::c_ulong = 0xb701;

fn ns_id(fd: &OwnedFd) -> Result<(u64, u64), SandboxError> {
    // SAFETY: fstat on an fd we own, into a zeroed buffer of the right type.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    if rc != 0 {
        return Err(nix::errno::Errno::last()).ctx(|| "fstat of a namespace".into());
    }
    Ok((st.st_dev, st.st_ino))
}

/// Opens every namespace in `joins` (before the gofer pivots away from the host's /proc) and
/// finds their owner. Namespaces that need an owner must agree on it.
pub fn open(joins: &[NsJoin]) -> Result<Opened, SandboxError> {
    let own_user = std::fs::metadata("/proc/self/ns/user")
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| SandboxError::Invalid(format!("/proc/self/ns/user: {e}")))?;
    let mut opened = Vec::new();
    let mut owner: Option<(OwnedFd, (u64, u64))> = None;
    let mut user: Option<(OwnedFd, (u64, u64))> = None;
    for join in joins {
        let name = join.kind.proc_name();
        let fd = OwnedFd::from(std::fs::File::open(&join.path).map_err(|e| {
            SandboxError::Invalid(format!("{name} namespace {}: {e}", join.path.display()))
        })?);
        if join.kind == NsKind::User {
            // The user namespace asked for: it must own what else is joined (checked below).
            let id = ns_id(&fd)?;
            if id == own_user {
                return Err(SandboxError::Invalid(format!(
                    "user namespace {}: the host's own",
                    join.path.display()
                )));
            }
            user = Some((fd, id));
            continue;
        }
        if join.kind.needs_owner() {
            // SAFETY: an ioctl on an fd we own; it returns a new fd or -1.
            let user = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_USERNS) };
            if user < 0 {
                return Err(nix::errno::Errno::last()).ctx(|| {
                    format!(
                        "{name} namespace {}: not a namespace, or its owner is out of reach",
                        join.path.display()
                    )
                });
            }
            // SAFETY: the kernel just gave us this fd.
            let user = unsafe { OwnedFd::from_raw_fd(user) };
            let id = ns_id(&user)?;
            match &owner {
                Some((_, seen)) if *seen != id => {
                    return Err(SandboxError::Invalid(format!(
                        "{name} namespace {}: owned by another user namespace than the other \
                         namespaces joined",
                        join.path.display()
                    )))
                }
                Some(_) => {}
                None if id != own_user => owner = Some((user, id)),
                None => {
                    return Err(SandboxError::Invalid(format!(
                        "{name} namespace {}: owned by the host's user namespace, in which the \
                         guest holds no rights (join the namespaces of another sandbox)",
                        join.path.display()
                    )))
                }
            }
        }
        opened.push((join.kind, fd));
    }
    let owner = match (owner, user) {
        (Some((_, owner)), Some((_, asked))) if owner != asked => {
            return Err(SandboxError::Invalid(
                "the user namespace joined does not own the ipc, uts or pid namespace joined"
                    .into(),
            ))
        }
        (_, Some(user)) => Some(user),
        (owner, None) => owner,
    };
    Ok(Opened {
        joins: opened,
        owner: owner.map(|(fd, _)| fd),
    })
}

impl Opened {
    /// Whether nothing is joined.
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty()
    }

    /// Whether the guest init joins an existing user namespace (and gets no id maps written).
    pub fn joins_user(&self) -> bool {
        self.owner.is_some()
    }

    /// `flags` without the namespaces joined instead (and without CLONE_NEWUSER when the owner
    /// is joined).
    pub fn clone_flags(&self, mut flags: libc::c_int) -> libc::c_int {
        for (kind, _) in &self.joins {
            flags &= !kind.flag();
        }
        if self.owner.is_some() {
            flags &= !libc::CLONE_NEWUSER;
        }
        flags
    }

    /// Enters them all (in a joiner: the calling process, single-threaded), the owner last:
    /// entering it drops the rights the others need.
    pub fn enter(&self) -> Result<(), SandboxError> {
        for (kind, fd) in &self.joins {
            nix::sched::setns(fd, CloneFlags::from_bits_retain(kind.flag()))
                .ctx(|| format!("joining the {} namespace", kind.proc_name()))?;
        }
        if let Some(user) = &self.owner {
            nix::sched::setns(user, CloneFlags::CLONE_NEWUSER)
                .ctx(|| "joining the namespaces' user namespace".into())?;
        }
        Ok(())
    }
}

/// The host name of the uts namespace at `path` (read from a thread that joins it: a uts
/// namespace is per thread).
pub fn hostname_of(path: &std::path::Path) -> Result<(String, String), SandboxError> {
    let file = std::fs::File::open(path)
        .map_err(|e| SandboxError::Invalid(format!("uts namespace {}: {e}", path.display())))?;
    let shown = path.display().to_string();
    std::thread::spawn(move || {
        nix::sched::setns(&file, CloneFlags::CLONE_NEWUTS)
            .ctx(|| format!("joining uts namespace {shown}"))?;
        let uts = nix::sys::utsname::uname().ctx(|| "uname".into())?;
        Ok((
            uts.nodename().to_string_lossy().into_owned(),
            uts.domainname().to_string_lossy().into_owned(),
        ))
    })
    .join()
    .unwrap_or_else(|_| Err(SandboxError::Invalid("reading a host name".into())))
}
