//! File access follows the calling thread's credentials, as the kernel holds them: a process
//! that drops privileges is checked as what it dropped to (including for lookups root made
//! first and the sentry cached), per thread, with capabilities, groups and its umask alone.
//! Expected lines are Linux's (the probe prints the same natively, as root).

use std::sync::OnceLock;

use super::prelude::*;

fn probe() -> &'static std::path::Path {
    static BIN: OnceLock<std::path::PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c("identity", include_str!("probes/identity.c")))
}

/// Runs one scenario in a fresh writable directory bound at /w.
fn scenario(name: &str) -> String {
    let dir = scratch(&format!("identity-{name}-{}", crate::PLATFORM));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let volume = format!("{}:/w", dir.display());
    let out = run_for(
        &mut rvisor_do(["-v", &volume, "--"].iter().map(|s| s.to_string()).chain([
            probe().display().to_string(),
            name.into(),
            "/w".into(),
        ])),
        60,
    );
    let _ = std::fs::remove_dir_all(&dir);
    format!("{}{}", stdout(&out), stderr(&out))
}

fn assert_lines(out: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            out.lines().any(|l| l == *line),
            "missing {line:?} in:\n{out}"
        );
    }
}

#[test]
fn a_process_that_drops_to_nobody_is_checked_as_nobody() {
    let out = scenario("dropped");
    assert_lines(
        &out,
        &[
            "root_open_secret OK",
            "root_open_mode0 OK",
            // Lookups root made first (and the sentry cached) do not serve nobody.
            "open_secret EACCES",
            "open_mode0_write EACCES",
            "open_mode0_read EACCES",
            "create_in_rootdir EACCES",
            "o_trunc EACCES",
            "access_w EACCES",
            "access_r OK",
            "mkdir EACCES",
            "unlink EACCES",
            "rmdir EACCES",
            "rename EACCES",
            "link EPERM",
            "symlink EACCES",
            "truncate EACCES",
            "chmod EPERM",
            "chown EPERM",
            "utimes_now EACCES",
            "sticky_unlink EPERM",
            "sticky_create OK",
            "group_read EACCES",
            // A root that takes non-zero ids loses its capabilities, CAP_KILL among them.
            "caps 0",
            "kill_root EPERM",
            "uid 65534 euid 65534",
        ],
    );
    // The exec'd image is checked as nobody too.
    assert!(out.contains("/w/mode0: Permission denied"), "{out}");
}

#[test]
fn credentials_are_per_thread() {
    assert_lines(
        &scenario("per_thread"),
        &[
            "thread_setresuid OK",
            "thread_open_mode0 EACCES",
            "thread_euid 65534",
            "main_open_mode0 OK",
            "main_euid 0",
        ],
    );
}

#[test]
fn a_root_without_dac_override_is_held_to_the_mode_bits() {
    assert_lines(
        &scenario("no_override"),
        &[
            "before OK",
            "capset OK",
            "dropped EACCES",
            "dropped_again EACCES",
            "owner_still OK",
            "capset_back OK",
            "restored OK",
        ],
    );
}

#[test]
fn access_checks_the_real_ids() {
    assert_lines(
        &scenario("real_access"),
        &[
            "access_real_root OK",
            "eaccess_nobody EACCES",
            "open_nobody EACCES",
        ],
    );
}

#[test]
fn search_permission_taken_through_an_fd_holds_for_earlier_lookups() {
    assert_lines(
        &scenario("revoke"),
        &["before OK", "fchmod OK", "after_fchmod EACCES"],
    );
}

#[test]
fn supplementary_groups_grant_group_access() {
    assert_lines(&scenario("groups"), &["member_read OK", "member_write OK"]);
}

#[test]
fn only_the_callers_umask_applies() {
    assert_lines(
        &scenario("modes"),
        &[
            "open_umask0 666",
            "open635_umask0 635",
            "mkdir_umask0 777",
            "mkdir635_umask0 635",
            "fifo_umask0 666",
            "open_umask22 644",
            "open635_umask22 615",
            "mkdir_umask22 755",
            "mkdir635_umask22 615",
            "fifo_umask22 644",
        ],
    );
}

#[test]
fn root_changes_owners_by_path_fd_and_empty_path() {
    assert_lines(
        &scenario("owners"),
        &[
            "chown_other OK",
            "owner 4321:5432",
            "fchownat_empty_path OK",
            "owner 1234:1234",
            "lchown_self OK",
            "fchown_pipe OK",
        ],
    );
}

#[test]
fn rootless_the_guest_can_take_no_other_id() {
    // As under `unshare --map-root-user`: one id is mapped, setgroups is denied.
    let dir = scratch(&format!("identity-rootless-{}", crate::PLATFORM));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    chown_tree(&dir, rootless_uid());
    let volume = format!("{}:/w", dir.display());
    let out = run_for(
        &mut rootless_do(["-v", &volume, "--"].iter().map(|s| s.to_string()).chain([
            probe().display().to_string(),
            "dropped".into(),
            "/w".into(),
        ])),
        60,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_lines(
        &stdout(&out),
        &["root_open_secret OK", "root_open_mode0 OK", "drop EPERM"],
    );
}

/// A worker that last acted as a thread which dropped its ids (a cached open made as uid 1000)
/// still reads a root thread's fd links as the sentry: setns on a plain file answers EINVAL, as
/// Linux does, not EBADF (the worker could not search the root process's `/proc/<pid>/fd`).
#[test]
fn a_worker_that_acted_for_a_dropped_thread_still_reads_root_fds() {
    let script = "import ctypes, os\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        os.makedirs('/tmp/w', exist_ok=True); os.chmod('/tmp/w', 0o777)\n\
        open('/tmp/w/f', 'w').close(); os.chmod('/tmp/w/f', 0o666)\n\
        pid = os.fork()\n\
        if pid == 0:\n\
        \x20   os.setgid(1000); os.setuid(1000)\n\
        \x20   os.open('/tmp/w/f', os.O_WRONLY)\n\
        \x20   os._exit(0)\n\
        os.waitpid(pid, 0)\n\
        fd = os.open('/etc/hostname', os.O_RDONLY)\n\
        rc = libc.syscall(308, fd, 0)\n\
        print(os.strerror(ctypes.get_errno()) if rc < 0 else 'ok')\n";
    let o = run_for(
        &mut rvisor_do(["--workers", "1", "--", "python3", "-c", script]),
        60,
    );
    assert_eq!(ok(&o), "Invalid argument\n");
}
