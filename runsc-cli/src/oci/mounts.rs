//! The spec's mounts, in the spec's order: binds and tmpfs in the tree go to the gofer (which
//! makes them one after the other), and those in the guest's own pseudo filesystems (`/proc`,
//! `/sys`, `/dev`, whose paths the guest's kernel resolves) to the guest init, which makes them
//! over its own proc, sys and dev. A later mount lands on top of an earlier one, as with runc.

use std::path::Path;

use oci_spec::runtime::{Mount, Spec};

use super::convert::spec_err;
use super::OciError;
use crate::sandbox::{GuestMount, SandboxSpec, Tmpfs, Volume};

/// Directories the guest init fills with its own filesystems.
const PSEUDO: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The only paths inside `/proc` a mount may cover (runc's list: lxcfs's files and
/// `ns_last_pid`); anything else there could hide or replace a kernel interface.
const PROC_ALLOWED: [&str; 9] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
];

/// Options that are mount flags, not tmpfs data. Propagation flags among them: every mount of
/// the sandbox lives in its own mount namespace, private to it, so there is nothing to share
/// with or receive from (runc applies them inside the container alike).
const FLAG_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "lazytime",
    "nolazytime",
    "sync",
    "async",
    "dirsync",
    "silent",
    "loud",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

fn mount_flags(m: &Mount) -> (bool, bool, bool) {
    let opts = m.options().clone().unwrap_or_default();
    let has = |o: &str| opts.iter().any(|x| x == o);
    (has("ro"), has("noexec"), has("bind") || has("rbind"))
}

/// Whether `dest` is one of the guest's pseudo filesystems or inside one.
fn in_guest_view(dest: &Path) -> bool {
    PSEUDO.iter().any(|p| dest.starts_with(p))
}

/// The filesystems the sandbox mounts itself (its own proc, sys, dev and devpts); the spec's
/// mount of one is where the sandbox makes its own.
fn sandbox_provides(typ: &str, dest: &str) -> bool {
    matches!(
        (typ, dest),
        ("proc", "/proc") | ("sysfs", "/sys") | ("devpts", "/dev/pts") | ("tmpfs", "/dev")
    )
}

/// Refuses what runc refuses inside `/proc`.
fn check_proc(dest: &Path, typ: &str) -> Result<(), OciError> {
    if dest == Path::new("/proc") && typ != "proc" {
        return Err(spec_err(format!(
            "mount destination /proc: {typ:?} cannot be mounted there, only proc"
        )));
    }
    if dest.starts_with("/proc")
        && dest != Path::new("/proc")
        && !PROC_ALLOWED.iter().any(|p| dest == Path::new(p))
    {
        return Err(spec_err(format!(
            "mount destination {}: cannot be mounted because it is inside /proc",
            dest.display()
        )));
    }
    Ok(())
}

