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
