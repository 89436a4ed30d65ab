//! What a removed pod must not leave on the host: processes, mounts, cgroups, network
//! namespaces, runtime state.

use std::path::{Path, PathBuf};

/// Host pids (not ours) whose command line contains any of `needles`.
pub fn processes_mentioning(needles: &[&str]) -> Vec<i32> {
    rvisor_tests::process_cmdlines()
        .into_iter()
        .filter(|(_, c)| needles.iter().any(|n| c.contains(n)))
        .map(|(pid, _)| pid)
        .collect()
}

fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| {
            let c = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            format!("{p}: {}", String::from_utf8_lossy(&c).replace('\0', " "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Mount points (in our mount namespace, the host's) at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    mounts(|m| Path::new(m).starts_with(dir))
}

fn mounts(mut keep: impl FnMut(&str) -> bool) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| keep(m))
        .map(str::to_string)
        .collect()
}

/// Asserts nothing is mounted under `dir` (containerd's root and state, once no pod runs).
pub fn assert_no_mounts_under(dir: &Path) {
    let left = mounts_under(dir);
    assert!(left.is_empty(), "mounts left: {left:?}");
}

/// Every cgroup hierarchy's directory for the cgroupfs path `cgroup` (v1 controllers and the
/// unified tree alike).
fn cgroup_dirs(cgroup: &str) -> Vec<PathBuf> {
    let rel = cgroup.trim_start_matches('/');
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.flatten()
                .map(|h| h.path().join(rel))
                .chain([Path::new("/sys/fs/cgroup").join(rel)])
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the cgroup `cgroup` and what is below it, deepest first (a cgroup directory goes
/// with rmdir only).
pub fn remove_cgroup_tree(cgroup: &str) {
    fn rm(dir: &Path) {
        for sub in subdirs(dir) {
            rm(&sub);
        }
        let _ = std::fs::remove_dir(dir);
    }
    for dir in cgroup_dirs(cgroup) {
        rm(&dir);
    }
}

/// What the pod with these ids could have left behind.
pub struct Pod<'a> {
    /// Text in the pod's own command lines.
    pub marker: &'a str,
    pub sandbox: &'a str,
    pub containers: &'a [String],
    /// Its `cgroup_parent`: the containers' cgroups are its children.
    pub cgroup_parent: &'a str,
    /// The network namespace CNI was given.
    pub netns: Option<&'a str>,
}

/// Asserts a running pod's `running` ids hold what `assert_none` then looks for, so that its
/// checks look in the right places: a cgroup under the pod's parent, a state directory in
/// `runtime_root`, a shim bundle with its rootfs mounted; and the pod's processes and network
/// namespace exist.
pub fn assert_present(pod: &Pod, running: &[&str], node_dir: &Path, runtime_root: &Path) {
    for id in running {
        let cgroup = format!("{}/{id}", pod.cgroup_parent);
        assert!(!cgroup_dirs(&cgroup).is_empty(), "no cgroup {cgroup}");
        let state = runtime_root.join(id);
        assert!(
            state.is_dir(),
            "no runtime state {} (the root holds {:?})",
            state.display(),
            std::fs::read_dir(runtime_root)
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                .unwrap_or_default()
        );
        let bundle = node_dir
            .join("state/io.containerd.runtime.v2.task/k8s.io")
            .join(id);
        let mounted = mounts_under(&bundle);
        assert!(
            !mounted.is_empty(),
            "nothing mounted in {}",
            bundle.display()
        );
    }
    assert!(
        !processes_mentioning(&[pod.marker]).is_empty(),
        "no process shows {}",
        pod.marker
    );
    let netns = pod.netns.expect("the pod's network namespace");
    assert!(Path::new(netns).exists(), "no network namespace {netns}");
}

/// Asserts the removed pod left nothing: `node_dir` holds containerd's root and state,
/// `runtime_roots` the runtimes' state roots.
pub fn assert_none(pod: &Pod, node_dir: &Path, runtime_roots: &[&Path]) {
    let mut ids: Vec<&str> = pod.containers.iter().map(String::as_str).collect();
    ids.push(pod.sandbox);
    let mut needles = ids.clone();
    needles.push(pod.marker);

    let procs = processes_mentioning(&needles);
    assert!(procs.is_empty(), "processes left:\n{}", describe(&procs));

    // Every mount containerd makes for a pod (rootfs, /dev/shm) has an id in its path.
    let mounts = mounts(|m| ids.iter().any(|id| m.contains(id)));
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");

    let cgroups: Vec<PathBuf> = cgroup_dirs(pod.cgroup_parent)
        .iter()
        .flat_map(|d| subdirs(d))
        .collect();
    assert!(cgroups.is_empty(), "container cgroups left: {cgroups:?}");

    let netns = pod.netns.expect("the pod's network namespace");
    assert!(
        !Path::new(netns).exists(),
        "network namespace left: {netns}"
    );
    let mounted = mounts_under(Path::new(netns));
    assert!(
        mounted.is_empty(),
        "network namespace still mounted: {mounted:?}"
    );

    for root in runtime_roots {
        for id in &ids {
            let state = root.join(id);
            assert!(!state.exists(), "runtime state left: {}", state.display());
        }
    }
    let tasks = node_dir.join("state/io.containerd.runtime.v2.task/k8s.io");
    for id in &ids {
        let bundle = tasks.join(id);
        assert!(!bundle.exists(), "shim bundle left: {}", bundle.display());
    }
}
