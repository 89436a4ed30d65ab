//! The OCI runtime driven by an unprivileged user (`RVISOR_ROOTLESS_UID`), as `runc --rootless`
//! and rootless Podman use it: bundles from `rvisor spec --rootless`, state under
//! `XDG_RUNTIME_DIR`, no cgroup unless one is delegated; and the careless caller's mistakes.

use std::path::{Path, PathBuf};

use rvisor_tests::{processes_matching, rootless_uid, stderr, stdout, wait_until, Oci};

fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// Host uid of a process (its real uid).
fn host_uid(pid: i64) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Mount table lines naming `dir` (what a sandbox could have left in the caller's namespace).
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*dir.to_string_lossy()))
        .map(str::to_string)
        .collect()
}

/// A one-line failure (rvisor's exit status 1) whose message contains every one of `says`.
fn fails_with(o: &std::process::Output, says: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for s in says {
        assert!(err.contains(s), "wanted {s:?} in: {err}");
    }
}

#[test]
fn an_unprivileged_user_drives_the_whole_lifecycle() {
    let oci = Oci::rootless("life");
    let marker = "sleep 4201.5";
    let b = oci.bundle(
        "b",
        &[
            "sh",
            "-c",
            &format!("trap 'echo term; exit 5' TERM; {marker} & wait"),
        ],
        |_| {},
    );
    oci.ok(&["create", "--bundle", &arg(&b), "c1"]);
    // The state went to $XDG_RUNTIME_DIR/rvisor, no --root given.
    assert!(oci.root.join("c1/state.json").exists());
    let st = oci.state("c1");
    assert_eq!(st["status"], "created");
    let sentry = st["pid"].as_i64().unwrap();
    assert_eq!(host_uid(sentry), rootless_uid());
    oci.ok(&["start", "c1"]);
    assert_eq!(oci.status("c1"), "running");
    let listed = oci.ok(&["list", "-q"]);
    assert_eq!(listed.trim(), "c1");
    // exec: the spec's user is root inside (the caller outside), and its status comes back.
    let o = oci.run(&["exec", "c1", "sh", "-c", "id -u; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0\n");
    // A user the container does not map, or groups: one clear line, not the kernel's EINVAL.
    let o = oci.run(&["exec", "-u", "1000", "c1", "true"]);
    fails_with(&o, &["uid 1000 is not mapped", "maps 0"]);
    let o = oci.run(&["exec", "-g", "5", "c1", "true"]);
    fails_with(&o, &["supplementary groups"]);
    wait_until("the sleep to start", || {
        !processes_matching(marker).is_empty()
    });
    // ps without a cgroup: the init's pid namespace, every process the caller's on the host.
    let pids: Vec<i64> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", "c1"])).unwrap();
    let sleep = i64::from(processes_matching(marker)[0]);
    assert!(pids.contains(&sleep), "{pids:?}");
    assert!(pids.len() >= 2, "{pids:?}");
    for pid in &pids {
        assert_eq!(host_uid(*pid), rootless_uid(), "pid {pid}");
    }
    // kill --all reaches every process; the trap runs and ends the container.
    oci.ok(&["kill", "--all", "c1", "TERM"]);
    let waited = oci.run(&["wait", "c1"]);
    assert_eq!(waited.status.code(), Some(5), "{}", stderr(&waited));
    assert_eq!(oci.status("c1"), "stopped");
    oci.ok(&["delete", "c1"]);
    // Nothing left: state, processes, mounts in the caller's namespace.
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
    wait_until("the container's processes to go", || {
        processes_matching(marker).is_empty()
    });
    assert!(mounts_under(&oci.dir).is_empty());
}

#[test]
fn rootless_run_gets_loopback_only_and_no_more_than_the_caller() {
    let oci = Oci::rootless("run");
    // A host directory the user owns, and one only root may enter.
    let mine = oci.dir.join("mine");
    let roots = oci.dir.join("roots");
    for d in [&mine, &roots] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::chown(&mine, Some(rootless_uid()), Some(rootless_uid())).unwrap();
    rvisor_tests::set_mode(&roots, 0o700);
    std::fs::write(roots.join("secret"), "s").unwrap();
    let script =
        "id -u; touch /mine/made && echo made; cat /roots/secret 2>/dev/null || echo denied; \
                  grep -c : /proc/net/dev; hostname; exit 7";
    let b = oci.bundle("b", &["sh", "-c", script], |s| {
        s["hostname"] = "rlbox".into();
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network"}));
        let bind = |src: &Path, dst: &str| {
            serde_json::json!({"destination": dst, "type": "bind", "source": src,
                               "options": ["rbind", "rw"]})
        };
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(bind(&mine, "/mine"));
        mounts.push(bind(&roots, "/roots"));
    });
    let o = oci.run(&["run", "--bundle", &arg(&b), "r1"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    // Root inside; the file it made is the caller's on the host; root's directory stays shut;
    // a network namespace of its own with loopback only.
    assert_eq!(stdout(&o), "0\nmade\ndenied\n1\nrlbox\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(mine.join("made")).unwrap().uid(),
        rootless_uid()
    );
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn exec_joins_a_rootless_container_whose_init_is_a_reaper() {
    // With --init the init is not dumpable: exec must find the namespaces another way.
    let oci = Oci::rootless("init");
    let b = oci.bundle("b", &["sleep", "4202.5"], |_| {});
    oci.ok(&["--init", "create", "--bundle", &arg(&b), "c1"]);
    oci.ok(&["start", "c1"]);
    let o = oci.run(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "hostname; ps | grep -c '[s]leep 4202.5'",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.ends_with("\n1\n"), "{out}");
    oci.ok(&["delete", "--force", "c1"]);
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn without_xdg_runtime_dir_or_root_the_error_is_one_clear_line() {
    let oci = Oci::rootless("noxdg");
    // Not `true`: a process that ends at once can race the sentry's answer to `start` (the
    // sentry may exit first, root or not: sentry_proc.rs answers from a thread).
    let b = oci.bundle("b", &["sleep", "0.2"], |_| {});
    let mut cmd = oci.cmd(["run", "--bundle", &arg(&b), "c1"]);
    cmd.env_remove("XDG_RUNTIME_DIR");
    let o = rvisor_tests::run_for(&mut cmd, 60);
    fails_with(&o, &["XDG_RUNTIME_DIR", "--root"]);
    // --root is honoured instead (a directory the user may write).
    let own = oci.dir.join("own-root");
    let mut cmd = oci.cmd(["--root", &arg(&own), "run", "--bundle", &arg(&b), "c1"]);
    cmd.env_remove("XDG_RUNTIME_DIR");
    let o = rvisor_tests::run_for(&mut cmd, 60);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(own.is_dir());
    assert_eq!(std::fs::read_dir(&own).unwrap().count(), 0);
    // An XDG_RUNTIME_DIR the user cannot write (root's), or a --root: the error names it.
    let mut cmd = oci.cmd(["list"]);
    cmd.env("XDG_RUNTIME_DIR", "/root");
    let o = rvisor_tests::run_for(&mut cmd, 60);
    fails_with(
        &o,
        &["/root/rvisor", "Permission denied", "XDG_RUNTIME_DIR"],
    );
    let mut cmd = oci.cmd(["--root", "/run/rvisor-not-yours", "list"]);
    let o = rvisor_tests::run_for(&mut cmd, 60);
    fails_with(&o, &["/run/rvisor-not-yours", "Permission denied"]);
}

/// A change to a bundle's config.json.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn a_spec_asking_for_more_than_the_callers_ids_is_refused_clearly() {
    let oci = Oci::rootless("maps");
    let uid = rootless_uid();
    let cases: Vec<(&str, Edit, &[&str])> = vec![
        (
            "root",
            Box::new(|s| s["linux"]["uidMappings"][0]["hostID"] = 0.into()),
            &["uidMappings", "0:0:1", "newuidmap"],
        ),
        (
            "range",
            Box::new(move |s| {
                s["linux"]["gidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": uid, "size": 65536}])
            }),
            &["gidMappings", "65536"],
        ),
        (
            "unmapped-user",
            Box::new(|s| s["process"]["user"]["uid"] = 1000.into()),
            &["process.user.uid 1000 is not mapped"],
        ),
        (
            "groups",
            Box::new(|s| s["process"]["user"]["additionalGids"] = serde_json::json!([0])),
            &["additionalGids"],
        ),
        (
            "no-userns",
            Box::new(|s| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "user")
            }),
            &["no user namespace", "spec --rootless"],
        ),
        (
            "netns-path",
            Box::new(|s| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"type": "network", "path": "/run/netns/other"}))
            }),
            &[
                "joining the network namespace /run/netns/other",
                "privileges",
            ],
        ),
    ];
    for (name, edit, says) in cases {
        let b = oci.bundle(name, &["true"], edit);
        let o = oci.run(&["create", "--bundle", &arg(&b), name]);
        fails_with(&o, says);
        assert!(
            std::fs::read_dir(&oci.root).map_or(0, |d| d.count()) == 0,
            "{name} left state behind"
        );
    }
}

