//! The spec details a container notices next to runc: mount order, device nodes, the devices,
//! memory and pids cgroups, no_new_privs, an empty hostname and LSM labels. Each asserts what
//! Linux and runc do.

use std::path::{Path, PathBuf};

use rvisor_tests::{stderr, stdout, Oci};

fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// Adds busybox applets the harness does not link.
fn link_applets(bundle: &Path, applets: &[&str]) {
    for a in applets {
        let _ = std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin").join(a));
    }
}

/// A directory of the scratch space holding one file `name` with `text`.
fn host_dir(oci: &Oci, dir: &str, name: &str, text: &str) -> PathBuf {
    let d = oci.dir.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), text).unwrap();
    d
}

fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A file of the container's cgroup: v1 `<controller>/rvisor/<id>/<file>`, or v2
/// `rvisor/<id>/<leaf>/<file>`.
fn cgroup_file(id: &str, controller: &str, v2_leaf: &str, file: &str) -> PathBuf {
    if pure_v2() {
        Path::new("/sys/fs/cgroup/rvisor")
            .join(id)
            .join(v2_leaf)
            .join(file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("rvisor")
            .join(id)
            .join(file)
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn mounts_are_made_in_the_specs_order() {
    let oci = Oci::new("order");
    let lower = host_dir(&oci, "lower", "from-bind", "b");
    let sys = host_dir(&oci, "sys", "marker", "under-sys");
    let dev = host_dir(&oci, "dev", "marker", "under-dev");
    let b = oci.bundle(
        "b",
        &[
            "sh",
            "-c",
            "ls /m; echo ---; grep ' /dev/shm ' /proc/self/mountinfo | tail -1; \
             cat /sys/fs/cgroup/marker /dev/extra/marker",
        ],
        |s| {
            let mounts = s["mounts"].as_array_mut().unwrap();
            mounts.extend([
                // In the tree: the tmpfs comes last, so it is on top of the bind.
                serde_json::json!({"destination": "/m", "type": "bind", "source": arg(&lower), "options": ["rbind"]}),
                serde_json::json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
                // In the guest's own filesystems, after them.
                serde_json::json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "size=64k"]}),
                serde_json::json!({"destination": "/sys/fs/cgroup", "type": "bind", "source": arg(&sys), "options": ["rbind", "ro"]}),
                serde_json::json!({"destination": "/dev/extra", "type": "bind", "source": arg(&dev), "options": ["rbind"]}),
            ]);
        },
    );
    let o = oci.run(&["run", "--bundle", &arg(&b), "o1"]);
    let out = stdout(&o);
    let (ls, rest) = out.split_once("---\n").unwrap_or(("", ""));
    assert_eq!(
        ls,
        "",
        "the later tmpfs hides the bind: {out}{}",
        stderr(&o)
    );
    assert!(rest.contains("size=64k"), "the spec's /dev/shm: {out}");
    assert!(rest.ends_with("under-sysunder-dev"), "{out}{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_mount_inside_proc_is_refused_as_runc_does() {
    let oci = Oci::new("procmnt");
    let dir = host_dir(&oci, "d", "f", "x");
    let b = oci.bundle("b", &["true"], |s| {
        s["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/proc/sys", "type": "bind", "source": arg(&dir), "options": ["rbind"]}),
        );
    });
    let o = oci.run(&["create", "--bundle", &arg(&b), "p1"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("/proc/sys") && err.contains("inside /proc"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn spec_devices_are_created_and_only_they_open() {
    let oci = Oci::new("devices");
    let script = "stat -c '%n %F %t:%T %a %u:%g' /dev/mynull /dev/sub/myzero; \
                  head -c 3 /dev/sub/myzero | wc -c; echo x > /dev/mynull && echo wrote; \
                  (exec 3>/dev/mykmsg) 2>&1; \
                  mknod /dev/other c 1 11 2>&1; mknod /tmp/other c 1 11 2>&1; \
                  touch /dev/mynull 2>&1; true";
    let b = oci.bundle("b", &["sh", "-c", script], |s| {
        s["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 5},
            {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5},
            {"path": "/dev/mykmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600},
        ]);
    });
    link_applets(&b, &["stat", "mknod"]);
    let o = oci.run(&["run", "--bundle", &arg(&b), "d1"]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("/dev/mynull character special file 1:3 640 0:5"),
        "{out}{}",
        stderr(&o)
    );
    assert_eq!(
        lines.get(1).copied(),
        Some("/dev/sub/myzero character special file 1:5 666 0:0")
    );
    assert_eq!(lines.get(2).copied(), Some("3"), "{out}");
    assert_eq!(lines.get(3).copied(), Some("wrote"), "{out}");
    // Listed but not allowed by the devices cgroup (runc's default: deny): the kernel refuses.
    assert!(
        lines
            .get(4)
            .is_some_and(|l| l.contains("Operation not permitted")),
        "{out}"
    );
    // No other node can be made, in /dev or in the tree; nor can the guest change one.
    assert!(
        lines[5..].iter().filter(|l| l.contains("mknod")).count() == 2,
        "{out}"
    );
    assert!(
        lines[5..]
            .iter()
            .all(|l| !l.contains("mknod") || l.contains("Operation not permitted")),
        "{out}"
    );
    assert!(out.contains("Read-only file system"), "{out}");
    // Allowed by a rule, it opens.
    let allowed = oci.bundle(
        "allowed",
        &[
            "sh",
            "-c",
            "[ -c /dev/mykmsg ] && (exec 3>/dev/mykmsg) && echo opened",
        ],
        |s| {
            s["linux"]["devices"] = serde_json::json!([
                {"path": "/dev/mykmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600},
            ]);
            s["linux"]["resources"]["devices"] = serde_json::json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"},
            ]);
        },
    );
    let o = oci.run(&["run", "--bundle", &arg(&allowed), "d2"]);
    assert_eq!(stdout(&o), "opened\n", "{}", stderr(&o));
}

#[test]
fn a_device_outside_dev_is_refused() {
    let oci = Oci::new("devpath");
    let b = oci.bundle("b", &["true"], |s| {
        s["linux"]["devices"] =
            serde_json::json!([{"path": "/etc/null", "type": "c", "major": 1, "minor": 3}]);
    });
    let o = oci.run(&["create", "--bundle", &arg(&b), "x1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("below /dev"), "{}", stderr(&o));
}

#[test]
fn the_hosts_device_nodes_cannot_be_changed_from_inside() {
    let oci = Oci::new("hostnodes");
    // As root in the container (the default spec), which owns the host's /dev/null.
    let b = oci.bundle(
        "b",
        &["sh", "-c", "touch /dev/null /dev/zero 2>&1; true"],
        |_| {},
    );
    let before = std::fs::metadata("/dev/null").unwrap();
    let o = oci.run(&["run", "--bundle", &arg(&b), "h1"]);
    let after = std::fs::metadata("/dev/null").unwrap();
    let out = stdout(&o);
    assert_eq!(out.matches("Read-only file system").count(), 2, "{out}");
    assert_eq!(
        std::os::unix::fs::MetadataExt::mtime_nsec(&before),
        std::os::unix::fs::MetadataExt::mtime_nsec(&after)
    );
}

#[test]
fn the_devices_cgroup_denies_by_default() {
    let oci = Oci::new("devcg");
    let b = oci.bundle("b", &["true"], |_| {});
    oci.ok(&["create", "--bundle", &arg(&b), "g1"]);
    if pure_v2() {
        // A device program is attached to the guest's leaf.
        let progs = std::process::Command::new("bpftool")
            .args(["cgroup", "show", "/sys/fs/cgroup/rvisor/g1/guest"])
            .output();
        if let Ok(p) = progs {
            assert!(stdout(&p).contains("cgroup_device"), "{}", stdout(&p));
        }
    } else {
        let list = read(&cgroup_file("g1", "devices", "guest", "devices.list"));
        assert!(!list.contains("a *:* rwm"), "{list}");
        assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
        assert!(list.lines().any(|l| l == "c 136:* rwm"), "{list}");
    }
    oci.ok(&["delete", "g1"]);
}

#[test]
fn memory_reservation_swappiness_and_the_oom_killer_are_applied() {
    let oci = Oci::new("memopts");
    let b = oci.bundle("b", &["true"], |s| {
        s["linux"]["resources"] = serde_json::json!({"memory": {
            "limit": 256 << 20, "reservation": 64 << 20, "swappiness": 7, "disableOOMKiller": true
        }});
    });
    oci.ok(&["create", "--bundle", &arg(&b), "r1"]);
    if pure_v2() {
        let low = Path::new("/sys/fs/cgroup/rvisor/r1/memory.low");
        assert_eq!(read(low), (64u64 << 20).to_string());
    } else {
        let base = Path::new("/sys/fs/cgroup/memory/rvisor/r1");
        assert_eq!(
            read(&base.join("memory.soft_limit_in_bytes")),
            (64u64 << 20).to_string()
        );
        assert_eq!(read(&base.join("memory.swappiness")), "7");
        let oom = read(&base.join("memory.oom_control"));
        assert!(oom.lines().any(|l| l == "oom_kill_disable 1"), "{oom}");
    }
    oci.ok(&["delete", "r1"]);
}

fn nnp_line(oci: &Oci, name: &str, nnp: Option<bool>, uid: u32) -> String {
    let b = oci.bundle(
        name,
        &[
            "sh",
            "-c",
            "grep -E 'NoNewPrivs|CapEff' /proc/self/status; mkdir /tmp/d 2>&1; id -u",
        ],
        |s| {
            match nnp {
                Some(v) => s["process"]["noNewPrivileges"] = v.into(),
                None => {
                    s["process"]
                        .as_object_mut()
                        .unwrap()
                        .remove("noNewPrivileges");
                }
            }
            s["process"]["user"] = serde_json::json!({"uid": uid, "gid": uid});
            // The spec's own filter goes in after the sentry's, without no_new_privs too.
            s["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
        },
    );
    let o = oci.run(&["run", "--bundle", &arg(&b), name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn no_new_privileges_follows_the_spec() {
    let oci = Oci::new("nnp");
    // The spec's capabilities (rvisor spec: AUDIT_WRITE, KILL, NET_BIND_SERVICE) and nothing
    // more: CAP_SYS_ADMIN, held to install the filters without no_new_privs, is gone.
    let caps = "CapEff:\t0000000020000420";
    for (name, nnp, uid, want) in [
        ("off", Some(false), 1000, "0"),
        ("absent", None, 1000, "0"),
        ("on", Some(true), 1000, "1"),
        ("off-root", Some(false), 0, "0"),
    ] {
        let out = nnp_line(&oci, name, nnp, uid);
        assert!(
            out.contains(&format!("NoNewPrivs:\t{want}\n")),
            "{name}: {out}"
        );
        assert!(out.contains(caps), "{name}: {out}");
        assert!(out.ends_with(&format!("{uid}\n")), "{name}: {out}");
        assert!(out.contains("Operation not permitted"), "{name}: {out}");
    }
}

#[test]
fn without_no_new_privs_a_setuid_binary_still_gains_nothing() {
    let oci = Oci::new("suid");
    let b = oci.bundle("b", &["/bin/euid"], |s| {
        s["process"]["noNewPrivileges"] = false.into();
        s["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    });
    // A setuid-root, setgid-root program in the root. runc would run it as root; the guest's view
    // is nosuid, so it keeps the caller's ids.
    let probe = rvisor_tests::compile_c_static(
        "euid",
        "#include <stdio.h>\n#include <unistd.h>\n\
         int main(void) { printf(\"%d %d\\n\", (int)geteuid(), (int)getegid()); return 0; }\n",
    );
    let suid = b.join("rootfs/bin/euid");
    std::fs::copy(&probe, &suid).unwrap();
    std::os::unix::fs::chown(&suid, Some(0), Some(0)).unwrap();
    rvisor_tests::set_mode(&suid, 0o6755);
    let o = oci.run(&["run", "--bundle", &arg(&b), "s1"]);
    assert_eq!(stdout(&o), "1000 1000\n", "{}", stderr(&o));
}

#[test]
fn an_empty_hostname_leaves_the_hosts() {
    let oci = Oci::new("hostname");
    let b = oci.bundle("b", &["hostname"], |s| s["hostname"] = "".into());
    let o = oci.run(&["run", "--bundle", &arg(&b), "n1"]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    assert_eq!(stdout(&o), format!("{host}\n"), "{}", stderr(&o));
}

#[test]
fn lsm_labels_the_host_cannot_apply_are_refused() {
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y");
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor || selinux {
        return;
    }
    let oci = Oci::new("lsm");
    for (name, field, says) in [
        ("aa", "apparmor", "AppArmor is not enabled"),
        ("se", "selinux", "SELinux is disabled"),
        ("ml", "mount", "SELinux is disabled"),
    ] {
        let b = oci.bundle(name, &["true"], |s| match field {
            "apparmor" => s["process"]["apparmorProfile"] = "docker-default".into(),
            "selinux" => s["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into(),
            _ => s["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0".into(),
        });
        let o = oci.run(&["create", "--bundle", &arg(&b), name]);
        assert!(!o.status.success(), "{name}");
        let err = stderr(&o);
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // Asking for no profile asks for nothing.
    let b = oci.bundle("unconfined", &["true"], |s| {
        s["process"]["apparmorProfile"] = "unconfined".into()
    });
    let o = oci.run(&["run", "--bundle", &arg(&b), "u1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn the_pids_cgroup_counts_the_guests_tasks_alone() {
    let oci = Oci::new("pidsonly");
    // Three tasks: the shell and two sleeps; the sentry, the gofer and their threads are not
    // counted, so a limit of 3 is enough.
    let b = oci.bundle(
        "b",
        &["sh", "-c", "sleep 0 & sleep 0 & wait; echo forked"],
        |s| s["linux"]["resources"] = serde_json::json!({"pids": {"limit": 3}}),
    );
    oci.ok(&["create", "--bundle", &arg(&b), "q1"]);
    // Created: the guest init alone.
    assert_eq!(
        read(&cgroup_file("q1", "pids", "guest", "pids.current")),
        "1"
    );
    let ev: serde_json::Value =
        serde_json::from_str(&oci.ok(&["events", "--stats", "q1"])).unwrap();
    assert_eq!(ev["data"]["pids"]["current"], 1, "{ev}");
    assert_eq!(ev["data"]["pids"]["limit"], 3, "{ev}");
    // The state reports the container's process; the sentry is in the runtime's record.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oci.root.join("q1/state.json")).unwrap())
            .unwrap();
    let sentry = record["sentry_pid"].as_i64().unwrap().to_string();
    let procs = read(&cgroup_file("q1", "pids", "guest", "cgroup.procs"));
    assert!(!procs.lines().any(|p| p == sentry), "{procs}");
    oci.ok(&["start", "q1"]);
    assert_eq!(oci.run(&["wait", "q1"]).status.code(), Some(0));
    oci.ok(&["delete", "q1"]);
    for hierarchy in ["pids", "devices", "memory"] {
        assert!(!Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("rvisor/q1")
            .exists());
    }
    assert!(!Path::new("/sys/fs/cgroup/rvisor/q1").exists());
    let o = oci.run(&["run", "--bundle", &arg(&b), "q2"]);
    assert_eq!(stdout(&o), "forked\n", "{}", stderr(&o));
    // An exec'd process counts; the keeper that reports its status does not.
    let long = oci.bundle("long", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &arg(&long), "q3"]);
    oci.ok(&["exec", "-d", "q3", "sleep", "1001"]);
    assert_eq!(
        read(&cgroup_file("q3", "pids", "guest", "pids.current")),
        "2"
    );
    oci.ok(&["delete", "--force", "q3"]);
}
