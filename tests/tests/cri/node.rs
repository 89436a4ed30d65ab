//! A Kubernetes node without the kubelet: a private containerd whose CRI plugin has the
//! handlers `runc` and `rvisor`, CNI on a private bridge, and busybox images imported under the
//! names the pods use, all under one scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rvisor_tests::{ok, run_for, rvisor, scratch};

use super::client::Cri;
use super::image;

/// Where Debian's containernetworking-plugins puts the plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The runc v2 shim's default state root for the `k8s.io` namespace (the runc handler's).
pub const RUNC_ROOT: &str = "/run/containerd/runc/k8s.io";
pub const PAUSE_IMAGE: &str = "localhost/rvisor-pause:1";
pub const APP_IMAGE: &str = "localhost/rvisor-busybox:1";

pub struct Node {
    pub dir: PathBuf,
    pub sock: PathBuf,
    /// The rvisor handler's `--root`: the shim's `Root` option (ours, not runc's) plus the
    /// namespace, as the shim passes it.
    pub rvisor_root: PathBuf,
    /// The cgroup (cgroupfs syntax) the pods' cgroup parents live under.
    pub cgroup_root: String,
    bridge: String,
    daemon: Child,
    pub cri: Cri,
}

/// Fails unless `tool` is on PATH, naming the Debian package that has it.
fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is required: apt-get install {package}");
}