/// A cgroup delegated to the unprivileged user on every v1 hierarchy rvisor uses, as an admin
/// (or systemd's Delegate=) would; removed when dropped.
struct Delegated {
    dirs: Vec<PathBuf>,
    name: String,
}

const V1: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "cpuset", "freezer"];

impl Delegated {
    fn new() -> Option<Self> {
        if !Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
            return None;
        }
        let name = format!("rvisor-rootless-test-{}", std::process::id());
        let uid = rootless_uid();
        let mut dirs = Vec::new();
        for c in V1 {
            let dir = Path::new("/sys/fs/cgroup").join(c).join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            dirs.push(dir.clone());
            if c == "cpuset" {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let parent =
                        std::fs::read_to_string(Path::new("/sys/fs/cgroup/cpuset").join(f))
                            .unwrap();
                    std::fs::write(dir.join(f), parent.trim()).unwrap();
                }
            }
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                std::os::unix::fs::chown(e.path(), Some(uid), Some(uid)).unwrap();
            }
            std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
        }
        Some(Delegated { dirs, name })
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn rootless_cgroups_as_runc_does() {
    // Made first, so dropped last: after `oci` has deleted whatever a failure left in it.
    let deleg = Delegated::new();
    let oci = Oci::rootless("cgroups");
    // No cgroup can be made: without limits the container runs (and pause says why it cannot).
    let b = oci.bundle("plain", &["sleep", "4203.5"], |_| {});
    oci.ok(&["create", "--bundle", &arg(&b), "c1"]);
    oci.ok(&["start", "c1"]);
    fails_with(
        &oci.run(&["pause", "c1"]),
        &["cannot pause c1", "no cgroup"],
    );
    oci.ok(&["delete", "--force", "c1"]);
    // ...but limits, or a named cgroupsPath, cannot be honoured: clear errors, nothing left.
    let limits = oci.bundle("limits", &["true"], |s| {
        s["linux"]["resources"] = serde_json::json!({"pids": {"limit": 10}});
    });
    let o = oci.run(&["create", "--bundle", &arg(&limits), "c2"]);
    fails_with(&o, &["linux.resources asks for limits", "rvisor/c2"]);
    let named = oci.bundle("named", &["true"], |s| {
        s["linux"]["cgroupsPath"] = "/not-delegated/c3".into();
    });
    let o = oci.run(&["create", "--bundle", &arg(&named), "c3"]);
    fails_with(&o, &["linux.cgroupsPath", "not-delegated/c3"]);
    // --rootless false: a cgroup that cannot be made is an error even without limits.
    let o = oci.run(&["--rootless", "false", "create", "--bundle", &arg(&b), "c4"]);
    fails_with(&o, &["cgroup rvisor/c4", "Permission denied"]);
    let o = oci.run(&["--rootless", "maybe", "list"]);
    assert!(
        !o.status.success() && stderr(&o).contains("maybe"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
    assert!(!Path::new("/sys/fs/cgroup/pids/rvisor/c4").exists());

    // A delegated cgroup is used: limits apply, the sandbox is in it, pause works, delete
    // removes it.
    let Some(deleg) = &deleg else {
        eprintln!("no cgroup v1 pids hierarchy: the delegated part is not run");
        return;
    };
    let path = format!("/{}/c5", deleg.name);
    let b = oci.bundle("deleg", &["sleep", "4204.5"], |s| {
        s["linux"]["cgroupsPath"] = path.clone().into();
        s["linux"]["resources"] = serde_json::json!({"pids": {"limit": 30}});
    });
    oci.ok(&["create", "--bundle", &arg(&b), "c5"]);
    let pids_dir = deleg.dirs[1].join("c5");
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max"))
            .unwrap()
            .trim(),
        "30"
    );
    let process = oci.state("c5")["pid"].as_i64().unwrap().to_string();
    let procs = std::fs::read_to_string(pids_dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|p| p == process), "{procs}");
    oci.ok(&["start", "c5"]);
    oci.ok(&["pause", "c5"]);
    assert_eq!(oci.status("c5"), "paused");
    oci.ok(&["resume", "c5"]);
    assert_eq!(oci.status("c5"), "running");
    oci.ok(&["delete", "--force", "c5"]);
    assert!(!pids_dir.exists());
}

