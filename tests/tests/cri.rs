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
#[path = "cri/pod.rs"]
mod pod;

use std::sync::Mutex;
use std::time::Duration;

use bait::HostBait;
use k8s_cri::v1::NamespaceMode;
use node::Node;
use pod::Pod;

/// Pods per handler; the start-to-ready median is taken over them.
const PODS: usize = 5;
/// Key of the segment the neighbour pod leaves in its IPC namespace.
const NEIGHBOUR_KEY: &str = "0x5256434e";

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
    // A pod that runs next to each pod under test, which must not reach into it.
    let neighbour = Pod::start(&node, handler, 99, NamespaceMode::Pod);
    neighbour.plant_segment(NEIGHBOUR_KEY);
    let mut ready = Vec::new();
    for n in 0..PODS {
        // Both kinds of pod: one PID namespace for the pod (shareProcessNamespace) or one per
        // container (Kubernetes' default).
        let pid = if n % 2 == 0 {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Container
        };
        let mut pod = Pod::start(&node, handler, n, pid);
        println!(
            "cri: {handler}: pod {n} ({pid:?} PID namespace) ready in {:?}",
            pod.ready
        );
        ready.push(pod.ready);
        pod.check_shared_namespaces();
        pod.check_host_out_of_reach(&bait);
        pod.check_neighbour_out_of_reach(&neighbour, NEIGHBOUR_KEY);
        pod.check_status_and_logs();
        let gone = pod.remove_and_check_nothing_left();
        println!("cri: {handler}: pod {n} stopped and removed in {gone:?}");
    }
    let _ = neighbour.remove_and_check_nothing_left();
    leftovers::assert_no_mounts_under(&node.dir);
    ready.sort();
    let ms: Vec<u128> = ready.iter().map(Duration::as_millis).collect();
    println!(
        "cri: {handler}: pod start-to-ready median {} ms over {PODS} pods (all: {ms:?} ms)",
        ms[ms.len() / 2]
    );
}
