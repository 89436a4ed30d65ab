//! The escape classes a review found open (issue 11), each attacked end to end by a hostile
//! guest (`escape_probe.c`) on this target's platform, as root and (where the class applies)
//! rootless: its own seccomp listener, an untraced child under a guest tracer, the init's fds and
//! memory, fds the caller left open, clone3 flags rewritten after the check, host Unix sockets.

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::prelude::*;

const NO_ARGS: [&str; 0] = [];

fn probe() -> PathBuf {
    static PROBE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| compile_c("escape_probe", include_str!("escape_probe.c")))
        .clone()
}

/// Runs the probe's `what` in a sandbox made by `cmd` (rvisor do ... as root or rootless).
fn attack(mut cmd: Command, what: &[&str]) -> String {
    cmd.arg("--").arg(probe()).args(what);
    let o = run_for(&mut cmd, 120);
    let out = ok(&o);
    assert!(!out.contains("ESCAPED"), "{what:?}:\n{out}\n{}", stderr(&o));
    out
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
}

#[test]
fn a_guest_cannot_install_its_own_supervisor() {
    let out = attack(rvisor_do(NO_ARGS), &["listener"]);
    assert!(line(&out, "own-listener").contains("contained"), "{out}");
}

#[test]
fn an_untraced_child_under_a_guest_tracer_stays_supervised() {
    let out = attack(rvisor_do(NO_ARGS), &["untraced"]);
    let l = line(&out, "untraced-child");
    assert!(l.contains("contained"), "{out}");
    if crate::PLATFORM == "ptrace" {
        // Every guest task is the sentry's tracee (the flag is stripped): the guest traces
        // nothing.
        assert!(l.contains("seize Operation not permitted"), "{out}");
        assert!(l.contains("refused"), "{out}");
    } else {
        // A container's init is traced by the sentry's exit watch: no task may leave it.
        assert!(
            l.contains("clone(CLONE_UNTRACED): Operation not permitted"),
            "{out}"
        );
    }
}

#[test]
fn clone3_never_runs_whatever_its_flags_say() {
    let out = attack(rvisor_do(NO_ARGS), &["clone3"]);
    assert!(
        line(&out, "clone3").contains("0 ran, 0 in a new user namespace, 2000 ENOSYS"),
        "{out}"
    );
    // The libc falls back to clone: threads and processes still start.
    let o = sh("python3 -c 'import threading,subprocess; t=threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join(); print(subprocess.run([\"echo\",\"child\"],capture_output=True).stdout.decode().strip())'");
    assert_eq!(ok(&o), "thread\nchild\n");
}

/// fds a caller might leak: a directory outside the root, a writable file, a pipe.
fn leaked(dir: &Path) -> Vec<(i32, OwnedFd)> {
    std::fs::write(dir.join("secret"), "TOP SECRET\n").unwrap();
    vec![
        (3, std::fs::File::open(dir).unwrap().into()),
        (4, std::fs::File::create(dir.join("w")).unwrap().into()),
        (7, pipe_with("LEAKED")),
        (100, std::fs::File::open("/").unwrap().into()),
    ]
}

fn nothing_reaches_the_guest(mut cmd: Command, dir: &Path) {
    leave_open(&mut cmd, leaked(dir));
    cmd.arg("--")
        .arg("/bin/sh")
        .arg("-c")
        .arg(format!("{p} fds && {p} init", p = probe().display()));
    let o = run_for(&mut cmd, 120);
    let out = ok(&o);
    assert!(!out.contains("ESCAPED"), "{out}");
    // `sh` adds nothing of its own; only stdio crosses.
    assert_eq!(line(&out, "fds"), "fds 0 1 2", "{out}");
    assert!(line(&out, "init-reach").contains("contained"), "{out}");
}

#[test]
fn fds_the_caller_left_open_never_reach_the_guest_or_its_init() {
    let dir = scratch("leaked-fds");
    nothing_reaches_the_guest(rvisor_do(NO_ARGS), &dir);
}

#[test]
fn rootless_fds_the_caller_left_open_never_reach_the_guest_or_its_init() {
    let dir = scratch("leaked-fds-rootless");
    set_mode(&dir, 0o777);
    nothing_reaches_the_guest(rootless_do(NO_ARGS), &dir);
}

#[test]
fn preserve_fds_hands_over_exactly_those() {
    let dir = scratch("preserved-fds");
    let mut fds = leaked(&dir);
    fds[0] = (3, pipe_with("PRESERVED"));
    let mut cmd = rvisor_do(["--preserve-fds", "1"]);
    leave_open(&mut cmd, fds);
    cmd.arg("--").arg(probe()).arg("fds");
    let out = ok(&run_for(&mut cmd, 120));
    assert!(out.starts_with("fds 0 1 2 3\n"), "{out}");
    assert!(out.contains("fd3 says PRESERVED"), "{out}");
}

