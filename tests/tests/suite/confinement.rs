//! The sentry and the gofer are confined: the sentry has no host filesystem (root: an empty root,
//! procfs as its working directory), the gofer sees only the sandbox tree; both run under their
//! own seccomp filters, the gofer with only the capabilities it needs.

use std::process::Stdio;

use super::prelude::*;

fn status_field(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap()
}

#[test]
fn sentry_and_gofer_are_confined() {
    let mut runtime = rvisor_do(["--", "sleep", "2345.5"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the guest to start", || {
        !processes_matching("sleep 2345.5").is_empty()
    });
    let sentry = children(runtime.id())[0];
    let gofer = children(sentry)[0];
    let sentry_root: Vec<_> = std::fs::read_dir(format!("/proc/{sentry}/root"))
        .unwrap()
        .collect();
    let sentry_cwd = std::fs::read_link(format!("/proc/{sentry}/cwd")).unwrap();
    let gofer_root_has_etc =
        std::path::Path::new(&format!("/proc/{gofer}/root/etc/passwd")).exists();
    let seccomp = (
        status_field(sentry, "Seccomp:"),
        status_field(gofer, "Seccomp:"),
    );
    let gofer_caps = u64::from_str_radix(&status_field(gofer, "CapEff:"), 16).unwrap();
    let gofer_bound = u64::from_str_radix(&status_field(gofer, "CapBnd:"), 16).unwrap();
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    assert!(
        sentry_root.is_empty(),
        "the sentry's root is not empty: {sentry_root:?}"
    );
    assert_eq!(sentry_cwd, std::path::Path::new("/proc"));
    assert!(
        gofer_root_has_etc,
        "the gofer's root is not the sandbox tree"
    );
    assert_eq!(seccomp, ("2".to_string(), "2".to_string()));
    // CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, KILL, SETGID, SETUID and no more.
    assert_eq!(gofer_bound, 0xff, "gofer bounding set {gofer_bound:#x}");
    assert_eq!(gofer_caps & !0xff, 0, "gofer effective set {gofer_caps:#x}");
}
