//! The spec's LSM labels (`process.apparmorProfile`, `process.selinuxLabel`,
//! `linux.mountLabel`). On a host without the LSM a label cannot be applied by anyone: the spec
//! is refused with one line, as runc refuses it here (at create or start). On a host with it,
//! rvisor does not apply labels to the guest either (runsc does not), whose system calls the
//! sentry's filter confines instead: it says so in the log rather than refuse, since Docker and
//! Podman set a default profile or label on such hosts for every container.

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

/// Refuses a process whose AppArmor profile or SELinux label the host cannot apply.
pub fn check_process(p: &Process) -> Result<(), OciError> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        if profile != APPARMOR_UNCONFINED {
            if !apparmor_enabled() {
                return Err(OciError::Spec(format!(
                    "process.apparmorProfile {profile:?} is set, but AppArmor is not enabled on \
                     the host"
                )));
            }
            tracing::warn!(
                "process.apparmorProfile {profile:?} is not applied: rvisor confines the guest \
                 with the sentry, not AppArmor"
            );
        }
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        selinux_label("process.selinuxLabel", label)?;
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
        selinux_label("linux.mountLabel", &label)?;
    }
    Ok(())
}

fn selinux_label(field: &str, label: &str) -> Result<(), OciError> {
    if !selinux_enabled() {
        return Err(OciError::Spec(format!(
            "{field} {label:?} is set, but SELinux is disabled or not supported on the host"
        )));
    }
    tracing::warn!("{field} {label:?} is not applied: rvisor applies no SELinux label");
    Ok(())
}
