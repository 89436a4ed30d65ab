//! The spec's LSM labels (`process.apparmorProfile`, `process.selinuxLabel`,
//! `linux.mountLabel`). rvisor applies none of them, so a spec that names one is refused with a
//! clear line rather than run unconfined by a label the caller thinks holds. Where the host lacks
//! the LSM the refusal is runc's too (runc fails such a container at create or start on a host
//! without AppArmor or SELinux).

use oci_spec::runtime::{Process, Spec};

use super::OciError;

/// AppArmor's own word for "no profile": asking for it asks for nothing rvisor lacks.
const APPARMOR_UNCONFINED: &str = "unconfined";

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y")
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuses a process whose AppArmor profile or SELinux label cannot be applied.
pub fn check_process(p: &Process) -> Result<(), OciError> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        if profile != APPARMOR_UNCONFINED {
            return Err(if apparmor_enabled() {
                OciError::Unsupported(format!(
                    "process.apparmorProfile {profile:?}: rvisor does not confine the guest \
                     with AppArmor (its system calls go through the sentry); use \"unconfined\""
                ))
            } else {
                OciError::Spec(format!(
                    "process.apparmorProfile {profile:?} is set, but AppArmor is not enabled on \
                     the host"
                ))
            });
        }
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        return Err(selinux_refusal("process.selinuxLabel", label));
    }
    Ok(())
}

/// Refuses a spec whose LSM labels cannot be applied.
pub fn check(spec: &Spec) -> Result<(), OciError> {
    if let Some(p) = spec.process() {
        check_process(p)?;
    }
    let mount_label = spec.linux().as_ref().and_then(|l| l.mount_label().clone());
    if let Some(label) = mount_label.filter(|s| !s.is_empty()) {
        return Err(selinux_refusal("linux.mountLabel", &label));
    }
    Ok(())
}

fn selinux_refusal(field: &str, label: &str) -> OciError {
    if selinux_enabled() {
        OciError::Unsupported(format!(
            "{field} {label:?}: rvisor does not apply SELinux labels"
        ))
    } else {
        OciError::Spec(format!(
            "{field} {label:?} is set, but SELinux is disabled or not supported on the host"
        ))
    }
}
