//! Kubernetes pods through containerd's CRI plugin, as the kubelet drives them: one pod sandbox
//! (the pause container) and app containers that join its network, IPC and UTS namespaces (and
//! its PID namespace when the pod shares one), per runtime handler. The `runc` handler proves the
//! harness; the `rvisor` handler is the runtime under test.

#[path = "cri/bait.rs"]
mod bait;
#[path = "cri/client.rs"]
mod client;
#[path = "cri/image.rs"]
mod image;
#[path = "cri/leftovers.rs"]
mod leftovers;
#[path = "cri/node.rs"]
mod node;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bait::HostBait;
use client::image_spec;
use k8s_cri::v1::*;
use node::{Node, APP_IMAGE, RUNC_ROOT};

/// Pods per handler; the start-to-ready median is taken over them.
const PODS: usize = 5;
/// The key of the SysV shared memory segment one container makes and the other reads.
const SHM_KEY: &str = "0x52564352";

/// One test at a time: the figures are measured on an otherwise idle 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn pod_on_runc() {
    pods_on("runc", 0);
}

#[test]
fn pod_on_rvisor() {
    pods_on("rvisor", 1);
}

fn pods_on(handler: &str, index: u8) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bait = HostBait::set();
    let node = Node::start(handler, index);
    let mut ready = Vec::new();
    for n in 0..PODS {
        // Both kinds of pod: one PID namespace for the pod (shareProcessNamespace) or one per
        // container (Kubernetes' default).
        let pid = if n % 2 == 0 {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Container
        };
        ready.push(pod(&node, &bait, handler, n, pid));
    }
    // Every image was there by name: CRI never tried a registry.
    let log = node.log();
    assert!(!log.contains("PullImage"), "CRI pulled an image:\n{log}");
    ready.sort();
    let ms: Vec<u128> = ready.iter().map(Duration::as_millis).collect();
    println!(
        "cri: {handler}: pod start-to-ready median {} ms over {PODS} pods (all: {ms:?} ms)",
        ms[ms.len() / 2]
    );
}

