//! Reopening through `/proc/self/fd/N` and changing an object through its fd link: a descriptor
//! handed in from outside grants what it grants, not what its inode would; a file of the tree
//! reopens as Linux allows; and a directory fd of the guest's read-only view (a native
//! O_DIRECTORY open) still lets tar and Python change modes through `/proc/self/fd`.

use std::process::Stdio;

use super::prelude::*;

#[test]
fn a_read_only_stdin_stays_read_only() {
    let dir = scratch(&format!("reopen-stdin-{}", crate::PLATFORM));
    let file = dir.join("ro.txt");
    std::fs::write(&file, "original\n").unwrap();
    set_mode(&file, 0o444);
    let mut cmd = rvisor_do([
        "--",
        "sh",
        "-c",
        "stat -L -c %s /dev/stdin; for p in /proc/self/fd/0 /proc/thread-self/fd/0 /dev/stdin \
         /dev/fd/0; do (echo PWNED > $p) 2>/dev/null; echo rc=$?; done",
    ]);
    // (run_for makes stdin /dev/null: the file replaces it in the child.)
    leave_open(
        &mut cmd,
        vec![(0, std::fs::File::open(&file).unwrap().into())],
    );
    let o = run_for(&mut cmd, 60);
    // The guest really had the file as stdin, and every reopen failed.
    assert!(stdout(&o).starts_with("9\n"), "{o:?}");
    assert_eq!(stdout(&o).matches("rc=0").count(), 0, "{o:?}");
    assert_eq!(stdout(&o).matches("rc=").count(), 4, "{o:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
}

/// Runs `script` in the sandbox with `fd` handed in as fd 3 (`--preserve-fds 1`).
fn with_fd3(fd: std::os::fd::OwnedFd, script: &str) -> std::process::Output {
    let mut cmd = rvisor_do(["--preserve-fds", "1", "--", "sh", "-c", script]);
    leave_open(&mut cmd, vec![(3, fd)]);
    run_for(&mut cmd, 60)
}

/// A log of the caller's, "earlier line" in it, opened append-only: its path and the fd.
fn append_only_log(name: &str) -> (std::path::PathBuf, std::os::fd::OwnedFd) {
    let dir = scratch(&format!("{name}-{}", crate::PLATFORM));
    let file = dir.join("wo.log");
    std::fs::write(&file, "earlier line\n").unwrap();
    set_mode(&file, 0o600);
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    (file, log.into())
}

#[test]
fn an_append_only_fd_handed_in_cannot_be_read_back() {
    let (_, log) = append_only_log("reopen-append");
    let o = with_fd3(log, "cat /proc/self/fd/3; echo rc=$?");
    assert!(!stdout(&o).contains("earlier line"), "{o:?}");
    assert!(stdout(&o).contains("rc=1"), "{o:?}");
}

#[test]
fn a_file_of_the_tree_reopens_wider_as_linux_allows() {
    let dir = scratch(&format!("reopen-tree-{}", crate::PLATFORM));
    std::fs::write(dir.join("f"), "hello\n").unwrap();
    let volume = format!("{}:/w", dir.display());
    let out = ok(&run_for(
        &mut rvisor_do([
            "-v",
            &volume,
            "--",
            "sh",
            "-c",
            "exec 3</w/f; echo more >> /proc/self/fd/3 && cat /w/f",
        ]),
        60,
    ));
    assert_eq!(out, "hello\nmore\n");
}

#[test]
fn tar_restores_directory_modes_and_python_chmods_without_following() {
    let out = ok(&sh(
        "cd /tmp && mkdir -p a/b && chmod 750 a/b && tar cf t.tar a && mkdir x && \
         tar xf t.tar -C x && stat -c %a x/a/b && touch f && \
         python3 -c \"import os; os.chmod('f', 0o600, follow_symlinks=False); \
         print(oct(os.stat('f').st_mode & 0o777))\"",
    ));
    assert_eq!(out, "750\n0o600\n");
}

/// A directory of the host's that the sandbox cannot see by path (its /tmp is its own).
fn hidden_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(format!(
        "/tmp/rvisor-hidden-{name}-{}-{}",
        crate::PLATFORM,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every way a guest can spell a reopen of its own fd 1 for reading (the `5<` redirection opens
/// it in the shell that runs the reader, before its stdout moves to the captured stderr).
const READ_BACK_FD1: &str = "ln -s /proc/self/fd/1 /tmp/link; \
     for p in /proc/self/fd/1 /proc/thread-self/fd/1 /dev/stdout /dev/fd/1 /tmp/link /proc/$$/fd/1; do \
     timeout 2 cat /dev/fd/5 5<$p >&2 2>/dev/null; echo \"$p rc=$?\" >&2; \
     timeout 2 python3 -c 'import os,sys; sys.stderr.write(os.read(os.open(sys.argv[1], os.O_RDONLY), 99).decode())' $p 2>/dev/null; \
     echo \"py $p rc=$?\" >&2; done; echo guest-output";

#[test]
fn a_write_only_stdout_file_cannot_be_read_back_by_any_link() {
    let dir = hidden_dir("stdout-file");
    let file = dir.join("secret.log");
    std::fs::write(&file, "EARLIER-SECRET\n").unwrap();
    set_mode(&file, 0o600);
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    let mut cmd = rvisor_do(["--", "sh", "-c", READ_BACK_FD1]);
    leave_open(&mut cmd, vec![(1, log.into())]);
    let o = run_for(&mut cmd, 120);
    let err = stderr(&o);
    assert!(!err.contains("EARLIER-SECRET"), "{err}");
    assert_eq!(err.matches(" rc=0").count(), 0, "{err}");
    assert_eq!(err.matches(" rc=").count(), 12, "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "EARLIER-SECRET\nguest-output\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fifo_handed_in_write_only_cannot_be_read_from() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = hidden_dir("fifo");
    let fifo = dir.join("f");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path and a mode.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(b"FIFO-SECRET\n").unwrap();
    let o = with_fd3(
        writer.into(),
        "for p in /proc/self/fd/3 /dev/fd/3; do timeout 2 cat $p; echo \"rc=$?\"; done",
    );
    assert!(!stdout(&o).contains("FIFO-SECRET"), "{o:?}");
    assert_eq!(stdout(&o).matches("rc=1").count(), 2, "{o:?}");
    let mut left = String::new();
    let _ = std::io::Read::read_to_string(&mut &reader, &mut left);
    assert_eq!(left, "FIFO-SECRET\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_output_pipe_carries_no_one_elses_data_to_the_guest() {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe fills the two-int array we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    // SAFETY: as above.
    let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
    // Another writer's data, waiting in the pipe the guest writes to.
    w.write_all(b"PIPE-SECRET\n").unwrap();
    let mut child = rvisor_do(["--", "sh", "-c", READ_BACK_FD1])
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    assert!(!err.contains("PIPE-SECRET"), "{err}");
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    assert_eq!(out, "PIPE-SECRET\nguest-output\n", "{err}");
}

/// The inode flags of the host file behind fd 0 (`lsattr`'s bits).
fn inode_flags(file: &std::fs::File) -> libc::c_long {
    use std::os::fd::AsRawFd;
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long into `flags`, which we own.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), 0x8008_6601, &mut flags) };
    assert_eq!(
        rc,
        0,
        "FS_IOC_GETFLAGS: {}",
        std::io::Error::last_os_error()
    );
    flags
}

#[test]
fn a_host_file_handed_in_read_only_keeps_its_inode_flags() {
    let dir = scratch(&format!("reopen-chattr-{}", crate::PLATFORM));
    let file = dir.join("in.txt");
    std::fs::write(&file, "data\n").unwrap();
    let before = inode_flags(&std::fs::File::open(&file).unwrap());
    // FS_NOATIME_FL | FS_SYNC_FL | FS_NODUMP_FL through FS_IOC_SETFLAGS, then a generation
    // number through FS_IOC_SETVERSION; the 32-bit forms are ENOTTY for a 64-bit caller, as
    // natively.
    let script = "import fcntl, struct\n\
        for cmd, val in ((0x40086602, 0x80 | 0x8 | 0x40), (0x40046602, 0x80), \
        (0x40087602, 12345), (0x40047602, 12345)):\n\
        \x20   try:\n\
        \x20       fcntl.ioctl(0, cmd, struct.pack('q', val)); print('changed')\n\
        \x20   except OSError as e:\n\
        \x20       print(e.errno)\n";
    let mut cmd = rvisor_do(["--", "python3", "-c", script]);
    leave_open(
        &mut cmd,
        vec![(0, std::fs::File::open(&file).unwrap().into())],
    );
    let o = run_for(&mut cmd, 60);
    assert_eq!(ok(&o), "1\n25\n1\n25\n", "{o:?}");
    assert_eq!(inode_flags(&std::fs::File::open(&file).unwrap()), before);
}

/// A file handed in from outside, in every way the guest's own kernel could be led to it: links
/// the guest would make in its own `/dev` and `/dev/shm` (where path calls run natively) to its
/// fd links (it can make none there now), its own fd links, and an open whose path a second
/// thread flips between `/dev/null` and the fd link after the sentry has read it. Reading works,
/// as the fd allows; writing, truncating and appending do not.
fn a_read_only_file_handed_in(extra: &[&str], rootless: bool) {
    let dir = scratch(&format!(
        "reopen-links-{}-{}{}",
        crate::PLATFORM,
        extra.len(),
        rootless
    ));
    let file = dir.join("ro.txt");
    std::fs::write(&file, "original\n").unwrap();
    // Writable by its mode: only the fd's access may stop the guest.
    set_mode(&file, 0o666);
    let flip = r#"
import ctypes, os, stat, threading
libc = ctypes.CDLL(None, use_errno=True)
a, b = b"/dev/null".ljust(24, b"\0"), b"/proc/self/fd/0".ljust(24, b"\0")
buf = ctypes.create_string_buffer(a, 24)
done = []
def flip():
    while not done:
        ctypes.memmove(buf, b, 24)
        ctypes.memmove(buf, a, 24)
t = threading.Thread(target=flip)
t.start()
wins = 0
for i in range(20000):
    fd = libc.open(buf, os.O_WRONLY | os.O_TRUNC)
    if fd >= 0:
        if not stat.S_ISCHR(os.fstat(fd).st_mode):
            os.write(fd, b"RACED\n")
            wins += 1
        os.close(fd)
done.append(1)
t.join()
print("raced", wins)
"#;
    let script = format!(
        "cat /dev/stdin; for l in /dev/shm/l /dev/l; do ln -s /proc/self/fd/0 $l 2>/dev/null; \
         echo ln=$?; done; for l in /dev/stdin /proc/self/fd/0; do \
         (echo PWNED > $l) 2>/dev/null; echo rc=$?; (echo PWNED >> $l) 2>/dev/null; echo rc=$?; \
         truncate -s 0 $l 2>/dev/null; echo rc=$?; done; python3 -c '{}'",
        flip.replace('\'', "'\\''")
    );
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--", "sh", "-c", &script]);
    let mut cmd = do_as(rootless, &args);
    leave_open(
        &mut cmd,
        vec![(0, std::fs::File::open(&file).unwrap().into())],
    );
    let o = run_for(&mut cmd, 180);
    let out = stdout(&o);
    // The guest had the file, read it through the link, and every write failed.
    assert!(out.starts_with("original\nln=1\nln=1\n"), "{o:?}");
    assert_eq!(out.matches("rc=").count(), 6, "{o:?}");
    assert_eq!(out.matches("rc=0").count(), 0, "{o:?}");
    assert!(out.contains("raced 0\n"), "{o:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
}

#[test]
fn links_in_the_guests_dev_reopen_a_file_handed_in_no_wider() {
    a_read_only_file_handed_in(&[], false);
}

#[test]
fn links_in_the_guests_dev_reopen_a_file_handed_in_no_wider_over_a_read_only_root() {
    a_read_only_file_handed_in(&["--overlay=none"], false);
}

#[test]
fn links_in_the_guests_dev_reopen_a_file_handed_in_no_wider_rootless() {
    a_read_only_file_handed_in(&[], true);
}

#[test]
fn a_write_only_log_handed_in_stays_unreadable_through_links_and_writable() {
    let (file, log) = append_only_log("reopen-log-links");
    let o = with_fd3(
        log,
        "(cat /dev/fd/3) 2>/dev/null; echo rc=$?; echo appended >> /dev/fd/3; echo rc=$?",
    );
    assert!(!stdout(&o).contains("earlier line"), "{o:?}");
    assert!(stdout(&o).starts_with("rc=1\nrc=0\n"), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "earlier line\nappended\n"
    );
}
