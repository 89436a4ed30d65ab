//! The spec's device nodes (`linux.devices`): checked here, created by the gofer (root in the
//! host's user namespace, before it drops its capabilities) on a small tmpfs of their own, and
//! bound one by one into the guest's `/dev` by the guest init. The guest itself can create no
//! device node: its mknod is served by the gofer, which makes FIFOs, sockets and files only, and
//! in its own `/dev` the kernel refuses it (a tmpfs of its user namespace is nodev, and device
//! nodes need CAP_MKNOD in the host's).

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::convert::spec_err;
use super::OciError;
use crate::sandbox::Device;

/// More nodes than any real container lists; each is a mount in the guest's view.
const MAX_DEVICES: usize = 256;

/// runc's mode for a node whose `fileMode` the spec leaves out.
const DEFAULT_MODE: u32 = 0o666;

/// Where a node may go: a plain path below `/dev`, outside the sandbox's own devpts and shm.
fn check_path(path: &Path) -> Result<(), OciError> {
    let plain = path.is_absolute()
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    let below_dev = path.starts_with("/dev") && path != Path::new("/dev");
    if !plain || !below_dev || path.starts_with("/dev/pts") {
        return Err(spec_err(format!(
            "linux.devices: {} must be a path below /dev (not /dev/pts), without . or ..",
            path.display()
        )));
    }
    Ok(())
}

/// The spec's device nodes, owners as host ids (through the guest's id map).
pub fn nodes(spec: &Spec, map: Option<&gofer::IdMap>) -> Result<Vec<Device>, OciError> {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    if list.len() > MAX_DEVICES {
        return Err(spec_err(format!(
            "linux.devices: {} nodes, at most {MAX_DEVICES}",
            list.len()
        )));
    }
    let mut out: Vec<Device> = Vec::with_capacity(list.len());
    for d in &list {
        let path: PathBuf = d.path().components().collect();
        // As runc: /dev/ptmx is the sandbox's own devpts's (a link to pts/ptmx); Docker's
        // --privileged lists the host's.
        if path == Path::new("/dev/ptmx") {
            continue;
        }
        check_path(&path)?;
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(spec_err(format!(
                    "linux.devices: {}: type \"a\" is a cgroup rule, not a node (use c, b, u or p)",
                    path.display()
                )))
            }
        };
        let number = |n: i64, what: &str| {
            u32::try_from(n).map(u64::from).map_err(|_| {
                spec_err(format!(
                    "linux.devices: {}: {what} number {n} is out of range",
                    path.display()
                ))
            })
        };
        let (uid, gid) = (d.uid().unwrap_or(0), d.gid().unwrap_or(0));
        let (host_uid, host_gid) = match map {
            Some(m) => (m.uid_out(uid), m.gid_out(gid)),
            None => (Some(uid), Some(gid)),
        };
        let (Some(host_uid), Some(host_gid)) = (host_uid, host_gid) else {
            return Err(spec_err(format!(
                "linux.devices: {}: owner {uid}:{gid} is not mapped into the container",
                path.display()
            )));
        };
        if out.iter().any(|o| o.path == path) {
            return Err(spec_err(format!(
                "linux.devices: {} is listed twice",
                path.display()
            )));
        }
        out.push(Device {
            mode: kind | (d.file_mode().unwrap_or(DEFAULT_MODE) & 0o777),
            major: number(d.major(), "major")?,
            minor: number(d.minor(), "minor")?,
            uid: host_uid,
            gid: host_gid,
            path,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_devices(devices: serde_json::Value) -> Result<Vec<Device>, OciError> {
        let mut spec = serde_json::to_value(Spec::default()).unwrap();
        spec["linux"]["devices"] = devices;
        let spec: Spec = serde_json::from_value(spec).unwrap();
        nodes(&spec, None)
    }

    #[test]
    fn nodes_take_the_specs_numbers_mode_and_owner() {
        let d = with_devices(serde_json::json!([
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o4640, "uid": 5, "gid": 6},
            {"path": "/dev/sub/blk", "type": "b", "major": 7, "minor": 0},
        ]))
        .unwrap();
        assert_eq!(
            d[0].mode,
            libc::S_IFCHR | 0o640,
            "setuid bits never reach a node"
        );
        assert_eq!((d[0].major, d[0].minor, d[0].uid, d[0].gid), (1, 3, 5, 6));
        assert_eq!(d[1].mode, libc::S_IFBLK | 0o666);
        assert_eq!(d[1].path, Path::new("/dev/sub/blk"));
    }

    #[test]
    fn a_node_outside_dev_or_with_dots_is_refused() {
        for path in [
            "/etc/null",
            "/dev",
            "/dev/../etc/x",
            "/dev/./x/..",
            "dev/x",
            "/dev/pts/9",
        ] {
            let err = with_devices(serde_json::json!([
                {"path": path, "type": "c", "major": 1, "minor": 3},
            ]))
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("below /dev") && !err.contains('\n'),
                "{path}: {err}"
            );
        }
        let err = with_devices(serde_json::json!([
            {"path": "/dev/x", "type": "a", "major": 1, "minor": 3},
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("type \"a\""), "{err}");
        for (major, minor) in [(-1i64, 3i64), (1, 1 << 32)] {
            let err = with_devices(serde_json::json!([
                {"path": "/dev/x", "type": "c", "major": major, "minor": minor},
            ]))
            .unwrap_err()
            .to_string();
            assert!(err.contains("out of range"), "{err}");
        }
    }
}
