//! What a careless caller leaves behind: a `create` killed before it recorded the container, and
//! one id under two state roots. Nothing may be left that `delete` cannot remove, and one
//! container's delete must never reach another's processes.

use rvisor_tests::{stderr, stdout, Oci};

fn bundle_arg(b: &std::path::Path) -> String {
    b.display().to_string()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

/// A `create` killed after its sandbox started but before it wrote `state.json` (the state a
/// SIGKILL or a `timeout` a few milliseconds in leaves: made here by removing the record): the
/// id was stuck ("already exists" to create, "does not exist" to delete) with its sentry, gofer
/// and init waiting forever. `delete -f` must remove all of it, and the id be usable again.
#[test]
fn delete_removes_what_a_killed_create_left() {
    let oci = Oci::new("half-made");
    let b = oci.bundle("b", &["true"], |_| {});
    oci.ok(&["create", "--bundle", &bundle_arg(&b), "h1"]);
    let state = oci.state("h1");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oci.root.join("h1/state.json")).unwrap())
            .unwrap();
    let pids: Vec<i64> = ["sentry_pid", "gofer_pid", "init_pid"]
        .iter()
        .map(|k| record[k].as_i64().unwrap())
        .collect();
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?} {state}");
    std::fs::remove_file(oci.root.join("h1/state.json")).unwrap();

    // Not a container any more: neither listed nor stated.
    assert_eq!(oci.ok(&["list", "-q"]), "");
    assert!(!oci.run(&["state", "h1"]).status.success());
    let o = oci.run(&["delete", "--force", "h1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!oci.root.join("h1").exists(), "the state directory stayed");
    for p in &pids {
        assert!(!alive(*p), "pid {p} of the half-made container still runs");
    }
    let cgroup = record["cgroup"].as_str().unwrap().trim_start_matches('/');
    for hierarchy in ["", "pids", "memory", "unified"] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(cgroup);
        assert!(!dir.exists(), "{} stayed", dir.display());
    }
    // The id is free again.
    oci.ok(&["create", "--bundle", &bundle_arg(&b), "h1"]);
    oci.ok(&["delete", "--force", "h1"]);
}

/// One id under two `--root`s maps to one default cgroup: the second create would share the
/// first's, and a `delete -f` of either would kill both. The second is refused in one line, and
/// the first runs on.
#[test]
fn one_id_under_two_state_roots_cannot_share_a_cgroup() {
    let first = Oci::new("two-roots-a");
    let second = Oci::new("two-roots-b");
    let b = first.bundle("b", &["sleep", "1000"], |_| {});
    first.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "dup"]);
    let o = second.run(&["create", "--bundle", &bundle_arg(&b), "dup"]);
    assert!(!o.status.success(), "{o:?}");
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cgroup"), "{err}");
    assert_eq!(second.ok(&["list", "-q"]), "");
    assert!(!second.root.join("dup").exists());
    assert_eq!(first.status("dup"), "running");
    assert_eq!(stdout(&first.run(&["exec", "dup", "echo", "up"])), "up\n");
    first.ok(&["delete", "--force", "dup"]);
}

/// A `create` killed under one `--root` whose sandbox then died, and the same id created under
/// another `--root`, which takes the now empty cgroup: deleting the leftover must kill nothing
/// of the other container's and leave its cgroup.
#[test]
fn deleting_a_leftover_spares_the_container_that_took_its_cgroup() {
    let first = Oci::new("leftover-a");
    let second = Oci::new("leftover-b");
    let b = first.bundle("b", &["sleep", "1000"], |_| {});
    first.ok(&["create", "--bundle", &bundle_arg(&b), "lo"]);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.root.join("lo/state.json")).unwrap())
            .unwrap();
    std::fs::remove_file(first.root.join("lo/state.json")).unwrap();
    // Its sandbox ends (killed with its sentry): the cgroup empties.
    let sentry = record["sentry_pid"].as_i64().unwrap();
    // SAFETY: kill takes integers; the sentry is this test's container's.
    unsafe { libc::kill(sentry as i32, libc::SIGKILL) };
    for k in ["sentry_pid", "gofer_pid", "init_pid"] {
        let pid = record[k].as_i64().unwrap();
        rvisor_tests::wait_until("the leftover's sandbox to end", || !alive(pid));
    }
    second.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "lo"]);
    let o = first.run(&["delete", "lo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!first.root.join("lo").exists());
    assert_eq!(second.status("lo"), "running");
    assert_eq!(stdout(&second.run(&["exec", "lo", "echo", "up"])), "up\n");
    second.ok(&["delete", "--force", "lo"]);
}
