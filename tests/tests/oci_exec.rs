//! What a process `rvisor exec` adds is held to, and what the guest it joins can do to the host
//! through it: each test is an attack a hostile guest (or a careless image) makes on the
//! operator who runs `exec`.

use std::process::Command;

use rvisor_tests::{run_for, rvisor, stderr, stdout, Oci};

fn bundle_arg(b: &std::path::Path) -> String {
    b.display().to_string()
}

/// The guest chooses what `exec` runs (the binaries are in its root). In the caller's process
/// group, `kill(0, SIGKILL)` from it would reach the operator's shell and everything it
/// started; in a session of its own, as the init's, only itself.
#[test]
fn an_execd_process_cannot_signal_the_callers_process_group() {
    let oci = Oci::new("exec-pgrp");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "g1"]);
    let witness = oci.dir.join("witness.pid");
    // A fresh session, so that the old behaviour kills only this script's group, not the test.
    let script = format!(
        "sleep 60 </dev/null >/dev/null 2>&1 & echo $! > {w}; \
         {rv} --root {root} exec g1 sh -c 'kill -9 0'; echo exec=$?",
        w = witness.display(),
        rv = rvisor().display(),
        root = oci.root.display(),
    );
    let o = run_for(Command::new("setsid").args(["sh", "-c", &script]), 60);
    let pid: i32 = std::fs::read_to_string(&witness)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"));
    // SAFETY: kill takes integers; the witness is our own sleep.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        alive,
        "the caller's sleep was killed from the container: {o:?}"
    );
    assert_eq!(stdout(&o), "exec=137\n", "{}", stderr(&o));
    // No controlling terminal either: /dev/tty names none.
    let o = oci.run(&["exec", "g1", "sh", "-c", "echo x > /dev/tty || echo NOTTY"]);
    assert!(stdout(&o).contains("NOTTY"), "{o:?}");
    oci.ok(&["delete", "--force", "g1"]);
}

/// The container's own seccomp profile binds the processes `exec` adds, as it binds the init
/// (and as runc and runsc apply it): a guest that rewrote `/bin/sh` must not get the
/// operator's next `exec sh` out from under it.
#[test]
fn an_execd_process_is_held_to_the_containers_seccomp_profile() {
    let oci = Oci::new("exec-seccomp");
    let b = oci.bundle("b", &["sleep", "1000"], |s| {
        s["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{
                "names": ["uname", "mkdir", "mkdirat"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1
            }]
        });
    });
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "s1"]);
    let o = oci.run(&[
        "exec",
        "s1",
        "sh",
        "-c",
        "uname -s; mkdir /dev/shm/x; echo status=$?",
    ]);
    assert!(!stdout(&o).contains("Linux"), "{o:?}");
    assert!(stdout(&o).contains("status=1"), "{o:?}");
    assert!(stderr(&o).contains("Operation not permitted"), "{o:?}");
    // Everything else still runs.
    assert_eq!(oci.ok(&["exec", "s1", "echo", "ran"]), "ran\n");
    oci.ok(&["delete", "--force", "s1"]);
}

/// `--pid-file` inside the guest's writable root: the guest plants a symlink at the temporary
/// name the runtime writes first. It must not be followed to a host file.
#[test]
fn a_pid_file_in_a_guest_written_directory_follows_none_of_its_links() {
    let oci = Oci::new("exec-pidfile");
    let b = oci.bundle("b", &["sleep", "1000"], |s| {
        s["root"]["readonly"] = false.into();
    });
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "p1"]);
    let victim = oci.dir.join("victim");
    std::fs::write(&victim, "host data\n").unwrap();
    let planted = format!("ln -s {} /run/exec.rvisor-tmp", victim.display());
    oci.ok(&["exec", "p1", "sh", "-c", &planted]);
    assert!(b
        .join("rootfs/run/exec.rvisor-tmp")
        .symlink_metadata()
        .unwrap()
        .is_symlink());
    let pid_file = b.join("rootfs/run/exec.pid");
    oci.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        &pid_file.display().to_string(),
        "p1",
        "true",
    ]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data\n");
    let meta = pid_file.symlink_metadata().unwrap();
    assert!(meta.is_file(), "{meta:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(pid > 1);
    oci.ok(&["delete", "--force", "p1"]);
}

/// (uid_t)-1 is "unchanged" to setresuid: an image's `USER 4294967295` (or `exec -u`) would
/// run as root while the operator thinks it unprivileged. Refused, in one line, leaving nothing.
#[test]
fn a_user_id_of_minus_one_is_refused_not_run_as_root() {
    let oci = Oci::new("exec-uid");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "u1"]);
    for user in ["4294967295", "0:4294967295"] {
        let o = oci.run(&["exec", "-u", user, "u1", "id"]);
        assert_ne!(o.status.code(), Some(0), "{user}: {o:?}");
        assert_eq!(stdout(&o), "", "{user}: ran: {o:?}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("(uid_t)-1"), "{err}");
    }
    oci.ok(&["delete", "--force", "u1"]);
    let b = oci.bundle("c", &["id"], |s| {
        s["process"]["user"]["uid"] = 4_294_967_295u32.into();
    });
    let o = oci.run(&["run", "--bundle", &bundle_arg(&b), "u2"]);
    assert_ne!(o.status.code(), Some(0), "{o:?}");
    assert!(!stdout(&o).contains("uid="), "{o:?}");
    assert!(stderr(&o).contains("(uid_t)-1"), "{o:?}");
    assert_eq!(oci.ok(&["list", "-q"]), "");
}

/// The file an operator redirects an `exec`'s output to is handed in: the guest writes it, but
/// cannot make it a setuid-root program on the host (`chmod` through its fd link, or through a
/// bind mount that holds it), nor `chown` or `touch` it (before, each worked: a joined
/// process's stdio was nobody's to guard).
#[test]
fn an_execd_process_cannot_change_the_file_its_output_goes_to() {
    use std::os::unix::fs::MetadataExt;
    let oci = Oci::new("exec-attrs");
    // The output file also lies in a read-write bind mount of the container (`/v`).
    let shared = oci.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let source = shared.display().to_string();
    let b = oci.bundle("b", &["sleep", "1000"], |s| {
        s["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/v", "type": "bind", "source": source, "options": ["rbind", "rw"]
        }));
    });
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "a1"]);
    let out = shared.join("exec.out");
    std::fs::write(&out, "").unwrap();
    let script = format!(
        "{rv} --root {root} exec a1 sh -c 'echo data; chmod 4755 /proc/self/fd/1; echo chmod=$?; \
         chown 1:1 /dev/stdout; echo chown=$?; touch -d 2001-01-01 /proc/self/fd/1; \
         echo touch=$?; chmod 4755 /v/exec.out; echo volume=$?' >> {out}",
        rv = rvisor().display(),
        root = oci.root.display(),
        out = out.display(),
    );
    let before = std::fs::metadata(&out).unwrap();
    let o = run_for(Command::new("sh").args(["-c", &script]), 60);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "data\nchmod=1\nchown=1\ntouch=1\nvolume=1\n", "{o:?}");
    let after = std::fs::metadata(&out).unwrap();
    assert_eq!(
        (after.mode(), after.uid(), after.gid()),
        (before.mode(), before.uid(), before.gid())
    );
    assert!(after.mtime() >= before.mtime());
    oci.ok(&["delete", "--force", "a1"]);
}
