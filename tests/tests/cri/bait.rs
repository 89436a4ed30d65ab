//! Host resources a pod must not reach: joining "the sandbox's namespaces" by a host pid could
//! land a container in the host's own. A SysV shared memory segment in the host's IPC namespace
//! and a listener on the host's loopback, each holding a secret.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rvisor_tests::{compile_c_static, ok, run_for};

/// The static SysV shared memory helper (`shm create|read|remove KEY`), for the host and the
/// images alike.
pub fn shm_helper() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile_c_static("rvcri-shm", include_str!("shm.c")))
        .clone()
}

pub struct HostBait {
    pub secret: String,
    /// Key of the host's segment.
    pub shm_key: String,
    /// Port of the host's loopback listener.
    pub port: u16,
    stop: Arc<AtomicBool>,
    listener: Option<JoinHandle<()>>,
}

impl HostBait {
    pub fn set() -> Self {
        let pid = std::process::id();
        let secret = format!("host-secret-{pid}");
        // A key of this process's own, so parallel runs do not collide.
        let shm_key = format!("{:#x}", 0x5256_0000 | (pid & 0xffff));
        let _ = run_for(Command::new(shm_helper()).args(["remove", &shm_key]), 30);
        ok(&run_for(
            Command::new(shm_helper()).args(["create", &shm_key, &secret]),
            30,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, secret2) = (stop.clone(), secret.clone());
        let listener = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.write_all(format!("{secret2}\n").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        let bait = HostBait {
            secret,
            shm_key,
            port,
            stop,
            listener: Some(listener),
        };
        // Both are reachable from the host, so a pod failing to reach them means something.
        let read = ok(&run_for(
            Command::new(shm_helper()).args(["read", &bait.shm_key]),
            30,
        ));
        assert_eq!(read.trim(), bait.secret);
        let mut got = String::new();
        std::net::TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut c| c.read_to_string(&mut got))
            .unwrap();
        assert_eq!(got.trim(), bait.secret);
        bait
    }
}

impl Drop for HostBait {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.listener.take() {
            let _ = t.join();
        }
        super::node::quietly(Command::new(shm_helper()).args(["remove", &self.shm_key]));
    }
}