impl Node {
    /// Starts containerd for the `index`th test of this binary (each gets its own bridge and
    /// subnet), imports the images and waits for CRI to report the runtime and network ready.
    pub fn start(name: &str, index: u8) -> Self {
        for (tool, package) in [
            ("containerd", "containerd"),
            ("ctr", "containerd"),
            ("containerd-shim-runc-v2", "containerd"),
            ("runc", "runc"),
            ("umoci", "umoci"),
            ("gcc", "gcc"),
            ("ip", "iproute2"),
            ("tar", "tar"),
        ] {
            need(tool, package);
        }
        for plugin in ["bridge", "host-local", "loopback"] {
            assert!(
                Path::new(CNI_BIN_DIR).join(plugin).exists(),
                "{CNI_BIN_DIR}/{plugin} is required: apt-get install containernetworking-plugins"
            );
        }
        let dir = scratch(&format!("cri-{name}"));
        let sock = dir.join("c.sock");
        let rvisor_root = dir.join("rvisor-root/k8s.io");
        let pid = std::process::id();
        // Interface names are at most 15 bytes.
        let bridge = format!("rvcri{}x{index}", pid % 1_000_000);
        let cgroup_root = format!("/rvcri-{pid}-{index}");
        let net_d = dir.join("net.d");
        std::fs::create_dir_all(&net_d).unwrap();
        // No gateway and no masquerading: the pods talk only to themselves, and the bridge plugin
        // then needs no iptables.
        std::fs::write(
            net_d.join("10-rvcri.conflist"),
            format!(
                r#"{{
  "cniVersion": "1.0.0",
  "name": "rvcri-{pid}-{index}",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{bridge}",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{ "subnet": "10.88.{subnet}.0/24" }}]],
        "dataDir": "{ipam}"
      }}
    }},
    {{ "type": "loopback" }}
  ]
}}
"#,
                subnet = 77 + index,
                ipam = dir.join("ipam").display(),
            ),
        )
        .unwrap();
        let config = dir.join("config.toml");
        std::fs::write(&config, config_toml(&dir, &sock, &net_d, &rvisor_root)).unwrap();
        // Everything that can fail comes before the daemon starts: from then on Drop stops it.
        let cri = Cri::connect(&sock);
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let mut daemon = Command::new("containerd");
        daemon
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // If the test dies without unwinding (killed, aborted), containerd goes with it (its
        // shims and pods do not: the next run's names do not collide with them).
        let hook = || {
            // SAFETY: prctl takes integers; it is async-signal-safe.
            match unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        };
        // SAFETY: between fork and exec the hook only calls prctl.
        unsafe { std::os::unix::process::CommandExt::pre_exec(&mut daemon, hook) };
        let daemon = daemon.spawn().unwrap();
        let node = Node {
            dir,
            sock,
            rvisor_root,
            cgroup_root,
            bridge,
            daemon,
            cri,
        };
        node.wait_ready();
        image::build_and_import(&node);
        node
    }

    /// containerd's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = match self.cri.status() {
                Ok(s) => {
                    let conditions = s.status.map(|s| s.conditions).unwrap_or_default();
                    if conditions.len() >= 2 && conditions.iter().all(|c| c.status) {
                        return;
                    }
                    format!("{conditions:?}")
                }
                Err(e) => e,
            };
            let log = self.log();
            // A configuration error shows at start: no use waiting for it.
            assert!(
                !log.contains("failed to load plugin io.containerd.grpc.v1.cri"),
                "containerd's CRI plugin did not load:\n{log}"
            );
            assert!(
                Instant::now() < deadline,
                "containerd's CRI plugin never became ready: {last}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ctr -a SOCK -n k8s.io ARGS`, which must succeed.
    pub fn ctr(&self, args: &[&str]) -> String {
        ok(&run_for(
            Command::new("ctr")
                .arg("-a")
                .arg(&self.sock)
                .args(["-n", "k8s.io"])
                .args(args),
            120,
        ))
    }

    /// Best effort, for a test that failed half-way: what CRI still knows goes through CRI, what
    /// the runtimes still hold is force-deleted, stray shims are killed.
    fn clean_up_pods(&self) {
        // Whatever hangs now has had its chance to fail the test.
        self.cri.set_deadline(Duration::from_secs(15));
        for pod in self.cri.list_pods().unwrap_or_default() {
            let netns = self.cri.netns_path(&pod.id);
            let _ = self.cri.stop_pod(&pod.id);
            let _ = self.cri.remove_pod(&pod.id);
            // A pod that would not stop keeps its network namespace mounted.
            if let Some(netns) = netns.filter(|n| Path::new(n).exists()) {
                quietly(Command::new("umount").arg(&netns));
                let _ = std::fs::remove_file(netns);
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The scratch directory goes: keep containerd's log, whose tail the failure shows.
            let kept = self.dir.with_extension("containerd.log");
            let _ = std::fs::copy(self.dir.join("containerd.log"), &kept);
            eprintln!("cri: containerd's log is kept in {}", kept.display());
        }
        self.clean_up_pods();
        // SAFETY: kill takes integers; the daemon is our child, not yet reaped.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Containers a failed test left: force-delete them from our runtimes' roots (the runc
        // root is shared with any other containerd: only ids our daemon's state knows).
        let task_dir = self.dir.join("state/io.containerd.runtime.v2.task/k8s.io");
        let ours: Vec<String> = std::fs::read_dir(&task_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for id in &ours {
            quietly(Command::new("runc").args(["--root", RUNC_ROOT, "delete", "--force", id]));
            quietly(
                Command::new(rvisor())
                    .arg("--root")
                    .arg(&self.rvisor_root)
                    .args(["delete", "--force", id]),
            );
        }
        // Shims name our socket on their command line.
        for pid in super::leftovers::processes_mentioning(&[&self.sock.display().to_string()]) {
            // SAFETY: kill takes integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        quietly(Command::new("sh").arg("-c").arg(format!(
            "grep -o ' {0}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l",
            self.dir.display()
        )));
        let _ = std::fs::remove_dir_all(&self.dir);
        quietly(Command::new("ip").args(["link", "del", &self.bridge]));
        // The pods' parent cgroups are the kubelet's to remove, and here we are the kubelet.
        super::leftovers::remove_cgroup_tree(&self.cgroup_root);
    }
}

/// Runs a clean-up command for at most 30 s, ignoring how it ends: Drop must not panic (a panic
/// while unwinding aborts, and then nothing is cleaned).
pub fn quietly(cmd: &mut Command) {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn config_toml(dir: &Path, sock: &Path, net_d: &Path, rvisor_root: &Path) -> String {
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    format!(
        r#"version = 2
root = "{dir}/root"
state = "{dir}/state"
# Nothing this node uses: other snapshotters, tracing, /opt (the v1 runtime must stay: the
# tasks service, and so CRI, need it in 1.6).
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{sock}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # As root without CAP_SYS_RESOURCE (this machine) even runc fails to lower the score.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{net_d}"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.rvisor]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.rvisor.options]
  BinaryName = "{bin}"
  Root = "{shim_root}"
"#,
        dir = dir.display(),
        sock = sock.display(),
        net_d = net_d.display(),
        bin = rvisor().display(),
        shim_root = rvisor_root.parent().unwrap().display(),
    )
}
