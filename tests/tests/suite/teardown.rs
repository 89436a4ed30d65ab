//! Nothing outlives a sandbox: no process, no mount, no temporary file. One test in this binary,
//! so no other sandbox runs while the host is compared before and after.

use super::prelude::*;

fn host_snapshot() -> (String, Vec<String>) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut files: Vec<String> = ["/tmp", "/dev/shm", "/run"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path().display().to_string())
        .collect();
    files.sort();
    (mounts, files)
}

#[test]
fn sandbox_leaves_nothing_behind() {
    let before = host_snapshot();
    // Background processes, files in the sandbox's /tmp and /dev/shm, a failed run, a killed run.
    let o = sh("sleep 321.5 & sleep 321.6 & echo data > /tmp/f; echo x > /dev/shm/g; echo started");
    assert_eq!(ok(&o), "started\n");
    let o = sh("sleep 321.7 & kill -KILL $$");
    assert_eq!(o.status.code(), Some(137));
    let o = run_for(&mut rvisor_do(["--", "/no/such/cmd"]), 60);
    assert_eq!(o.status.code(), Some(127));
    for marker in ["sleep 321.5", "sleep 321.6", "sleep 321.7"] {
        assert!(
            processes_matching(marker).is_empty(),
            "{marker} survived its sandbox"
        );
    }
    let after = host_snapshot();
    assert_eq!(before.0, after.0, "host mounts changed");
    assert_eq!(before.1, after.1, "host temp files changed");
}