/// Scans every other process's fds for `seconds`, printing any socket or seccomp listener it can
/// see (`PID FD TARGET`), then `scanned N`.
const FD_SNOOP: &str = r#"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    time_t end = time(NULL) + atoi(argv[1]);
    long scanned = 0;
    char self[32];
    snprintf(self, sizeof self, "%d", getpid());
    while (time(NULL) < end) {
        DIR *proc = opendir("/proc");
        struct dirent *p;
        while (proc && (p = readdir(proc))) {
            if (p->d_name[0] < '1' || p->d_name[0] > '9' || !strcmp(p->d_name, self)) continue;
            char dir[300];
            snprintf(dir, sizeof dir, "/proc/%s/fd", p->d_name);
            DIR *fds = opendir(dir);
            struct dirent *f;
            while (fds && (f = readdir(fds))) {
                char path[600], target[256];
                snprintf(path, sizeof path, "%s/%s", dir, f->d_name);
                ssize_t n = readlink(path, target, sizeof target - 1);
                if (n <= 0) continue;
                target[n] = 0;
                scanned++;
                if (!strncmp(target, "socket:", 7) || strstr(target, "seccomp"))
                    printf("%s %s %s\n", p->d_name, f->d_name, target);
            }
            if (fds) closedir(fds);
        }
        if (proc) closedir(proc);
    }
    printf("scanned %ld\n", scanned);
    return 0;
}
"#;

