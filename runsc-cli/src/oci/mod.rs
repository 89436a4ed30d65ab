//! The OCI runtime: container state on disk, the bundle's spec turned into a sandbox, cgroups,
//! hooks and the spec's seccomp profile. The commands in the binary are thin over this.

pub mod cgroup;
pub mod cgroup_limits;
pub mod convert;
pub mod device_bpf;
pub mod device_rules;
pub mod devices;
pub mod error;
pub mod lifecycle;
pub mod lsm;
pub mod mounts;
pub mod rootless;
pub mod seccomp;
pub mod state;
pub mod time;

pub use error::OciError;
