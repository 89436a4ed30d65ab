//! One pod as the kubelet runs it: the sandbox, a server and a client container, then the checks
//! of what they share, what they must not reach, their status and logs, and their removal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1::*;

use super::bait::HostBait;
use super::client::image_spec;
use super::leftovers;
use super::node::{Node, APP_IMAGE, RUNC_ROOT};

/// The key of the SysV shared memory segment one container makes and the other reads.
const SHM_KEY: &str = "0x52564352";

pub struct Pod<'a> {
    node: &'a Node,
    handler: String,
    pid: NamespaceMode,
    /// Text on the pod's own command lines (and in its names).
    marker: String,
    hostname: String,
    logs: PathBuf,
    cgroup_parent: String,
    config: PodSandboxConfig,
    namespaces: NamespaceOption,
    sandbox: String,
    server: String,
    client: String,
    /// Every container made in the pod.
    containers: Vec<String>,
    /// From RunPodSandbox to the client's first answer from the server.
    pub ready: Duration,
}

/// What a CRI call must do, or the test fails with containerd's word and log.
pub fn must<T>(node: &Node, what: &str, r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| {
        let log = node.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{what}: {e}\n--- containerd log (tail) ---\n{}",
            tail.join("\n")
        )
    })
}

impl<'a> Pod<'a> {
    /// Runs the pod (`pid`: one PID namespace for the pod, or one per container) and its server
    /// and client, and waits until the client gets an answer from the server on localhost.
    pub fn start(node: &'a Node, handler: &str, n: usize, pid: NamespaceMode) -> Self {
        let marker = format!("rvcri-{}-{handler}-{n}", std::process::id());
        let namespaces = NamespaceOption {
            network: NamespaceMode::Pod.into(),
            pid: pid.into(),
            ipc: NamespaceMode::Pod.into(),
            ..Default::default()
        };
        let hostname = format!("pod{n}-{handler}");
        let logs = node.dir.join("logs").join(&marker);
        let cgroup_parent = format!("{}/{marker}", node.cgroup_root);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: marker.clone(),
                uid: format!("uid-{marker}"),
                namespace: "rvcri".into(),
                attempt: 0,
            }),
            hostname: hostname.clone(),
            log_directory: logs.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let start = Instant::now();
        let sandbox = must(
            node,
            &format!("RunPodSandbox ({handler})"),
            node.cri.run_pod(&config, handler),
        );
        let mut pod = Pod {
            node,
            handler: handler.into(),
            pid,
            hostname,
            logs,
            cgroup_parent,
            config,
            namespaces,
            sandbox,
            server: String::new(),
            client: String::new(),
            containers: Vec::new(),
            ready: Duration::ZERO,
            marker,
        };
        // The marker keeps each script on its shell's command line, for the leftover check.
        let marker = pod.marker.clone();
        pod.server = pod.run_container(
            "server",
            format!(": {marker}; echo server-up; nc -ll -p 8080 -e echo hi; :"),
        );
        pod.client = pod.run_container("client", format!(": {marker}; while :; do sleep 1; done"));
        // Ready: the client reaches the server on the pod's localhost (shared network).
        pod.poll("the client to reach the server on localhost:8080", || {
            let r = node
                .cri
                .exec_sync(&pod.client, &["nc", "127.0.0.1", "8080"], 10)?;
            match r.stdout == b"hi\n" {
                true => Ok(()),
                false => Err(format!("{r:?}")),
            }
        });
        pod.ready = start.elapsed();
        pod
    }

    /// Creates and starts a container running `sh -c script`; returns its id.
    fn run_container(&mut self, name: &str, script: String) -> String {
        // The kubelet hands each container the pod's namespace options again.
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(image_spec(APP_IMAGE)),
            command: vec!["/bin/sh".into(), "-c".into(), script],
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(self.namespaces.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (node, handler) = (self.node, &self.handler);
        let id = must(
            node,
            &format!("CreateContainer {name} ({handler})"),
            node.cri
                .create_container(&self.sandbox, config, &self.config),
        );
        self.containers.push(id.clone());
        must(
            node,
            &format!("StartContainer {name} ({handler})"),
            node.cri.start_container(&id),
        );
        id
    }

    /// ExecSync that must exit 0; returns stdout.
    fn exec(&self, id: &str, cmd: &[&str]) -> String {
        let r = must(
            self.node,
            &format!("ExecSync {cmd:?}"),
            self.node.cri.exec_sync(id, cmd, 30),
        );
        assert_eq!(
            r.exit_code,
            0,
            "{cmd:?} in {id}: {}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        String::from_utf8_lossy(&r.stdout).into_owned()
    }

    /// Polls `f` until it succeeds; after 60 s fails with its last error and containerd's log.
    fn poll(&self, what: &str, mut f: impl FnMut() -> Result<(), String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match f() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    must(self.node, &format!("waiting for {what}"), Err::<(), _>(e))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// UTS and IPC are the pod's; PID too when the pod shares one, else each container's own.
    pub fn check_shared_namespaces(&self) {
        let (server, client) = (&self.server, &self.client);
        for id in [server, client] {
            let name = self.exec(id, &["hostname"]);
            assert_eq!(name.trim(), self.hostname, "hostname in {id}");
        }

        let text = format!("shared-by-{}", self.marker);
        self.exec(server, &["/bin/shm", "create", SHM_KEY, &text]);
        assert_eq!(
            self.exec(client, &["/bin/shm", "read", SHM_KEY]).trim(),
            text
        );

        // Each sees the other's processes and the pause process only in the pod's namespace;
        // never the host's.
        let client_ps = self.exec(client, &["ps", "-o", "pid,args"]);
        let server_ps = self.exec(server, &["ps", "-o", "pid,args"]);
        for ps in [&client_ps, &server_ps] {
            assert!(
                !ps.contains("containerd"),
                "a host process is visible:\n{ps}"
            );
        }
        let (shared, pid) = (self.pid == NamespaceMode::Pod, self.pid);
        assert_eq!(
            client_ps.contains("nc -ll -p 8080"),
            shared,
            "the server in the client's ps ({pid:?}):\n{client_ps}"
        );
        assert_eq!(
            server_ps.contains("while :"),
            shared,
            "the client in the server's ps ({pid:?}):\n{server_ps}"
        );
        assert_eq!(
            client_ps.contains("sleep inf"),
            shared,
            "the pause process in the client's ps ({pid:?}):\n{client_ps}"
        );
    }

    /// Neither container reaches the host's IPC namespace or the host's loopback.
    pub fn check_host_out_of_reach(&self, bait: &HostBait) {
        let port = bait.port.to_string();
        for id in [&self.server, &self.client] {
            for cmd in [
                &["/bin/shm", "read", &bait.shm_key][..],
                &["nc", "127.0.0.1", &port][..],
            ] {
                let r = must(
                    self.node,
                    &format!("ExecSync {cmd:?}"),
                    self.node.cri.exec_sync(id, cmd, 30),
                );
                let out = String::from_utf8_lossy(&r.stdout);
                assert!(
                    r.exit_code != 0 && !out.contains(&bait.secret),
                    "{cmd:?} in {id} reached the host's: exit {}, {out}",
                    r.exit_code
                );
            }
        }
    }

    /// Leaves a SysV segment holding this pod's marker under `key` in its IPC namespace.
    pub fn plant_segment(&self, key: &str) {
        let text = format!("segment-of-{}", self.marker);
        self.exec(&self.server, &["/bin/shm", "create", key, &text]);
    }

    /// Neither container reaches the other pod's IPC namespace (its segment under `key`) or
    /// sees its processes.
    pub fn check_neighbour_out_of_reach(&self, neighbour: &Pod, key: &str) {
        for id in [&self.server, &self.client] {
            let cmd = ["/bin/shm", "read", key];
            let r = must(
                self.node,
                &format!("ExecSync {cmd:?}"),
                self.node.cri.exec_sync(id, &cmd, 30),
            );
            let out = String::from_utf8_lossy(&r.stdout);
            assert!(
                r.exit_code != 0 && !out.contains(&neighbour.marker),
                "{cmd:?} in {id} reached the other pod's: exit {}, {out}",
                r.exit_code
            );
            let ps = self.exec(id, &["ps", "-o", "pid,args"]);
            assert!(
                !ps.contains(&neighbour.marker),
                "the other pod's processes are visible in {id}:\n{ps}"
            );
        }
    }

    /// A running container's status; one that exits 3 (its status, exit code and log path);
    /// both logs, in the CRI format, where the pod config put them.
    pub fn check_status_and_logs(&mut self) {
        let node = self.node;
        let status = must(
            node,
            "ContainerStatus server",
            node.cri.container_status(&self.server),
        );
        assert_eq!(
            status.state(),
            ContainerState::ContainerRunning,
            "{status:?}"
        );

        let quitter =
            self.run_container("quitter", format!("echo bye-{} >&2; exit 3", self.marker));
        let mut status = None;
        rvisor_tests::wait_until("the quitter to exit", || {
            let s = must(
                node,
                "ContainerStatus quitter",
                node.cri.container_status(&quitter),
            );
            let done = s.state() == ContainerState::ContainerExited;
            status = Some(s);
            done
        });
        let status = status.unwrap();
        assert_eq!(status.exit_code, 3, "{status:?}");
        let log = self.logs.join("quitter.log");
        assert_eq!(Path::new(&status.log_path), log, "{status:?}");

        wait_for_log(&self.logs.join("server.log"), "stdout", "server-up");
        wait_for_log(&log, "stderr", &format!("bye-{}", self.marker));
    }

    /// Stops and removes the pod and returns how long that took; nothing of it may stay on the
    /// host. First checks that what the check looks for is there while the pod runs, so it
    /// looks in the right places.
    pub fn remove_and_check_nothing_left(self) -> Duration {
        let node = self.node;
        let netns = node.cri.netns_path(&self.sandbox);
        let traces = leftovers::Pod {
            marker: &self.marker,
            sandbox: &self.sandbox,
            containers: &self.containers,
            cgroup_parent: &self.cgroup_parent,
            netns: netns.as_deref(),
        };
        let runtime_root = match self.handler.as_str() {
            "runc" => Path::new(RUNC_ROOT),
            _ => &node.rvisor_root,
        };
        leftovers::assert_present(
            &traces,
            &[&self.sandbox, &self.server, &self.client],
            &node.dir,
            runtime_root,
        );

        let start = Instant::now();
        must(node, "StopPodSandbox", node.cri.stop_pod(&self.sandbox));
        must(node, "RemovePodSandbox", node.cri.remove_pod(&self.sandbox));
        let took = start.elapsed();
        leftovers::assert_none(
            &traces,
            &node.dir,
            &[Path::new(RUNC_ROOT), &node.rvisor_root],
        );
        // The pod's own cgroup is the kubelet's to remove.
        leftovers::remove_cgroup_tree(&self.cgroup_parent);
        took
    }
}

/// Waits for a CRI log line `<RFC 3339 time> <stream> F <text>` (F: a full line, not a part).
fn wait_for_log(path: &Path, stream: &str, text: &str) {
    let is_entry = |line: &str| {
        let mut fields = line.splitn(4, ' ');
        let time = fields.next().unwrap_or_default();
        time.len() > 20
            && time.as_bytes()[10] == b'T'
            && time[..4].bytes().all(|b| b.is_ascii_digit())
            && fields.next() == Some(stream)
            && fields.next() == Some("F")
            && fields.next() == Some(text)
    };
    let what = format!("{stream} {text:?} in {}", path.display());
    rvisor_tests::wait_until(&what, || {
        std::fs::read_to_string(path).is_ok_and(|l| l.lines().any(is_entry))
    });
}