#[test]
fn a_guest_sees_no_listener_or_control_socket_of_an_exec_joiner() {
    // Rootless, a joiner turns dumpable just before its exec (the sentry must read it then): by
    // then its listener is the sentry's and its control socket and namespace fds are closed. A
    // guest with every capability of its namespace snoops on the fds of every process while
    // processes join.
    let oci = Oci::rootless("snoop");
    let probe = rvisor_tests::compile_c_static("fd-snoop", FD_SNOOP);
    let b = oci.bundle("b", &["/bin/snoop", "8"], |s| {
        let all: Vec<String> = [
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "NET_ADMIN",
            "NET_RAW",
            "SYS_CHROOT",
            "SYS_PTRACE",
            "SYS_ADMIN",
        ]
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
        let caps = &mut s["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted", "inheritable"] {
            caps[set] = serde_json::json!(all);
        }
        caps["ambient"] = serde_json::json!([]);
    });
    std::fs::copy(&probe, b.join("rootfs/bin/snoop")).unwrap();
    let out = oci.dir.join("snoop.out");
    std::fs::write(&out, "").unwrap();
    std::os::unix::fs::chown(&out, Some(rootless_uid()), Some(rootless_uid())).unwrap();
    let mut cmd = oci.cmd(["run", "--bundle", &arg(&b), "s1"]);
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stdin(std::process::Stdio::null());
    let mut snooper = cmd.spawn().unwrap();
    wait_until("the snooper to run", || {
        oci.run(&["state", "s1"]).status.success()
    });
    let mut joined = 0;
    while snooper.try_wait().unwrap().is_none() && joined < 40 {
        if oci.run(&["exec", "s1", "true"]).status.success() {
            joined += 1;
        }
    }
    let status = snooper.wait().unwrap();
    let seen = std::fs::read_to_string(&out).unwrap();
    assert!(status.success(), "{seen}");
    assert!(joined >= 5, "only {joined} execs ran: {seen}");
    assert!(seen.starts_with("scanned "), "the guest saw: {seen}");
}