#[test]
fn bad_preserve_fds_is_refused_clearly() {
    let o = run_for(&mut rvisor_do(["--preserve-fds=abc", "true"]), 30);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--preserve-fds"), "{}", stderr(&o));
}

/// A host stream listener and datagram socket in `dir`, reachable natively by anyone (0777).
struct HostSockets {
    stream: UnixListener,
    dgram: UnixDatagram,
}

impl HostSockets {
    fn new(dir: &Path) -> Self {
        let _ = std::fs::remove_file(dir.join("s.sock"));
        let _ = std::fs::remove_file(dir.join("d.sock"));
        let stream = UnixListener::bind(dir.join("s.sock")).unwrap();
        let dgram = UnixDatagram::bind(dir.join("d.sock")).unwrap();
        stream.set_nonblocking(true).unwrap();
        dgram.set_nonblocking(true).unwrap();
        for s in ["s.sock", "d.sock"] {
            set_mode(&dir.join(s), 0o777);
        }
        set_mode(dir, 0o777);
        HostSockets { stream, dgram }
    }

    /// Connections accepted and datagrams received since the last call.
    fn reached(&self) -> usize {
        let mut n = 0;
        while self.stream.accept().is_ok() {
            n += 1;
        }
        let mut buf = [0u8; 16];
        while self.dgram.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    }
}

fn host_sockets_case(mut cmd: Command, dir: &Path, inside: &str) {
    let host = HostSockets::new(dir);
    let script = format!(
        "{p} host-sockets {inside}/s.sock {inside}/d.sock && {p} inside-sockets",
        p = probe().display()
    );
    cmd.args(["--", "/bin/sh", "-c", &script]);
    let o = run_for(&mut cmd, 120);
    let out = ok(&o);
    assert!(!out.contains("ESCAPED"), "{out}\n{}", stderr(&o));
    assert!(line(&out, "host-sockets").contains("contained"), "{out}");
    assert!(line(&out, "inside-sockets").contains("work"), "{out}");
    assert_eq!(host.reached(), 0, "the host sockets heard from the guest");
}

#[test]
fn host_sockets_in_a_volume_are_refused() {
    let dir = scratch("host-sockets-volume");
    let vol = format!("{}:/vol", dir.display());
    host_sockets_case(rvisor_do(["-v", vol.as_str()]), &dir, "/vol");
}

#[test]
fn host_sockets_on_a_read_only_root_are_refused() {
    let dir = scratch("host-sockets-root");
    let path = dir.display().to_string();
    host_sockets_case(rvisor_do(["--overlay=none"]), &dir, &path);
}

#[test]
fn rootless_host_sockets_are_refused() {
    let dir = scratch("host-sockets-rootless");
    let vol = format!("{}:/vol", dir.display());
    host_sockets_case(rootless_do(["-v", vol.as_str()]), &dir, "/vol");
}

/// The opt-in reaches them: the probe would have seen a host socket had the refusal been
/// missing (so the tests above can fail).
#[test]
fn host_uds_open_reaches_host_sockets() {
    let dir = scratch("host-sockets-open");
    let host = HostSockets::new(&dir);
    let vol = format!("{}:/vol", dir.display());
    let mut cmd = Command::new(rvisor());
    cmd.args([
        &format!("--platform={}", crate::PLATFORM),
        "--host-uds=open",
        "do",
        "-v",
        &vol,
        "--",
    ])
    .arg(probe())
    .args(["host-sockets", "/vol/s.sock", "/vol/d.sock"])
    .current_dir("/");
    let o = run_for(&mut cmd, 120);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let l = line(&out, "host-sockets");
    for how in [
        "connect",
        "sendto",
        "sendmsg",
        "sendmmsg",
        "from 0x100000000",
    ] {
        assert!(l.contains(how), "{how} did not reach the host socket: {l}");
    }
    assert!(host.reached() >= 5, "{l}");
}

