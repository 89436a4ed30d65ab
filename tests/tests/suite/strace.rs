//! `--strace` and `--strace-log`.

use super::prelude::*;

#[test]
fn strace_prints_decoded_calls_and_results() {
    let o = run_for(
        &mut rvisor_do([
            "--strace",
            "--",
            "sh",
            "-c",
            "hostname traced; mount -t tmpfs none /mnt 2>/dev/null; exit 0",
        ]),
        60,
    );
    let err = stderr(&o);
    assert!(o.status.success());
    assert!(
        err.contains(r#"sh", ["sh", "-c", "hostname traced; "#) && err.contains("] execve(\""),
        "{err}"
    );
    assert!(err.contains(r#"sethostname("traced", 6) = 0"#), "{err}");
    assert!(
        err.contains(
            r#"mount("none", "/mnt", "tmpfs", 0x0, NULL) = -1 EPERM (Operation not permitted)"#
        ),
        "{err}"
    );
    assert!(
        err.contains("getppid() = 1") || err.contains("getpid() = 2"),
        "{err}"
    );
}

#[test]
fn strace_log_goes_to_a_file_not_stderr() {
    let log = scratch("strace").join("trace.txt");
    let o = run_for(
        &mut rvisor_do([
            "--strace-log".as_ref(),
            log.as_os_str(),
            "--".as_ref(),
            "uname".as_ref(),
        ]),
        60,
    );
    assert_eq!(ok(&o), "Linux\n");
    assert!(!stderr(&o).contains("uname("), "{}", stderr(&o));
    let trace = std::fs::read_to_string(&log).unwrap();
    assert!(trace.contains("uname(0x"), "{trace}");
    assert!(trace.contains(r#"execve("/usr/bin/uname""#), "{trace}");
}

#[test]
fn strace_log_that_cannot_be_opened_is_an_error() {
    let o = run_for(
        &mut rvisor_do(["--strace-log", "/nonexistent/dir/log", "--", "true"]),
        60,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--strace-log /nonexistent/dir/log"),
        "{}",
        stderr(&o)
    );
}
