//! Unprivileged users get the same sandbox through a user namespace.

use rvisor_tests::*;

#[test]
fn unprivileged_user_runs_a_sandbox() {
    let o = run_for(
        &mut rootless_do([
            "--",
            "sh",
            "-c",
            "id -u; hostname; grep Seccomp: /proc/self/status; cat /proc/self/uid_map",
        ]),
        60,
    );
    let out = ok(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "rvisor");
    assert!(lines[2].ends_with('2'), "{out}");
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["0", &rootless_uid().to_string(), "1"]
    );
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
