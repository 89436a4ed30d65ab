//! The private dockerd the docker tests share: started on first use under a scratch directory
//! (its own containerd, data root, exec root, socket and cgroup parent; no bridge, no iptables),
//! with an image imported from busybox-static files, so nothing comes from a registry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rvisor_tests::{ok, run_for, rvisor, scratch};

use super::leftovers;

pub const IMAGE: &str = "rvisor-test/busybox:latest";

/// Length of the exec root: past 60 bytes (Docker's default state paths are that long), within
/// the 104 bytes less `/containerd/containerd-debug.sock` that dockerd's containerd allows.
const EXEC_ROOT_LEN: usize = 70;

/// The shared daemon.
pub struct Dockerd {
    /// Scratch directory holding everything of the daemon.
    pub dir: PathBuf,
    /// Its API socket.
    pub sock: PathBuf,
    exec_root: PathBuf,
    /// Where containers' cgroups go (`--cgroup-parent`).
    pub cgroup_parent: String,
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is required: scripts/test installs it (apt-get install docker.io)"
    );
}

/// The shared daemon, started by the first test that needs it. If that fails, every test fails
/// with the same message (no second daemon is tried).
pub fn daemon() -> &'static Dockerd {
    static DAEMON: OnceLock<Result<Dockerd, String>> = OnceLock::new();
    let started = DAEMON.get_or_init(|| {
        std::panic::catch_unwind(Dockerd::start).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match started {
        Ok(d) => d,
        Err(e) => panic!("the test's dockerd could not be set up: {e}"),
    }
}

impl Dockerd {
    fn start() -> Self {
        // The CLI may be installed without the daemon (docker's own CLI in /usr/local/bin).
        need("dockerd");
        need("docker");
        leftovers::remove_stale_runs();
        let dir = scratch("docker");
        let mut exec_root = dir.join("exec-root-");
        let pad = EXEC_ROOT_LEN.saturating_sub(exec_root.as_os_str().len());
        exec_root.as_mut_os_string().push("x".repeat(pad));
        assert!(
            exec_root.as_os_str().len() > 60,
            "{}: the scratch directory is too short to make a long exec root",
            exec_root.display()
        );
        let sock = dir.join("docker.sock");
        let cgroup_parent = format!("/rvisor-docker-test-{}", std::process::id());
        let config = daemon_json(&dir, &exec_root, &sock, &cgroup_parent);
        std::fs::write(dir.join("daemon.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let mut child = Command::new("dockerd")
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .current_dir("/")
            .spawn()
            .expect("spawn dockerd");
        leftovers::clean_up_at_exit(&dir, &cgroup_parent, child.id());
        let d = Dockerd {
            dir,
            sock,
            exec_root,
            cgroup_parent,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !d
            .cmd(&["version"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            if let Some(status) = child.try_wait().unwrap() {
                leftovers::reaped(&d.dir);
                panic!("dockerd exited ({status}):\n{}", d.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 90 s:\n{}",
                d.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The teardown stops and reaps it by pid.
        drop(child);
        d.import_busybox();
        d
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `docker --host unix://SOCK <args>` (its own CLI config directory: nothing of the caller's).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_CONFIG", self.dir.join("cli"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .arg("--host")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .current_dir("/");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_for(&mut self.cmd(args), 180)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.run(args))
    }

    /// `docker <args>` with `input` on its stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        wait_output(child, 180)
    }

    /// One field of `docker inspect`.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    /// A tar of a directory holding busybox-static and a link per applet, imported as IMAGE.
    fn import_busybox(&self) {
        let rootfs = self.dir.join("image");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static must be installed (scripts/test installs it)");
        std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        let list = ok(&run_for(Command::new(busybox).arg("--list"), 30));
        for applet in list.lines().filter(|a| *a != "busybox") {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let tar = self.dir.join("image.tar");
        ok(&run_for(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
            120,
        ));
        self.ok(&["import", &tar.display().to_string(), IMAGE]);
    }

    /// The runtime's state directory of a container.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        // Docker 20.10 gives every runtime containerd's runc state root.
        self.exec_root.join("runtime-runc/moby").join(id)
    }

    /// The container's cgroup directories (v1 hierarchies, or a pure v2 one).
    pub fn cgroups_of(&self, id: &str) -> Vec<PathBuf> {
        leftovers::cgroup_dirs(&self.cgroup_parent)
            .into_iter()
            .map(|p| p.join(id))
            .collect()
    }
}

/// The daemon's configuration: what README shows.
fn daemon_json(
    dir: &Path,
    exec_root: &Path,
    sock: &Path,
    cgroup_parent: &str,
) -> serde_json::Value {
    let mut runtimes = serde_json::json!({
        "rvisor": { "path": rvisor() },
    });
    // gVisor's runsc, for the start-up comparison: it refuses the host's network namespace.
    if let Some(runsc) = which("runsc") {
        runtimes["runsc"] = serde_json::json!({
            "path": runsc,
            "runtimeArgs": ["--network=none"],
        });
    }
    serde_json::json!({
        "data-root": dir.join("data"),
        "exec-root": exec_root,
        "pidfile": dir.join("dockerd.pid"),
        "hosts": [format!("unix://{}", sock.display())],
        "cgroup-parent": cgroup_parent,
        "bridge": "none",
        "iptables": false,
        "ip6tables": false,
        "runtimes": runtimes,
    })
}

pub fn which(tool: &str) -> Option<String> {
    let o = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn wait_output(mut child: std::process::Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("docker did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
