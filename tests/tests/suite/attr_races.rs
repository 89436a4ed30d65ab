//! Attribute changes (mode, owner, times, xattrs) are never let through to the kernel on a path
//! it would read again: a guest holding a host directory (received over a socket the caller
//! handed in) races the path of `chmod`, `chown`, `utimensat` and the xattr calls between its
//! own `/dev/shm` and a file beneath that directory. Found by a hostile review; before the fix
//! `chmod` won about 1 call in 12 and made a host file setuid.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::prelude::*;

fn probe() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c("attr_race", include_str!("probes/attr_race.c")))
}

/// Sends `fd` over `sock` (SCM_RIGHTS, one byte of data).
fn send_fd(sock: &UnixStream, fd: &OwnedFd) {
    let mut byte = [b'd'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: msghdr is plain data; zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: CMSG_LEN only computes a size.
    let head = unsafe { libc::CMSG_LEN(0) } as usize;
    let full = head + std::mem::size_of::<i32>();
    let header = libc::cmsghdr {
        cmsg_len: full,
        cmsg_level: libc::SOL_SOCKET,
        cmsg_type: libc::SCM_RIGHTS,
    };
    // SAFETY: the buffer holds CMSG_SPACE(int) bytes, more than one cmsghdr.
    unsafe { std::ptr::write_unaligned(control.as_mut_ptr().cast(), header) };
    control[head..head + 4].copy_from_slice(&fd.as_raw_fd().to_ne_bytes());
    // SAFETY: every pointer in `msg` points into buffers alive for the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    assert_eq!(n, 1, "sendmsg: {}", std::io::Error::last_os_error());
}

/// What an attribute race could change of `path`: mode, owners, mtime, and its xattr names.
fn attrs(path: &Path) -> (u32, u32, u32, i64, Vec<String>) {
    let m = std::fs::symlink_metadata(path).unwrap();
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut list = vec![0u8; 4096];
    // SAFETY: llistxattr reads the NUL-terminated name and writes at most list.len() bytes.
    let n = unsafe { libc::llistxattr(name.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    let names = list[..n.max(0) as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    (m.mode(), m.uid(), m.gid(), m.mtime(), names)
}

/// Runs the racing probe with a host directory (holding `target`, owned by `owner`) sent to it
/// over the socket handed in as fd 3; returns what it printed, and asserts `target` unchanged.
fn race(name: &str, rootless: bool, owner: u32) -> String {
    let dir = scratch(&format!("attr-race-{name}-{}", crate::PLATFORM));
    let target = dir.join("target");
    std::fs::write(&target, "host file").unwrap();
    set_mode(&target, 0o644);
    // An xattr the racing removexattr would take away (where the filesystem has user xattrs).
    let name = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: setxattr reads the NUL-terminated name, attribute name and one byte of value.
    let _ = unsafe {
        libc::setxattr(
            name.as_ptr(),
            c"user.kept".as_ptr(),
            b"1".as_ptr().cast(),
            1,
            0,
        )
    };
    chown_tree(&dir, owner);
    set_mode(&dir, 0o755);
    let before = attrs(&target);

    let (ours, theirs) = UnixStream::pair().unwrap();
    let dir_fd: OwnedFd = std::fs::File::open(&dir).unwrap().into();
    send_fd(&ours, &dir_fd);
    drop(dir_fd);
    let bin = probe().display().to_string();
    let args = ["--preserve-fds", "1", "--", &bin, "3000"];
    let mut cmd = do_as(rootless, args);
    leave_open(&mut cmd, vec![(3, theirs.into())]);
    let o = run_for(&mut cmd, 300);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{out}");
    assert_eq!(attrs(&target), before, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// The count of successful calls of `kind` in the probe's output.
fn ok_count(out: &str, kind: &str) -> u32 {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{kind} ok=")))
        .unwrap_or_else(|| panic!("no {kind} line: {out}"));
    line[kind.len() + 4..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn a_racing_path_changes_nothing_beneath_a_received_host_directory() {
    let out = race("root", false, 0);
    // The guest's own file took the changes meant for it: the calls did run, served (the
    // chown after the chmod clears its setuid bit).
    assert!(out.contains("shm mode=777\n"), "{out}");
    for kind in ["chmod", "chown", "utimes", "empty-chown", "empty-utimes"] {
        assert!(ok_count(&out, kind) > 0, "{kind}: {out}");
    }
}

#[test]
fn rootless_a_racing_path_changes_nothing_beneath_a_received_host_directory() {
    let out = race("rootless", true, rootless_uid());
    assert!(out.contains("shm mode=4777\n"), "{out}");
    for kind in ["chmod", "utimes", "empty-utimes"] {
        assert!(ok_count(&out, kind) > 0, "{kind}: {out}");
    }
}

/// Python's prelude for the guest scripts: `t(what, f)` prints `what` and "changed", or the
/// errno `f` failed with.
const TRY: &str = r#"
import os
def t(what, f):
    try:
        f()
        print(what, "changed")
    except OSError as e:
        print(what, e.errno)
"#;

/// Runs `script` (after [`TRY`]) with python3 in a sandbox (`extra` arguments first, rootless
/// or not), its stdout appended to `output` and `stdin` as its stdin; what the guest printed.
fn python_into(
    output: &Path,
    stdin: Option<&Path>,
    extra: &[&str],
    script: &str,
    rootless: bool,
) -> (std::process::Output, String) {
    let script = format!("{TRY}{script}");
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--", "python3", "-c", &script]);
    let mut cmd = do_as(rootless, &args);
    let appending = std::fs::OpenOptions::new()
        .append(true)
        .open(output)
        .unwrap();
    let mut fds: Vec<(i32, OwnedFd)> = vec![(1, appending.into())];
    if let Some(input) = stdin {
        fds.push((0, std::fs::File::open(input).unwrap().into()));
    }
    leave_open(&mut cmd, fds);
    let o = run_for(&mut cmd, 120);
    let printed = std::fs::read_to_string(output).unwrap();
    (o, printed)
}

/// A guest root changing the attributes of what the caller handed in: the file its output was
/// redirected to (written first, then made setuid: a root program on the host), and a file given
/// as stdin. Every change is refused; its own files still take theirs.
fn handed_in(name: &str, rootless: bool, owner: u32) {
    let dir = scratch(&format!("attr-handed-in-{name}-{}", crate::PLATFORM));
    let (input, output) = (dir.join("in"), dir.join("out"));
    std::fs::write(&input, "input\n").unwrap();
    std::fs::write(&output, "").unwrap();
    chown_tree(&dir, owner);
    for f in [&input, &output] {
        set_mode(f, 0o644);
    }
    set_mode(&dir, 0o755);
    let (before_in, before_out) = (attrs(&input), attrs(&output));
    let script = r#"
for fd in (0, 1):
    t(f"fchmod{fd}", lambda: os.fchmod(fd, 0o4755))
    t(f"fchown{fd}", lambda: os.fchown(fd, 0, 0))
    t(f"futimens{fd}", lambda: os.utime(fd, (1, 1)))
    t(f"fsetxattr{fd}", lambda: os.setxattr(fd, "user.rvisor", b"1"))
    t(f"chmod-link{fd}", lambda: os.chmod(f"/proc/self/fd/{fd}", 0o4755))
    t(f"chmod-dev{fd}", lambda: os.chmod(("/dev/stdin", "/dev/stdout")[fd], 0o4755))
    t(f"chown-empty{fd}", lambda: os.chown(fd, 0, 0, follow_symlinks=True))
open("/tmp/mine", "w").close()
fd = os.open("/tmp/mine", os.O_RDONLY)
t("own-fchmod", lambda: os.fchmod(fd, 0o4755))
t("own-futimens", lambda: os.utime(fd, (1, 1)))
print("own mode", oct(os.stat("/tmp/mine").st_mode & 0o7777))
"#;
    let (o, out) = python_into(&output, Some(&input), &[], script, rootless);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let changed = |l: &&str| l.ends_with(" changed") && !l.starts_with("own-");
    assert!(!out.lines().any(|l| changed(&l)), "{out}");
    assert_eq!(out.matches(" 1\n").count(), 14, "EPERM for each: {out}");
    assert!(out.contains("own mode 0o4755"), "{out}");
    let mut after_out = attrs(&output);
    // Only its size and mtime moved, by the writes the guest may make.
    after_out.3 = before_out.3;
    assert_eq!((attrs(&input), after_out), (before_in, before_out), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_handed_in_takes_no_attribute_change() {
    handed_in("root", false, 0);
}

#[test]
fn rootless_a_file_handed_in_takes_no_attribute_change() {
    handed_in("rootless", true, rootless_uid());
}

/// A host directory whose path reads like the guest's own (`/dev/shm/...`), received over a
/// socket handed in: a relative open from it once ran natively, as if it were the guest's
/// `/dev/shm`, and gave an O_PATH handle on the host file beneath (whose mode, owner and xattrs
/// then changed through its fd link, and `..` reached above the directory); `/dev/fd/N` once
/// made it the working directory. Found by a hostile review.
fn received_dev_path(name: &str, rootless: bool, owner: u32) {
    let dir = PathBuf::from(format!(
        "/dev/shm/rvisor-test-{name}-{}-{}",
        crate::PLATFORM,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "host").unwrap();
    set_mode(&victim, 0o644);
    chown_tree(&dir, owner);
    let before = attrs(&victim);
    let (ours, theirs) = UnixStream::pair().unwrap();
    for d in [dir.clone(), dir.join("sub")] {
        let fd: OwnedFd = std::fs::File::open(&d).unwrap().into();
        send_fd(&ours, &fd);
    }
    let script = r#"
import array, socket
s = socket.socket(fileno=3)
fds = []
for _ in range(2):
    _, anc, _, _ = s.recvmsg(1, socket.CMSG_LEN(4))
    fds.append(array.array("i", anc[0][2])[0])
top, sub = fds
for name, d in (("victim", top), ("../victim", sub)):
    try:
        h = os.open(name, os.O_PATH, dir_fd=d)
        print("opath", name, "got")
        t("chmod", lambda: os.chmod(f"/proc/self/fd/{h}", 0o4755))
        t("chown", lambda: os.chown(f"/proc/self/fd/{h}", 1234, 1234))
        t("xattr", lambda: os.setxattr(f"/proc/self/fd/{h}", "user.pwned", b"1"))
    except OSError as e:
        print("opath", name, e.errno)
    t("chmod-at", lambda: os.chmod(name, 0o4755, dir_fd=d))
    t("utime-at", lambda: os.utime(name, (5, 5), dir_fd=d))
t("chdir-devfd", lambda: os.chdir(f"/dev/fd/{top}"))
t("chdir-proc", lambda: os.chdir(f"/proc/self/fd/{top}"))
"#;
    let script = format!("{TRY}{script}");
    let args = ["--preserve-fds", "1", "--", "python3", "-c", &script];
    let mut cmd = do_as(rootless, args);
    leave_open(&mut cmd, vec![(3, theirs.into())]);
    let o = run_for(&mut cmd, 120);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    let after = attrs(&victim);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "{out}");
    assert_eq!(after, before, "{out}");
    assert!(!out.contains(" got") && !out.contains(" changed"), "{out}");
    assert!(out.contains("chdir-devfd 13\n"), "{out}");
}

#[test]
fn a_received_directory_under_dev_is_not_taken_for_the_guests_own() {
    received_dev_path("root", false, 0);
}

#[test]
fn rootless_a_received_directory_under_dev_is_not_taken_for_the_guests_own() {
    received_dev_path("rootless", true, rootless_uid());
}

/// The file the output goes to lies in a read-write volume: a path there reaches the same
/// inode, through the gofer (by its name, a hard link to it, or a natively opened fd). Found
/// by a hostile review of the first version, which guarded only the fds.
fn handed_in_through_a_volume(name: &str, rootless: bool, owner: u32) {
    let dir = scratch(&format!("attr-volume-{name}-{}", crate::PLATFORM));
    let output = dir.join("out");
    std::fs::write(&output, "").unwrap();
    chown_tree(&dir, owner);
    set_mode(&output, 0o644);
    set_mode(&dir, 0o777);
    let before = attrs(&output);
    let script = r#"
t("chmod", lambda: os.chmod("/v/out", 0o4755))
t("chown", lambda: os.chown("/v/out", 0, 0))
t("utime", lambda: os.utime("/v/out", (1, 1)))
t("setxattr", lambda: os.setxattr("/v/out", "user.rvisor", b"1"))
os.link("/v/out", "/v/hl")
t("chmod-link", lambda: os.chmod("/v/hl", 0o4755))
fd = os.open("/v/out", os.O_RDONLY)
t("fchmod-view", lambda: os.fchmod(fd, 0o4755))
o = os.open("/proc/self/fd/1", os.O_PATH)
t("chmod-opath", lambda: os.chmod(f"/proc/self/fd/{o}", 0o4755))
os.unlink("/v/hl")
open("/v/mine", "w").close()
t("own-chmod", lambda: os.chmod("/v/mine", 0o640))
"#;
    let volume = format!("{}:/v", dir.display());
    let (o, out) = python_into(&output, None, &["-v", &volume], script, rootless);
    let mut after = attrs(&output);
    after.3 = before.3;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches(" 1\n").count(), 7, "EPERM for each: {out}");
    assert!(out.contains("own-chmod changed"), "{out}");
    assert_eq!(after, before, "{out}");
}

#[test]
fn a_file_handed_in_keeps_its_attributes_through_a_volume_path() {
    handed_in_through_a_volume("root", false, 0);
}

#[test]
fn rootless_a_file_handed_in_keeps_its_attributes_through_a_volume_path() {
    handed_in_through_a_volume("rootless", true, rootless_uid());
}

/// Linux's answers for the attribute calls the sentry now makes itself, where its first
/// version differed (a hostile review compared them with native): a trailing slash on a file,
/// unknown `fchmodat2` flags, `futimesat` with a NULL path (the fd itself), a trailing slash
/// after `/proc/self`, and `/dev/fd/N` as the fd.
#[test]
fn attribute_calls_on_the_guests_own_dev_answer_as_linux() {
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def rc(r):
    return 0 if r == 0 else ctypes.get_errno()
open("/dev/shm/f", "w").close()
t("slash", lambda: os.chmod("/dev/shm/f/", 0o600))
print("flags", rc(libc.syscall(452, -100, b"/dev/shm/f", 0o600, 0x4)))
fd = os.open("/dev/shm/f", os.O_RDONLY)
print("futimesat", rc(libc.syscall(261, fd, None, None)))
t("proc-self", lambda: os.chown("/proc/self/", 0, 0))
t("devfd", lambda: os.chmod(f"/dev/fd/{fd}", 0o640))
print("mode", oct(os.stat("/dev/shm/f").st_mode & 0o777))
"#;
    let script = format!("{TRY}{script}");
    let out = ok(&run_for(
        &mut rvisor_do(["--", "python3", "-c", &script]),
        60,
    ));
    assert_eq!(
        out,
        "slash 20\nflags 22\nfutimesat 0\nproc-self 30\ndevfd changed\nmode 0o640\n"
    );
}