#[test]
fn bad_host_uds_is_refused_clearly() {
    let o = run_for(
        Command::new(rvisor())
            .args(["--host-uds=sometimes", "do", "true"])
            .current_dir("/"),
        30,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--host-uds"), "{}", stderr(&o));
}

/// The fd-table race behind a natively continued `sendmsg`: a sibling thread swaps a Unix
/// datagram socket over the fd after the sentry looked at it. The kernel backstop (the guest's
/// guard cgroup refuses Unix sends with an address made natively) keeps every datagram off the
/// host socket; without it 11 of 20,000 got through here.
#[test]
fn a_swapped_fd_cannot_carry_a_sendmsg_to_a_host_socket() {
    fd_swap_case("fd-swap", |a| rvisor_do(a));
}

/// Rootless there is no guard cgroup: every sendmsg is made by the sentry instead.
#[test]
fn rootless_a_swapped_fd_cannot_carry_a_sendmsg_to_a_host_socket() {
    fd_swap_case("fd-swap-rootless", |a| rootless_do(a));
}

fn fd_swap_case(name: &str, sandbox: impl Fn(&[&str]) -> Command) {
    let dir = scratch(name);
    let host = HostSockets::new(&dir);
    let vol = format!("{}:/vol", dir.display());
    let out = attack(sandbox(&["-v", vol.as_str()]), &["fd-swap", "/vol/d.sock"]);
    assert!(
        line(&out, "fd-swap").contains("20000 sendmsg calls"),
        "{out}"
    );
    assert_eq!(host.reached(), 0, "a datagram reached the host socket");
}

#[test]
fn rootless_no_own_supervisor_no_untraced_child_no_clone3() {
    let mut cmd = rootless_do(NO_ARGS);
    let script = format!(
        "{p} listener && {p} untraced && {p} clone3",
        p = probe().display()
    );
    cmd.args(["--", "/bin/sh", "-c", &script]);
    let o = run_for(&mut cmd, 120);
    let out = ok(&o);
    assert!(!out.contains("ESCAPED"), "{out}");
    for name in ["own-listener", "untraced-child", "clone3"] {
        assert!(line(&out, name).contains("contained"), "{out}");
    }
}

/// The sentry makes Unix sends and connects itself: a guest that keeps the peer's queue (or
/// backlog) full must not park the sentry's worker while another guest thread needs it.
#[test]
fn a_full_peer_cannot_deadlock_the_sentry() {
    for mode in ["sendto", "sendmsg", "connect"] {
        let out = attack(rvisor_do(NO_ARGS), &["deadlock", mode]);
        assert!(line(&out, "deadlock-free").ends_with(mode), "{out}");
    }
}

#[test]
fn rootless_a_full_peer_cannot_deadlock_the_sentry() {
    for mode in ["sendto", "sendmsg", "connect"] {
        let out = attack(rootless_do(NO_ARGS), &["deadlock", mode]);
        assert!(line(&out, "deadlock-free").ends_with(mode), "{out}");
    }
}

/// A careless caller's arguments to the calls the sentry now makes itself get Linux's errnos:
/// the same program prints the same natively and in the sandbox.
#[test]
fn oversized_addresses_and_open_how_get_linux_errnos() {
    let probe = compile_c(
        "errnos",
        r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
    struct { struct sockaddr_un a; char pad[20]; } big;
    memset(&big, 0, sizeof big);
    big.a.sun_family = AF_UNIX;
    strcpy(big.a.sun_path, "/nonexistent/x.sock");
    int s = socket(AF_UNIX, SOCK_STREAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0);
    long r = connect(s, (void *)&big, 111);
    printf("connect-111 %ld %s\n", r, strerrorname_np(errno));
    r = sendto(d, "x", 1, 0, (void *)&big, 111);
    printf("sendto-111 %ld %s\n", r, strerrorname_np(errno));
    r = connect(s, (void *)&big, sizeof big.a);
    printf("connect-missing %ld %s\n", r, strerrorname_np(errno));
    struct open_how h = {0};
    r = syscall(SYS_openat2, AT_FDCWD, "/etc/passwd", &h, 1UL << 40);
    printf("openat2-huge %ld %s\n", r, strerrorname_np(errno));
    r = syscall(SYS_openat2, AT_FDCWD, "/etc/passwd", &h, 4);
    printf("openat2-small %ld %s\n", r, strerrorname_np(errno));
    return 0;
}
"#,
    );
    let native = Command::new(&probe).output().unwrap();
    let inside = run_for(&mut rvisor_do([probe.as_os_str()]), 60);
    assert_eq!(ok(&inside), stdout(&native));
    assert!(
        stdout(&native).contains("connect-111 -1 EINVAL"),
        "{}",
        stdout(&native)
    );
}

/// An IP connect that waits minutes (SYN retries against a full loopback backlog) runs in the
/// guest's own thread, not in the sentry's worker: the guest's other calls are still served.
/// (As root: the guard cgroup makes a natively continued connect safe.)
#[test]
fn a_slow_tcp_connect_does_not_hold_the_sentry() {
    let out = attack(rvisor_do(NO_ARGS), &["tcp-backlog"]);
    assert!(out.contains("tcp-backlog served"), "{out}");
}

/// The guest's own send timeout holds for the sends the sentry makes: EAGAIN, as in Linux.
#[test]
fn a_send_timeout_of_the_guests_own_gives_eagain() {
    for out in [
        attack(rvisor_do(NO_ARGS), &["sndtimeo"]),
        attack(rootless_do(NO_ARGS), &["sndtimeo"]),
    ] {
        assert_eq!(line(&out, "sndtimeo"), "sndtimeo -1 EAGAIN", "{out}");
    }
}