/// Sorts the spec's mounts into the sandbox, keeping their order on each side.
pub fn mounts(spec: &Spec, bundle: &Path, sandbox: &mut SandboxSpec) -> Result<(), OciError> {
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination();
        if !dest.is_absolute() || dest.components().any(|c| c.as_os_str() == "..") {
            return Err(spec_err(format!(
                "mount destination {} must be absolute, without ..",
                dest.display()
            )));
        }
        // `//dev/./shm` is `/dev/shm`.
        let dest: std::path::PathBuf = dest.components().collect();
        let typ = m.typ().clone().unwrap_or_default();
        if matches!(typ.as_str(), "cgroup" | "cgroup2") {
            // The guest's cgroup view is left out.
            continue;
        }
        if sandbox_provides(&typ, dest.to_str().unwrap_or_default()) {
            // Made where the sandbox makes its own: whatever the spec put below it before now
            // would be hidden under it, as in runc.
            sandbox
                .container
                .guest_mounts
                .retain(|g| !g.dest().starts_with(&dest));
            continue;
        }
        check_proc(&dest, &typ)?;
        let guest = in_guest_view(&dest);
        let (readonly, noexec, bind) = mount_flags(m);
        if typ == "bind" || bind {
            let source = m
                .source()
                .clone()
                .ok_or_else(|| spec_err("a bind mount without a source"))?;
            let volume = Volume {
                source: if source.is_absolute() {
                    source
                } else {
                    bundle.join(source)
                },
                dest,
                readonly,
                noexec,
            };
            if guest {
                sandbox
                    .container
                    .guest_mounts
                    .push(GuestMount::Bind(volume));
            } else {
                sandbox.volumes.push(volume);
            }
        } else if typ == "tmpfs" {
            let data: Vec<String> = m
                .options()
                .iter()
                .flatten()
                .filter(|o| !FLAG_OPTIONS.contains(&o.as_str()))
                .cloned()
                .collect();
            let tmpfs = Tmpfs {
                dest,
                data: data.join(","),
                readonly,
                after_volumes: sandbox.volumes.len(),
            };
            if guest {
                sandbox
                    .container
                    .guest_mounts
                    .push(GuestMount::Tmpfs(tmpfs));
            } else {
                sandbox.container.tmpfs.push(tmpfs);
            }
        } else if typ == "mqueue" {
            sandbox
                .container
                .guest_mounts
                .push(GuestMount::Mqueue(dest));
        } else {
            return Err(OciError::Unsupported(format!(
                "mount type {typ:?} at {}",
                dest.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::convert::{convert, Options};

    fn with_mounts(mounts: serde_json::Value) -> Result<SandboxSpec, OciError> {
        let mut spec = serde_json::to_value(Spec::default()).unwrap();
        spec["mounts"] = mounts;
        let spec: Spec = serde_json::from_value(spec).unwrap();
        convert(&spec, Path::new("/b"), &Options::default()).map(|b| b.sandbox)
    }

    #[test]
    fn mounts_keep_the_specs_order_on_each_side() {
        let s = with_mounts(serde_json::json!([
            {"destination": "/a", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/a/v", "type": "bind", "source": "/srv", "options": ["rbind"]},
            {"destination": "/a/v/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["size=64k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
            {"destination": "/sys/x", "type": "bind", "source": "/srv", "options": ["rbind", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
        ]))
        .unwrap();
        let tmpfs: Vec<_> = s
            .container
            .tmpfs
            .iter()
            .map(|t| (t.dest.to_str().unwrap(), t.after_volumes))
            .collect();
        assert_eq!(tmpfs, [("/a", 0), ("/a/v/t", 1)]);
        assert_eq!(s.volumes.len(), 1);
        let guest: Vec<_> = s
            .container
            .guest_mounts
            .iter()
            .map(|g| g.dest().to_str().unwrap())
            .collect();
        assert_eq!(guest, ["/dev/shm", "/sys/x", "/dev/mqueue"]);
    }

    #[test]
    fn the_sandboxs_own_filesystem_hides_what_came_before_it() {
        let s = with_mounts(serde_json::json!([
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
        ]))
        .unwrap();
        let guest: Vec<_> = s
            .container
            .guest_mounts
            .iter()
            .map(|g| g.dest().to_str().unwrap())
            .collect();
        assert_eq!(guest, ["/dev/mqueue"]);
    }

    #[test]
    fn proc_takes_only_runcs_files() {
        let ok = with_mounts(serde_json::json!([
            {"destination": "/proc/meminfo", "type": "bind", "source": "/proc/meminfo", "options": ["bind"]},
        ]));
        assert!(ok.is_ok());
        for (dest, typ) in [
            ("/proc/sys", "bind"),
            ("/proc/self/attr", "tmpfs"),
            ("/proc", "tmpfs"),
        ] {
            let err = with_mounts(serde_json::json!([
                {"destination": dest, "type": typ, "source": "/srv", "options": ["bind"]},
            ]))
            .unwrap_err()
            .to_string();
            assert!(err.contains(dest) && !err.contains('\n'), "{err}");
        }
    }
}
