//! Unix sockets bound to paths in the sandbox tree (the gofer binds them), connect to them, and
//! behave as natively; abstract and inet binds are untouched.

use super::prelude::*;

const SCRIPT: &str = r#"
import os, socket
os.umask(0o027)
s = socket.socket(socket.AF_UNIX); s.bind("sock"); s.listen()
print("mode", oct(os.stat("sock").st_mode))
c = socket.socket(socket.AF_UNIX); c.connect("sock"); a, _ = s.accept(); c.send(b"hi"); print(a.recv(2))
try:
    socket.socket(socket.AF_UNIX).bind("sock")
except OSError as e: print("again:", e.errno)
try:
    socket.socket(socket.AF_UNIX).bind("missing/x")
except OSError as e: print("missing dir:", e.errno)
socket.socket(socket.AF_UNIX).bind("\0rvisor-test-abstract-%d" % os.getpid()); print("abstract ok")
t = socket.socket(); t.bind(("127.0.0.1", 0)); print("inet ok")
os.unlink("sock"); print(os.path.exists("sock"))
"#;

#[test]
fn unix_socket_paths_bind_through_the_gofer() {
    let dir = scratch("sockets-native");
    let native = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        native.status.success(),
        "{}",
        String::from_utf8_lossy(&native.stderr)
    );
    let o = run_for(
        &mut rvisor_do(["--cwd", "/tmp", "--", "python3", "-c", SCRIPT]),
        60,
    );
    assert_eq!(ok(&o), String::from_utf8_lossy(&native.stdout));
}

/// A Unix socket bound through the gofer keeps the address the guest gave, absolute or relative
/// (`getsockname`, a datagram's sender), so a reply to the sender arrives: the same as natively.
#[test]
fn bound_socket_addresses_are_the_guests_own() {
    let script = "import socket, os\nos.chdir('/tmp')\nfor p in ['/tmp/rv-abs.sock', 'rv-rel.sock']:\n    try: os.unlink(p)\n    except OSError: pass\na = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); a.bind('/tmp/rv-abs.sock')\nb = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); b.bind('rv-rel.sock')\nprint(a.getsockname(), b.getsockname())\nb.sendto(b'hi', '/tmp/rv-abs.sock'); data, frm = a.recvfrom(10); print(data, frm)\na.sendto(b'back', frm); print(b.recv(10))\nfor p in ['/tmp/rv-abs.sock', 'rv-rel.sock']: os.unlink(p)\n";
    let native = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    let inside = run_for(&mut rvisor_do(["python3", "-c", script]), 60);
    assert_eq!(ok(&inside), stdout(&native));
    assert!(
        stdout(&native).starts_with("/tmp/rv-abs.sock rv-rel.sock"),
        "{}",
        stdout(&native)
    );
}

/// The guest binds a socket in a read-write volume and closes it, leaving the path free; a host
/// daemon then starts there (unlink, bind). The gofer once recorded the guest's socket by its
/// inode number only, which the filesystem gave again to the daemon's socket: the guest then
/// connected to the host's daemon (every run, in a hostile review). It holds the inode now.
#[test]
fn a_host_socket_does_not_inherit_a_guest_sockets_inode_number() {
    use std::os::unix::net::UnixListener;
    let dir = scratch(&format!("socket-reuse-{}", crate::PLATFORM));
    set_mode(&dir, 0o777);
    let sock = dir.join("app.sock");
    let up = dir.join("daemon-up");
    let guest = r#"
import os, socket, time
s = socket.socket(socket.AF_UNIX); s.bind("/v/app.sock"); s.close()
print("guest", os.stat("/v/app.sock").st_ino, flush=True)
while not os.path.exists("/v/daemon-up"): time.sleep(0.01)
c = socket.socket(socket.AF_UNIX)
try:
    c.connect("/v/app.sock"); print("connected", os.stat("/v/app.sock").st_ino)
except OSError as e:
    print("refused", e.errno, os.stat("/v/app.sock").st_ino)
"#;
    let daemon = {
        let (sock, up) = (sock.clone(), up.clone());
        std::thread::spawn(move || {
            wait_until("the guest's socket", || sock.exists());
            std::thread::sleep(std::time::Duration::from_millis(100));
            let _ = std::fs::remove_file(&sock);
            let listener = UnixListener::bind(&sock).unwrap();
            set_mode(&sock, 0o666);
            listener.set_nonblocking(true).unwrap();
            std::fs::write(&up, "").unwrap();
            // Long enough for the guest's connect to have been answered either way.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if listener.accept().is_ok() {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            false
        })
    };
    let volume = format!("{}:/v", dir.display());
    let out = ok(&run_for(
        &mut rvisor_do(["-v", &volume, "--", "python3", "-c", guest]),
        60,
    ));
    let accepted = daemon.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!accepted, "the host daemon accepted the guest: {out}");
    assert!(out.contains("refused 111"), "{out}");
}

/// A guest process that dropped root: Linux checks write permission on a socket file as it,
/// and stamps its datagrams with its own pid and ids. The sentry, which makes these connects
/// and sends, once did both as itself (root, pid 0 in the guest's view): a uid-1000 process
/// reached root's 0700 sockets and passed for root with `SO_PASSCRED` (hostile review).
#[test]
fn unix_socket_permissions_and_credentials_are_the_callers() {
    let script = r#"
import os, socket, struct
os.makedirs("/tmp/d", exist_ok=True)
stream = socket.socket(socket.AF_UNIX); stream.bind("/tmp/priv.sock"); stream.listen()
os.chmod("/tmp/priv.sock", 0o700)
os.mkdir("/tmp/d/closed", 0o755)
dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); dgram.bind("/tmp/d/closed/in.sock")
os.chmod("/tmp/d/closed/in.sock", 0o700)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
os.setresgid(1000, 1000, 1000); os.setresuid(1000, 1000, 1000)
for what, f in (
    ("connect", lambda: socket.socket(socket.AF_UNIX).connect("/tmp/priv.sock")),
    ("sendto", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", "/tmp/d/closed/in.sock")),
):
    try:
        f(); print(what, "ok")
    except OSError as e:
        print(what, e.errno)
a.sendmsg([b"x"])
_, anc, _, _ = b.recvmsg(1, socket.CMSG_SPACE(12))
pid, uid, gid = struct.unpack("iII", anc[0][2])
print("creds", pid == os.getpid(), uid, gid)
"#;
    let out = ok(&run_for(
        &mut rvisor_do(["--", "python3", "-c", script]),
        60,
    ));
    assert_eq!(out, "connect 13\nsendto 13\ncreds True 1000 1000\n");
}
