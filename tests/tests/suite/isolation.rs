//! The guest's view: read-only host root, its own namespaces, loopback-only network, options.

use std::path::Path;
use std::process::Command;

use super::prelude::*;

fn root_mount_options(mountinfo: &str) -> String {
    let line = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .expect("a mount at /");
    line.split_whitespace().nth(5).unwrap().to_string()
}

#[test]
fn guest_view_is_read_only_nosuid_nodev_and_writes_go_to_memory() {
    let out = ok(&sh("cat /proc/self/mountinfo; echo changed > /etc/rvisor-test && cat /etc/rvisor-test; echo x > /tmp/ok && cat /tmp/ok"));
    let opts = root_mount_options(&out);
    for flag in ["ro", "nosuid", "nodev"] {
        assert!(opts.split(',').any(|o| o == flag), "root options {opts}");
    }
    assert!(out.ends_with("changed\nx\n"), "{out}");
    assert!(
        !Path::new("/etc/rvisor-test").exists(),
        "a sandbox write reached the host"
    );
}

#[test]
fn overlay_none_keeps_the_root_read_only() {
    let o = run_for(
        &mut rvisor_do([
            "--overlay=none",
            "--",
            "sh",
            "-c",
            "(echo x > /etc/rvisor-test) 2>&1; echo y > /tmp/t && cat /tmp/t",
        ]),
        60,
    );
    let out = ok(&o);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.ends_with("y\n"), "{out}");
    assert!(!Path::new("/etc/rvisor-test").exists());
}

/// `--overlay=none`, as root or not (where the kernel makes the runtime bind the root with its
/// locked submounts, and cover them).
fn overlay_none_hides_host_mounts_and_keeps_volumes_writable(rootless: bool) {
    // openat2 always traps, so the gofer resolves these in its tree (a plain open of a link to
    // /proc would reach the guest's own): there the host's /proc, /sys and /dev must be the root
    // filesystem's empty directories.
    let name = format!("rvisor-test-shm-{}-{}", crate::PLATFORM, std::process::id());
    let shm = Path::new("/dev/shm").join(&name);
    std::fs::write(&shm, "HOST-SHM\n").unwrap();
    let script = format!(
        r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
for link, target in [("/tmp/d", "/dev"), ("/tmp/p", "/proc"), ("/tmp/s", "/sys")]:
    os.symlink(target, link)
def openat2(path, flags):
    how = How(flags | os.O_CLOEXEC, 0, 0)
    return libc.syscall(437, -100, path.encode(), ctypes.byref(how), 24)
for path in ["/tmp/d/shm/{name}", "/tmp/p/1/environ", "/tmp/p/self/status"]:
    fd = openat2(path, os.O_RDONLY)
    print(path.split("/")[2], fd >= 0 and os.read(fd, 100))
for path in ["/tmp/p", "/tmp/s"]:
    fd = openat2(path, os.O_RDONLY | os.O_DIRECTORY)
    print(path, fd >= 0 and len(os.listdir(fd)))
"#
    );
    let dir = scratch(&format!("overlay-none-{}-{rootless}", crate::PLATFORM));
    set_mode(&dir, 0o777);
    // At its own path: a destination that exists in the read-only root, outside the sandbox's
    // fresh /tmp and /run.
    let volume = format!("{0}:{0}", dir.display());
    // A FIFO in a read-write volume opens natively for writing (Landlock grants the volume).
    let fifo = format!(
        "mkfifo {0}/f && exec 3<>{0}/f && echo through-fifo >&3 && read -r line <&3 && \
         echo $line",
        dir.display()
    );
    let args = [
        "--overlay=none",
        "-v",
        &volume,
        "--",
        "sh",
        "-c",
        &format!("python3 -c '{script}' && {fifo}"),
    ];
    let o = run_for(
        &mut if rootless {
            rootless_do(args)
        } else {
            rvisor_do(args)
        },
        60,
    );
    let _ = std::fs::remove_file(&shm);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        ok(&o),
        "d False\np False\np False\n/tmp/p 0\n/tmp/s 0\nthrough-fifo\n",
        "{o:?}"
    );
}

#[test]
fn overlay_none_shows_the_roots_own_filesystem_not_the_hosts_proc_or_dev() {
    overlay_none_hides_host_mounts_and_keeps_volumes_writable(false);
}

#[test]
fn overlay_none_shows_the_roots_own_filesystem_not_the_hosts_proc_or_dev_rootless() {
    overlay_none_hides_host_mounts_and_keeps_volumes_writable(true);
}

