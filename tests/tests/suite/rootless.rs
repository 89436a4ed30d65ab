//! Unprivileged users get the same sandbox through a user namespace.

use super::prelude::*;

#[test]
fn unprivileged_user_runs_a_sandbox() {
    let o = run_for(
        &mut rootless_do([
            "--",
            "sh",
            "-c",
            "id -u; hostname; grep Seccomp: /proc/self/status",
        ]),
        60,
    );
    let out = ok(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "rvisor");
    assert!(lines[2].ends_with('2'), "{out}");
}

/// Seen from the host, the sandbox's root is the unprivileged user.
#[test]
fn rootless_guest_runs_as_the_caller_on_the_host() {
    let marker = "sleep 5432.5";
    let mut child = rootless_do(["--", "sh", "-c", marker])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // One scan finds the process and reads it (`sh -c` execs the sleep: a second scan could
    // fall between the two command lines).
    let mut status = String::new();
    wait_until("the guest to start", || {
        processes_matching(marker).into_iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map(|s| status = s)
                .is_ok()
        })
    });
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    child.kill().unwrap();
    child.wait().unwrap();
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(uids, vec![rootless_uid(); 4], "{uid_line}");
}

#[test]
fn rootless_sandbox_root_has_no_host_privilege() {
    let o = run_for(&mut rootless_do(["--", "sh", "-c", "cat /etc/shadow >/dev/null 2>&1 && echo readable || echo denied; echo x > /tmp/w && echo tmp-ok"]), 60);
    assert_eq!(ok(&o), "denied\ntmp-ok\n");
}

#[test]
fn rootless_exit_codes_and_uid_option() {
    let o = run_for(
        &mut rootless_do([
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--",
            "sh",
            "-c",
            "id -u; exit 3",
        ]),
        60,
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "1000\n");
}
