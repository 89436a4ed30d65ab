//! The guest never runs unsupervised: everything runs under the filter, and if the sentry or the
//! runtime dies, the guest dies.

use std::process::{Command, Stdio};

use super::prelude::*;

#[test]
fn every_guest_process_runs_under_the_filter() {
    let out = ok(&sh(
        "grep Seccomp: /proc/1/status /proc/self/status; sh -c 'grep Seccomp: /proc/$$/status'",
    ));
    let modes: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(modes, ["2", "2", "2"], "{out}");
}

fn start_guest(marker: &str) -> std::process::Child {
    let child = rvisor_do(["--", "sh", "-c", &format!("sleep {marker}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the guest to start", || {
        !processes_matching(&format!("sleep {marker}")).is_empty()
    });
    child
}

#[test]
fn killing_the_sentry_kills_the_guest() {
    let marker = "4321.25";
    let mut runtime = start_guest(marker);
    let sentry = children(runtime.id());
    assert_eq!(sentry.len(), 1, "the runtime has one child, the sentry");
    nix_kill(sentry[0]);
    let status = runtime.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    wait_until("the guest to die", || {
        processes_matching(&format!("sleep {marker}")).is_empty()
    });
    let mut err = String::new();
    std::io::Read::read_to_string(runtime.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("the sentry was killed"), "{err}");
}

#[test]
fn killing_the_runtime_kills_sentry_and_guest() {
    let marker = "4321.75";
    let mut runtime = start_guest(marker);
    let sentry = children(runtime.id())[0];
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    wait_until("the sentry to die", || {
        !std::path::Path::new(&format!("/proc/{sentry}")).exists() || is_zombie(sentry)
    });
    wait_until("the guest to die", || {
        processes_matching(&format!("sleep {marker}")).is_empty()
    });
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}

fn nix_kill(pid: u32) {
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn killing_the_gofer_kills_the_guest() {
    let marker = "4321.5";
    let mut runtime = start_guest(marker);
    let sentry = children(runtime.id())[0];
    let gofer = children(sentry);
    assert_eq!(gofer.len(), 1, "the sentry has one child, the gofer");
    nix_kill(gofer[0]);
    let status = runtime.wait().unwrap();
    assert_ne!(status.code(), Some(0));
    wait_until("the guest to die", || {
        processes_matching(&format!("sleep {marker}")).is_empty()
    });
    let mut err = String::new();
    std::io::Read::read_to_string(runtime.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("the gofer was killed"), "{err}");
}