/// What a CRI call must do, or the test fails with containerd's word and log.
fn must<T>(node: &Node, what: &str, r: Result<T, String>) -> T {
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

/// Runs one pod through its life and checks it; returns how long it took from RunPodSandbox to
/// the first answer of the server through the client.
fn pod(node: &Node, bait: &HostBait, handler: &str, n: usize, pid: NamespaceMode) -> Duration {
    let cri = &node.cri;
    let marker = format!("rvcri-{}-{handler}-{n}", std::process::id());
    let hostname = format!("pod{n}-{handler}");
    let logs = node.dir.join("logs").join(&marker);
    let cgroup_parent = format!("{}/{marker}", node.cgroup_root);
    let namespaces = NamespaceOption {
        network: NamespaceMode::Pod.into(),
        pid: pid.into(),
        ipc: NamespaceMode::Pod.into(),
        ..Default::default()
    };
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
    // The kubelet hands each container the pod's namespace options again.
    let container = |name: &str, script: String| ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(image_spec(APP_IMAGE)),
        command: vec!["/bin/sh".into(), "-c".into(), script],
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    // The marker in each script keeps it on the shell's command line, for the leftover check.
    let server_script = format!(": {marker}; echo server-up; nc -ll -p 8080 -e echo hi; :");
    let client_script = format!(": {marker}; while :; do sleep 1; done");

    let start = Instant::now();
    let sandbox = must(
        node,
        &format!("RunPodSandbox ({handler})"),
        cri.run_pod(&config, handler),
    );
    let mut ids = Vec::new();
    for (name, script) in [("server", server_script), ("client", client_script)] {
        let id = must(
            node,
            &format!("CreateContainer {name} ({handler})"),
            cri.create_container(&sandbox, container(name, script), &config),
        );
        must(
            node,
            &format!("StartContainer {name} ({handler})"),
            cri.start_container(&id),
        );
        ids.push(id);
    }
    let (server, client) = (ids[0].clone(), ids[1].clone());
    // Ready: the client reaches the server on the pod's localhost (shared network namespace).
    poll(
        node,
        "the client to reach the server on localhost:8080",
        || {
            let r = cri.exec_sync(&client, &["nc", "127.0.0.1", "8080"], 10)?;
            match r.stdout == b"hi\n" {
                true => Ok(()),
                false => Err(format!("{r:?}")),
            }
        },
    );
    let ready = start.elapsed();

    let exec = |id: &str, cmd: &[&str]| -> String {
        let r = must(
            node,
            &format!("ExecSync {cmd:?}"),
            cri.exec_sync(id, cmd, 30),
        );
        assert_eq!(
            r.exit_code,
            0,
            "{cmd:?} in {id}: {}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        String::from_utf8_lossy(&r.stdout).into_owned()
    };

    // UTS: both containers carry the pod's hostname.
    for id in [&server, &client] {
        assert_eq!(exec(id, &["hostname"]).trim(), hostname, "hostname in {id}");
    }

    // IPC: a segment made in one container is read in the other.
    let text = format!("shared-by-{marker}");
    exec(&server, &["/bin/shm", "create", SHM_KEY, &text]);
    assert_eq!(exec(&client, &["/bin/shm", "read", SHM_KEY]).trim(), text);

    // PID: with the pod's namespace each container sees the other's processes (and the pause
    // process); with its own, only its own. Never the host's.
    let client_ps = exec(&client, &["ps", "-o", "pid,args"]);
    let server_ps = exec(&server, &["ps", "-o", "pid,args"]);
    for ps in [&client_ps, &server_ps] {
        assert!(
            !ps.contains("containerd"),
            "a host process is visible:\n{ps}"
        );
    }
    let shared = pid == NamespaceMode::Pod;
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

    // Nothing of the host's: not its IPC namespace, not its loopback.
    let port = bait.port.to_string();
    for id in [&server, &client] {
        for cmd in [
            &["/bin/shm", "read", &bait.shm_key][..],
            &["nc", "127.0.0.1", &port][..],
        ] {
            let r = must(
                node,
                &format!("ExecSync {cmd:?}"),
                cri.exec_sync(id, cmd, 30),
            );
            let out = String::from_utf8_lossy(&r.stdout);
            assert!(
                r.exit_code != 0 && !out.contains(&bait.secret),
                "{cmd:?} in {id} reached the host's: exit {}, {out}",
                r.exit_code
            );
        }
    }

    // Status of a running container, and of one that exits 3.
    let status = must(
        node,
        "ContainerStatus server",
        cri.container_status(&server),
    );
    assert_eq!(
        status.state(),
        ContainerState::ContainerRunning,
        "{status:?}"
    );
    let quitter = must(
        node,
        &format!("CreateContainer quitter ({handler})"),
        cri.create_container(
            &sandbox,
            container("quitter", format!("echo bye-{marker} >&2; exit 3")),
            &config,
        ),
    );
    must(
        node,
        "StartContainer quitter",
        cri.start_container(&quitter),
    );
    ids.push(quitter.clone());
    let mut status = None;
    rvisor_tests::wait_until("the quitter to exit", || {
        let s = must(
            node,
            "ContainerStatus quitter",
            cri.container_status(&quitter),
        );
        let done = s.state() == ContainerState::ContainerExited;
        status = Some(s);
        done
    });
    let status = status.unwrap();
    assert_eq!(status.exit_code, 3, "{status:?}");

    // Logs, in the CRI format (`TIME STREAM TAG TEXT`), where the pod config put them.
    assert_eq!(
        Path::new(&status.log_path),
        logs.join("quitter.log"),
        "{status:?}"
    );
    wait_for_log(&logs.join("server.log"), " stdout F server-up");
    wait_for_log(
        &logs.join("quitter.log"),
        &format!(" stderr F bye-{marker}"),
    );

    // What the pod holds on the host while it runs, and must not hold once removed.
    let netns = cri.netns_path(&sandbox);
    let traces = leftovers::Pod {
        marker: &marker,
        sandbox: &sandbox,
        containers: &ids,
        cgroup_parent: &cgroup_parent,
        netns: netns.as_deref(),
    };
    let runtime_root = match handler {
        "runc" => Path::new(RUNC_ROOT),
        _ => &node.rvisor_root,
    };
    leftovers::assert_present(
        &traces,
        &[&sandbox, &server, &client],
        &node.dir,
        runtime_root,
    );

    must(node, "StopPodSandbox", cri.stop_pod(&sandbox));
    must(node, "RemovePodSandbox", cri.remove_pod(&sandbox));
    leftovers::assert_none(
        &traces,
        &node.dir,
        &[Path::new(RUNC_ROOT), &node.rvisor_root],
    );
    // The pod's own cgroup is the kubelet's to remove.
    leftovers::remove_cgroup_tree(&cgroup_parent);
    ready
}

/// Polls `f` until it succeeds; after 60 s fails with its last error and containerd's log.
fn poll(node: &Node, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                must(node, &format!("waiting for {what}"), Err::<(), _>(e))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn wait_for_log(path: &Path, line: &str) {
    rvisor_tests::wait_until(&format!("{line:?} in {}", path.display()), || {
        std::fs::read_to_string(path)
            .map(|l| l.lines().any(|l| l.contains(line)))
            .unwrap_or(false)
    });
}