#[test]
fn vsock_is_refused_unless_the_host_network_is_asked_for() {
    let script = "python3 -c 'import socket
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    print(\"vsock\")
except OSError as e:
    print(\"errno\", e.errno)'";
    assert_eq!(ok(&sh(script)), format!("errno {}\n", libc::EAFNOSUPPORT));
    // Where this host has vsock, the host's network brings it (so the refusal is rvisor's).
    // SAFETY: socket takes integers; the fd, if any, is closed at once.
    let here = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
    if here >= 0 {
        // SAFETY: closes the fd just made.
        unsafe { libc::close(here) };
        let o = run_for(
            &mut rvisor_do(["--network=host", "--", "sh", "-c", script]),
            60,
        );
        assert_eq!(ok(&o), "vsock\n");
    }
}

#[test]
fn guest_has_its_own_namespaces() {
    let kinds = ["pid", "uts", "ipc", "net", "mnt", "user"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let inside = ok(&sh(&script));
    for (kind, line) in kinds.iter().zip(inside.lines()) {
        let host = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(
            host.to_str().unwrap(),
            line,
            "{kind} namespace is the host's"
        );
    }
}

#[test]
fn network_is_loopback_only_unless_host_is_asked_for() {
    let script = "ls /sys/class/net | tr '\\n' ' '; python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); s.listen(); c=socket.create_connection(s.getsockname()); print(\"loopback-ok\")'";
    let out = ok(&sh(script));
    assert!(out.starts_with("lo \n") || out.starts_with("lo "), "{out}");
    assert!(out.contains("loopback-ok"), "{out}");
    let host_ifaces = std::fs::read_dir("/sys/class/net").unwrap().count();
    let o = run_for(
        &mut rvisor_do([
            "--network=host",
            "--",
            "sh",
            "-c",
            "ls /sys/class/net | wc -l",
        ]),
        60,
    );
    assert_eq!(ok(&o).trim().parse::<usize>().unwrap(), host_ifaces);
}

#[test]
fn hostname_defaults_to_rvisor_and_is_configurable() {
    assert_eq!(ok(&sh("hostname")), "rvisor\n");
    let o = run_for(
        &mut rvisor_do([
            "--hostname",
            "box1",
            "--",
            "sh",
            "-c",
            "hostname; cat /proc/sys/kernel/hostname",
        ]),
        60,
    );
    assert_eq!(ok(&o), "box1\nbox1\n");
}

#[test]
fn env_cwd_uid_gid_options() {
    let o = run_for(
        &mut rvisor_do([
            "--env",
            "RVISOR_T=v1",
            "--cwd",
            "/usr",
            "--uid",
            "1000",
            "--gid",
            "100",
            "--",
            "sh",
            "-c",
            "echo $RVISOR_T; pwd; id -u; id -g",
        ]),
        60,
    );
    assert_eq!(ok(&o), "v1\n/usr\n1000\n100\n");
}

#[test]
fn working_directory_defaults_to_the_callers_when_visible() {
    let o = run_for(rvisor_do(["--", "pwd"]).current_dir("/usr/lib"), 60);
    assert_eq!(ok(&o), "/usr/lib\n");
    // The host's /tmp is not the sandbox's: start in / rather than fail.
    let o = run_for(rvisor_do(["--", "pwd"]).current_dir("/tmp"), 60);
    assert_eq!(ok(&o), "/tmp\n");
    let hidden = tempdir_under_tmp();
    let o = run_for(rvisor_do(["--", "pwd"]).current_dir(&hidden), 60);
    assert_eq!(ok(&o), "/\n");
    let _ = std::fs::remove_dir(&hidden);
}

fn tempdir_under_tmp() -> std::path::PathBuf {
    let p = std::path::PathBuf::from(format!("/tmp/rvisor-cwd-test-{}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn volumes_rw_ro_and_under_tmp() {
    let dir = scratch("volumes");
    std::fs::write(dir.join("in.txt"), "from host\n").unwrap();
    let d = dir.display();
    let o = run_for(
        &mut rvisor_do([
            "--volume".to_string(),
            format!("{d}:/tmp/rw"),
            "--volume".to_string(),
            format!("{d}:/tmp/ro:ro"),
            "--".to_string(),
            "sh".to_string(),
            "-c".to_string(),
            "cat /tmp/rw/in.txt; echo out > /tmp/rw/out.txt; (echo x > /tmp/ro/no.txt) 2>&1; mount | grep -c ' /tmp/r[ow] '".to_string(),
        ]),
        60,
    );
    let out = ok(&o);
    assert!(out.starts_with("from host\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "out\n"
    );
    assert!(!dir.join("no.txt").exists());
}

#[test]
fn volume_destination_in_read_only_root_is_a_clear_error() {
    let dir = scratch("volume-ro-root");
    let o = run_for(
        &mut rvisor_do([
            "--overlay=none".into(),
            format!("--volume={}:/no-such-dir-in-root", dir.display()),
            "--".into(),
            "true".into(),
        ]),
        60,
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("destination must exist or lie under /tmp"),
        "{}",
        stderr(&o)
    );
}

/// What the sandbox would silently drop or the kernel refuse late is refused before anything
/// starts, in clap's one message: a volume under the sandbox's own /proc, /sys or /dev, a host
/// name the kernel would not take, a uid of (uid_t)-1 (which `setresuid` reads as "unchanged":
/// root), `--preserve-fds` naming fds that are not open.
#[test]
fn options_the_sandbox_cannot_honour_are_refused_up_front() {
    let dir = scratch("refused-options");
    let volume = |dst: &str| format!("--volume={}:{dst}", dir.display());
    let long_name = format!("--hostname={}", "h".repeat(65));
    for (args, says) in [
        (vec![volume("/dev/qa")], "makes its own /dev"),
        (vec![volume("/proc/sys/qa")], "makes its own /proc"),
        (vec![volume("/sys")], "makes its own /sys"),
        (vec![long_name], "1 to 64"),
        (vec!["--uid=4294967295".into()], "--uid"),
        (vec!["--gid=4294967295".into()], "--gid"),
        (vec!["--preserve-fds=5".into()], "is not open"),
    ] {
        let mut full = args.clone();
        full.extend(["--".into(), "true".into()]);
        let o = run_for(&mut rvisor_do(full), 60);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

/// `--root` gives the guest another tree: a minimal one built from busybox-static.
#[test]
fn root_option_uses_another_tree() {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static");
    let root = scratch("rootfs");
    for d in ["bin", "proc", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let _ = std::os::unix::fs::symlink("busybox", root.join("bin/sh"));
    std::fs::write(root.join("etc/marker"), "mini-root\n").unwrap();
    let o = run_for(
        &mut rvisor_do([
            "--root".as_ref(),
            root.as_os_str(),
            "--".as_ref(),
            "/bin/sh".as_ref(),
            "-c".as_ref(),
            std::ffi::OsStr::new("/bin/busybox cat /etc/marker; /bin/busybox ls /; echo hi > /tmp/t && /bin/busybox cat /tmp/t"),
        ]),
        60,
    );
    let out = ok(&o);
    assert!(out.starts_with("mini-root\n"), "{out}");
    assert!(!out.contains("usr"), "host tree leaked: {out}");
    assert!(out.ends_with("hi\n"), "{out}");
}

/// Runs `guest` in the sandbox from a shell in a session of its own, next to a host `sleep` in
/// the same process group, and reports that sleep's fate: the guest's process group must not be
/// the caller's (the kernel signals and renices every member of a group, in the guest's pid
/// namespace or not).
fn beside_a_host_process(guest: &str) -> String {
    let bin = rvisor();
    let script = format!(
        "sleep 30 & S=$!; N=$(cut -d' ' -f19 /proc/$S/stat); \
         {} --platform={} do -- sh -c '{guest}' >/dev/null 2>&1; \
         if ! kill -0 $S 2>/dev/null; then echo gone; \
         elif [ \"$(cut -d' ' -f19 /proc/$S/stat)\" = \"$N\" ]; then echo alive, nice unchanged; kill $S; \
         else echo alive, reniced; kill $S; fi",
        bin.display(),
        crate::PLATFORM
    );
    let out = run_for(Command::new("setsid").args(["sh", "-c", &script]), 60);
    stdout(&out)
}

#[test]
fn the_guest_cannot_signal_the_callers_process_group() {
    assert_eq!(
        beside_a_host_process("kill -TERM 0; kill -KILL -1; sleep 1"),
        "alive, nice unchanged\n"
    );
}

#[test]
fn the_guest_cannot_renice_the_callers_process_group() {
    assert_eq!(
        beside_a_host_process("renice -n 7 -g 0"),
        "alive, nice unchanged\n"
    );
}
