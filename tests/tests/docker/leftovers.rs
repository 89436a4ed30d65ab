//! What must not outlive a container or the daemon: processes, mounts, cgroups, the runtime's
//! state. Checked after every `docker rm`, and at exit, when the daemon is stopped and the run
//! fails if anything of it is left.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rvisor_tests::{run_for, wait_until};

use super::daemon::Dockerd;

/// Daemons started by this binary (directory, cgroup parent, dockerd's pid while it is ours to
/// stop), cleaned up at exit even if setting one up failed half-way.
static STARTED: Mutex<Vec<(PathBuf, String, Option<u32>)>> = Mutex::new(Vec::new());

/// `parent` in every cgroup hierarchy.
pub fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let rel = parent.trim_start_matches('/');
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join(rel)];
    for h in std::fs::read_dir(base).into_iter().flatten().flatten() {
        if h.path().is_dir() {
            dirs.push(h.path().join(rel));
        }
    }
    dirs
}

/// Host pids whose command line contains `marker` (this process aside).
fn pids_mentioning(marker: &str) -> Vec<(i32, String)> {
    rvisor_tests::process_cmdlines()
        .into_iter()
        .filter(|(_, c)| c.contains(marker))
        .collect()
}

pub fn mounts_mentioning(marker: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

/// Fails the test if anything of container `id` outlives its `docker rm`: the runtime's state
/// directory, a process naming it (shim, runtime), its cgroups, a mount naming it.
pub fn assert_removed(d: &Dockerd, id: &str) {
    assert_eq!(id.len(), 64, "not a full container id: {id:?}");
    wait_until(&format!("the shim and runtime of {id} to exit"), || {
        pids_mentioning(id).is_empty()
    });
    let state = d.state_dir(id);
    assert!(!state.exists(), "{} outlived docker rm", state.display());
    for cg in d.cgroups_of(id) {
        assert!(!cg.exists(), "{} outlived docker rm", cg.display());
    }
    let mounts = mounts_mentioning(id);
    assert!(mounts.is_empty(), "mounts outlived docker rm: {mounts:#?}");
}

/// Earlier runs of this binary that were killed before their teardown: their daemons and
/// directories go.
pub fn remove_stale_runs() {
    let base = Path::new("/var/tmp/rvisor-tests");
    for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("docker-") else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let parent = format!("/rvisor-docker-test-{pid}");
        let _ = clean_up(&e.path(), &parent, None, false);
    }
}

/// Has the daemon of `dir` (dockerd `pid`) stopped and checked at exit.
pub fn clean_up_at_exit(dir: &Path, cgroup_parent: &str, pid: u32) {
    register_teardown();
    STARTED
        .lock()
        .unwrap()
        .push((dir.to_path_buf(), cgroup_parent.to_string(), Some(pid)));
}

/// The daemon of `dir` has exited and been reaped: its pid is no longer ours to signal.
pub fn reaped(dir: &Path) {
    for entry in STARTED.lock().unwrap().iter_mut() {
        if entry.0 == dir {
            entry.2 = None;
        }
    }
}

fn register_teardown() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: atexit takes a function pointer to a plain extern "C" function.
        let rc = unsafe { libc::atexit(teardown) };
        assert_eq!(rc, 0, "atexit");
    });
}

/// At exit: every container goes, the daemon stops, and nothing of it may remain; what remains
/// is removed and fails the run.
extern "C" fn teardown() {
    let started = std::mem::take(&mut *STARTED.lock().unwrap_or_else(|e| e.into_inner()));
    let mut problems = Vec::new();
    for (dir, parent, pid) in started {
        problems.extend(clean_up(&dir, &parent, pid, true));
    }
    if !problems.is_empty() {
        eprintln!(
            "docker tests: left behind after dockerd stopped:\n  {}",
            problems.join("\n  ")
        );
        // SAFETY: _exit ends the process at once; nothing else runs.
        unsafe { libc::_exit(1) };
    }
}

/// Stops the daemon of `dir` (pid `pid`, if it is ours and running) and returns what outlived it
/// (if `report`), after removing that too: processes, mounts, cgroups; then the directory.
fn clean_up(dir: &Path, cgroup_parent: &str, pid: Option<u32>, report: bool) -> Vec<String> {
    // Every process and mount of this daemon names a path under dir.
    let marker = format!("{}/", dir.display());
    let sock = dir.join("docker.sock");
    let mut problems = Vec::new();
    if let Some(pid) = pid {
        if sock.exists() {
            // What a failed test left running; then the daemon. (No panic may leave an
            // atexit handler: a hang here is reported below as what it leaves.)
            let _ = std::panic::catch_unwind(|| {
                run_for(
                    Command::new("sh")
                        .arg("-c")
                        .arg(format!(
                            "ids=$(docker --host unix://{0} ps -aq); \
                             [ -z \"$ids\" ] || docker --host unix://{0} rm -f $ids",
                            sock.display()
                        ))
                        .env("DOCKER_CONFIG", dir.join("cli")),
                    120,
                )
            });
        }
        // SAFETY: kill takes integers; the pid is our own child, not yet reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child, with a status int we own.
            let rc = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
            if rc != 0 {
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!("dockerd {pid} ignored SIGTERM for 60 s"));
                // SAFETY: as above.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                // SAFETY: as above.
                unsafe { libc::waitpid(pid as i32, &mut status, 0) };
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // dockerd has stopped its containerd; give the kernel a moment to reap the rest.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids_mentioning(&marker).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for (pid, cmdline) in pids_mentioning(&marker) {
        problems.push(format!("process {pid}: {cmdline}"));
        // SAFETY: kill takes integers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut mounts: Vec<String> = mounts_mentioning(&marker)
        .iter()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect();
    // Deepest first.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        problems.push(format!("mount {m}"));
        let _ = Command::new("umount").args(["-l", &m]).status();
    }
    for cg in cgroup_dirs(cgroup_parent) {
        for child in std::fs::read_dir(&cg).into_iter().flatten().flatten() {
            if child.path().is_dir() {
                problems.push(format!("cgroup {}", child.path().display()));
                let _ = std::fs::remove_dir(child.path());
            }
        }
        // The parent is the daemon's (created for --cgroup-parent), not the runtime's.
        let _ = std::fs::remove_dir(&cg);
    }
    let _ = std::fs::remove_dir_all(dir);
    if !report {
        problems.clear();
    }
    problems
}
