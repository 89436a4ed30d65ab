//! The CLI's own output and errors in a failing environment: a stdout that is full or a closed
//! pipe, a stderr that fails, a bad `bench --out` or `--case`. Each ends with a clear one-line
//! error (or, for a reader that went away, quietly) and a non-zero status, never a panic.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use rvisor_tests::{run_for, rvisor, rvisor_do_on, stderr, Oci};

/// Status for a reader that went away: as a shell shows a process killed by SIGPIPE (141), or
/// a plain failure (1).
const QUIET_PIPE_CODES: [i32; 2] = [141, 1];

fn dev_full() -> File {
    File::options().write(true).open("/dev/full").unwrap()
}

/// The write end of a pipe whose read end is already closed: any write fails with EPIPE.
fn widowed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the read end was just created and is owned here only; closing it widows the pipe.
    drop(unsafe { OwnedFd::from_raw_fd(fds[0]) });
    // SAFETY: as above, the write end.
    unsafe { OwnedFd::from_raw_fd(fds[1]) }
}

/// Runs `cmd` (stdin null, stderr captured; stdout as the caller set it), backtraces asked for,
/// as a tester's environment may have them.
fn run_with_stdout(cmd: &mut Command, out: impl Into<Stdio>) -> Output {
    cmd.env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .expect("spawn rvisor")
}

/// Exactly one line on stderr, `rvisor: writing output: ...`, and status 1.
fn assert_output_error(what: &str, o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(
        err.starts_with("rvisor: writing output: ") && err.contains("No space left on device"),
        "{what}: {err}"
    );
}

/// Nothing on stderr and a non-zero status.
fn assert_quiet_pipe(what: &str, o: &Output) {
    let err = stderr(o);
    assert!(err.is_empty(), "{what}: {err}");
    assert!(
        o.status
            .code()
            .is_some_and(|c| QUIET_PIPE_CODES.contains(&c)),
        "{what}: {:?}",
        o.status
    );
}

const NO_CONTAINER_COMMANDS: [&[&str]; 6] = [
    &["features"],
    &["syscalls"],
    &["list"],
    &["list", "--format", "json"],
    &["bench", "--list"],
    &["--version"],
];

fn no_container_cmd(root: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(rvisor());
    cmd.arg("--root").arg(root).args(args).current_dir("/");
    cmd
}

#[test]
fn full_stdout_is_a_one_line_error() {
    let root = rvisor_tests::scratch("cli-output-full");
    for args in NO_CONTAINER_COMMANDS {
        let o = run_with_stdout(&mut no_container_cmd(&root, args), dev_full());
        assert_output_error(&args.join(" "), &o);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn closed_pipe_on_stdout_ends_quietly() {
    let root = rvisor_tests::scratch("cli-output-pipe");
    for args in NO_CONTAINER_COMMANDS {
        let o = run_with_stdout(&mut no_container_cmd(&root, args), widowed_pipe());
        assert_quiet_pipe(&args.join(" "), &o);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn container_commands_on_full_stdout_or_closed_pipe() {
    let oci = Oci::new("cli-output");
    let b = oci.bundle("b", &["sleep", "60"], |_| {});
    oci.ok(&["create", "--bundle", &b.display().to_string(), "c1"]);
    let commands: [&[&str]; 7] = [
        &["state", "c1"],
        &["ps", "c1"],
        &["ps", "--format", "json", "c1"],
        &["events", "--stats", "c1"],
        &["list"],
        &["list", "--format", "json"],
        &["list", "-q"],
    ];
    for args in commands {
        let what = args.join(" ");
        let o = run_with_stdout(&mut oci.cmd(args), dev_full());
        assert_output_error(&what, &o);
        let o = run_with_stdout(&mut oci.cmd(args), widowed_pipe());
        assert_quiet_pipe(&what, &o);
    }
    oci.ok(&["delete", "--force", "c1"]);
}

#[test]
fn failing_stderr_keeps_the_exit_code() {
    for platform in ["seccomp-notify", "ptrace"] {
        let mut cmd = rvisor_do_on(platform, ["--", "/nonexistent"]);
        let o = cmd
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(dev_full())
            .output()
            .expect("spawn rvisor");
        assert_eq!(o.status.code(), Some(127), "{platform}: {:?}", o.status);
    }
}

#[test]
fn bench_out_that_is_a_file_fails_before_measuring() {
    let dir = rvisor_tests::scratch("cli-output-bench");
    let file = dir.join("somefile");
    std::fs::write(&file, "keep").unwrap();
    let o = run_for(
        Command::new(rvisor())
            .args(["bench", "--quick", "--case", "getppid", "--out"])
            .arg(&file)
            .env("RUST_BACKTRACE", "1")
            .current_dir("/"),
        // The old behaviour measured the whole suite first (a minute or more).
        20,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rvisor: ") && err.contains(&file.display().to_string()),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_unknown_case_is_the_only_line() {
    let dir = rvisor_tests::scratch("cli-output-case");
    let out = dir.join("out");
    let o = run_for(
        Command::new(rvisor())
            .args(["bench", "--case", "nonexistent_case", "--out"])
            .arg(&out)
            .current_dir("/"),
        60,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err, "rvisor: unknown case \"nonexistent_case\"\n");
    assert!(!out.exists(), "nothing is created for a bad case");
    let _ = std::fs::remove_dir_all(&dir);
}
