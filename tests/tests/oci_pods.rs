//! What a Kubernetes pod needs of a runtime, as containerd's CRI plugin uses it: the pid reported
//! (`state`, `--pid-file`) is the container's process, in the container's namespaces, and a child
//! of the runtime's caller, whose reaper (the shim, a subreaper) gets its exit status; a second
//! container joins the first's namespaces by `/proc/<pid>/ns/<type>` path; and the container
//! still dies with its sandbox.

use std::path::Path;
use std::process::Command;

use rvisor_tests::{run_for, rvisor, stderr, stdout, wait_until, Oci};

const PLATFORMS: [&str; 2] = ["seccomp-notify", "ptrace"];

fn arg(p: &Path) -> String {
    p.display().to_string()
}

fn ns_link(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .display()
        .to_string()
}

fn pid_of(oci: &Oci, id: &str) -> i64 {
    oci.state(id)["pid"].as_i64().expect("a pid in the state")
}

/// Edits a spec to join `pid`'s namespaces of these OCI types (its own of that type go), and
/// drops the spec's hostname (a joined uts namespace keeps its own).
fn join_namespaces_of(s: &mut serde_json::Value, pid: impl std::fmt::Display, types: &[&str]) {
    s.as_object_mut().unwrap().remove("hostname");
    let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| !types.contains(&n["type"].as_str().unwrap()));
    for kind in types {
        let file = if *kind == "network" { "net" } else { kind };
        ns.push(serde_json::json!({"type": kind, "path": format!("/proc/{pid}/ns/{file}")}));
    }
}

/// The runtime's record of `id` (it holds the sentry's and the gofer's pids too).
fn record(oci: &Oci, id: &str) -> serde_json::Value {
    let path = oci.root.join(id).join("state.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// As containerd's shim: a subreaper runs `create --pid-file` and `start`, and reaps the pid
/// from the file itself. Prints `status N` (Python's: -S for a signal S).
fn reap_as_the_shim(oci: &Oci, platform: &str, bundle: &Path, id: &str) -> std::process::Output {
    let script = format!(
        r#"
import ctypes, os, subprocess
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
rv = [{bin:?}, "--platform", {platform:?}, "--root", {root:?}]
subprocess.run(rv + ["create", "--bundle", {bundle:?}, "--pid-file", {pid_file:?}, {id:?}], check=True)
pid = int(open({pid_file:?}).read())
subprocess.run(rv + ["start", {id:?}], check=True)
while True:
    got, status = os.waitpid(-1, 0)
    if got == pid:
        print("status", os.waitstatus_to_exitcode(status))
        break
"#,
        bin = arg(&rvisor()),
        root = arg(&oci.root),
        bundle = arg(bundle),
        pid_file = arg(&oci.dir.join(format!("{id}.pid"))),
    );
    run_for(Command::new("python3").args(["-c", &script]), 60)
}

/// The namespaces the guest sees itself in match `/proc/<reported pid>/ns`, and none is the host's.
#[test]
fn the_reported_pid_is_in_the_containers_namespaces() {
    for platform in PLATFORMS {
        let oci = Oci::new(&format!("nspid-{platform}"));
        let kinds = ["net", "ipc", "uts", "pid", "mnt", "cgroup"];
        let script = kinds
            .iter()
            .map(|k| format!("ls -l /proc/self/ns/{k} > /tmp/{k}"))
            .collect::<Vec<_>>()
            .join("; ");
        let b = oci.bundle("b", &["sh", "-c", &format!("{script}; sleep 1000")], |_| {});
        oci.ok(&[
            "--platform",
            platform,
            "run",
            "-d",
            "--bundle",
            &arg(&b),
            "n1",
        ]);
        let pid = pid_of(&oci, "n1");
        for kind in kinds {
            let theirs = ns_link(pid, kind);
            assert_ne!(
                theirs,
                ns_link(i64::from(std::process::id()), kind),
                "{platform} {kind}"
            );
            // What the guest itself sees (its /tmp, read through the host's /proc/<pid>/root).
            let path = format!("/proc/{pid}/root/tmp/{kind}");
            wait_until(&format!("{path} to be written"), || {
                std::fs::read_to_string(&path).is_ok_and(|s| s.contains(':'))
            });
            let seen = std::fs::read_to_string(&path).unwrap();
            assert!(
                seen.trim_end().ends_with(&theirs),
                "{platform} {kind}: the guest sees {seen:?}, /proc/{pid}/ns/{kind} is {theirs}"
            );
        }
        oci.ok(&["delete", "--force", "n1"]);
    }
}

/// As containerd's shim: a subreaper runs `create --pid-file` and `start`, and reaps the pid from
/// the file itself, with the container's exit status.
#[test]
fn the_callers_reaper_gets_the_containers_exit_status() {
    for platform in PLATFORMS {
        let oci = Oci::new(&format!("reap-{platform}"));
        let b = oci.bundle("b", &["sh", "-c", "sleep 0.2; exit 7"], |_| {});
        let o = reap_as_the_shim(&oci, platform, &b, "r1");
        assert!(o.status.success(), "{platform}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "status 7", "{platform}: {}", stderr(&o));
        oci.ok(&["delete", "r1"]);
    }
}

/// A pod: the second container joins the first's network, ipc, uts, pid and user namespaces by
/// path.
#[test]
fn a_second_container_joins_the_firsts_namespaces_by_path() {
    for platform in PLATFORMS {
        let oci = Oci::new(&format!("pod-{platform}"));
        let pause = oci.bundle("pause", &["sleep", "1000"], |s| {
            s["hostname"] = "the-pod".into();
        });
        oci.ok(&[
            "--platform",
            platform,
            "run",
            "-d",
            "--bundle",
            &arg(&pause),
            "p0",
        ]);
        let pid = pid_of(&oci, "p0");
        let app = oci.bundle(
            "app",
            &[
                "sh",
                "-c",
                "hostname; ps -o comm; ls -l /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/user; exit 5",
            ],
            |s| join_namespaces_of(s, pid, &["ipc", "uts", "pid", "network", "user"]),
        );
        let o = oci.run(&["--platform", platform, "run", "--bundle", &arg(&app), "a1"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(5), "{platform}: {out}{}", stderr(&o));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"the-pod"), "{platform}: {out}");
        // The pause container's process is PID 1 of the shared pid namespace.
        assert!(lines.contains(&"sleep"), "{platform}: {out}");
        for kind in ["net", "ipc", "user"] {
            let theirs = ns_link(pid, kind);
            assert!(
                out.contains(&theirs),
                "{platform}: {kind} {theirs} not in {out}"
            );
        }
        oci.ok(&["delete", "--force", "p0"]);
    }
}

/// A namespace of the host's (the runtime's own), and a mount namespace, cannot be joined.
#[test]
fn joining_the_hosts_or_a_mount_namespace_is_refused_with_one_line() {
    let oci = Oci::new("nsrefuse");
    for (kind, path, says) in [
        ("pid", "/proc/self/ns/pid", "is the host's own"),
        ("ipc", "/proc/self/ns/ipc", "is the host's own"),
        ("mount", "/proc/self/ns/mnt", "joining the mount namespace"),
        ("user", "/proc/self/ns/user", "is the host's own"),
    ] {
        let b = oci.bundle(kind, &["true"], |s| {
            let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != kind);
            ns.push(serde_json::json!({"type": kind, "path": path}));
        });
        let o = oci.run(&["create", "--bundle", &arg(&b), kind]);
        assert_eq!(o.status.code(), Some(1), "{kind}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{kind}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
        assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
    }
}

/// The container's process is not the sentry's child any more: it must still die with the
/// sentry or the gofer, on both platforms.
#[test]
fn a_container_dies_with_its_sentry_or_its_gofer() {
    for platform in PLATFORMS {
        for victim in ["sentry_pid", "gofer_pid"] {
            let oci = Oci::new(&format!("die-{platform}-{victim}"));
            let b = oci.bundle("b", &["sleep", "1000"], |_| {});
            oci.ok(&[
                "--platform",
                platform,
                "run",
                "-d",
                "--bundle",
                &arg(&b),
                "d1",
            ]);
            let record = record(&oci, "d1");
            let pid = record["pid"].as_i64().unwrap();
            let target = record[victim].as_i64().unwrap();
            assert!(target > 0 && target != pid, "{record}");
            let _ = Command::new("kill")
                .args(["-9", &target.to_string()])
                .status();
            wait_until(
                &format!("{platform}: the container to die with its {victim}"),
                || {
                    std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map_or(true, |s| s.contains(") Z"))
                },
            );
            assert_eq!(oci.status("d1"), "stopped");
            oci.ok(&["delete", "d1"]);
        }
    }
}

/// The container's process, not the sentry's child, is watched through ptrace. A thread other
/// than the leader that execs becomes the leader: the exit status must still arrive, and the
/// process must still die with its sandbox (here both sentry and gofer are killed at once,
/// which only the trace's kill-on-exit answers).
#[test]
fn a_thread_that_execs_stays_watched_and_dies_with_the_sandbox() {
    let probe = rvisor_tests::compile_c_static(
        "thread-exec",
        r#"
#include <pthread.h>
#include <unistd.h>
static char *cmd;
static void *run(void *a) {
    (void)a;
    char *argv[] = {"/bin/sh", "-c", cmd, 0};
    execv("/bin/sh", argv);
    return 0;
}
int main(int argc, char **argv) {
    pthread_t t;
    cmd = argc > 1 ? argv[1] : "exit 9";
    pthread_create(&t, 0, run, 0);
    pause();
    return 0;
}
"#,
    );
    for platform in PLATFORMS {
        let oci = Oci::new(&format!("texec-{platform}"));
        let with_probe = |name: &str, cmd: &str| {
            let b = oci.bundle(name, &["/bin/thread-exec", cmd], |_| {});
            std::fs::copy(&probe, b.join("rootfs/bin/thread-exec")).unwrap();
            b
        };
        let b = with_probe("quick", "sleep 0.2; exit 9");
        oci.ok(&[
            "--platform",
            platform,
            "run",
            "-d",
            "--bundle",
            &arg(&b),
            "t1",
        ]);
        assert_eq!(
            oci.run(&["wait", "t1"]).status.code(),
            Some(9),
            "{platform}"
        );
        oci.ok(&["delete", "t1"]);
        let b = with_probe("long", "sleep 1000");
        oci.ok(&[
            "--platform",
            platform,
            "run",
            "-d",
            "--bundle",
            &arg(&b),
            "t2",
        ]);
        let record = record(&oci, "t2");
        let pid = record["pid"].as_i64().unwrap();
        wait_until("the thread's exec", || {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("sleep"))
        });
        let sentry = record["sentry_pid"].as_i64().unwrap().to_string();
        let gofer = record["gofer_pid"].as_i64().unwrap().to_string();
        let _ = Command::new("kill").args(["-9", &sentry, &gofer]).status();
        wait_until(
            &format!("{platform}: the container to die with its sandbox"),
            || {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map_or(true, |s| s.contains(") Z"))
            },
        );
        oci.ok(&["delete", "t2"]);
    }
}

/// A container's PID 1 that faults dies of it, as natively (139), though traced: the kernel
/// keeps a traced namespace init immune to its own fault, which would otherwise spin forever.
#[test]
fn a_faulting_pid1_dies_of_its_signal_on_both_platforms() {
    let probe = rvisor_tests::compile_c_static(
        "segv",
        "int main(void) { *(volatile int *)0 = 1; return 0; }\n",
    );
    for platform in PLATFORMS {
        let oci = Oci::new(&format!("segv-{platform}"));
        let b = oci.bundle("b", &["/bin/segv"], |_| {});
        std::fs::copy(&probe, b.join("rootfs/bin/segv")).unwrap();
        let o = reap_as_the_shim(&oci, platform, &b, "s1");
        assert_eq!(
            stdout(&o).trim(),
            "status -11",
            "{platform}: {}",
            stderr(&o)
        );
        assert_eq!(
            oci.run(&["wait", "s1"]).status.code(),
            Some(139),
            "{platform}"
        );
        oci.ok(&["delete", "s1"]);
    }
}

/// A pod peer joins a created (not yet started) container's namespaces: the init waiting for
/// `start` runs unfiltered, so nothing in them may trace it (it is not dumpable and already
/// traced by its sentry).
#[test]
fn a_created_containers_init_cannot_be_traced_from_a_joined_namespace() {
    let probe = rvisor_tests::compile_c_static(
        "attach",
        r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
int main(void) {
    long r = ptrace(PTRACE_SEIZE, 1, 0, 0);
    printf("seize pid 1: %s\n", r == 0 ? "ATTACHED" : strerror(errno));
    return 0;
}
"#,
    );
    for platform in PLATFORMS {
        let oci = Oci::new(&format!("cattach-{platform}"));
        let first = oci.bundle("first", &["sleep", "1000"], |_| {});
        oci.ok(&[
            "--platform",
            platform,
            "create",
            "--bundle",
            &arg(&first),
            "c0",
        ]);
        let pid = pid_of(&oci, "c0");
        let peer = oci.bundle("peer", &["/bin/attach"], |s| {
            for set in ["effective", "permitted", "bounding"] {
                s["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push("CAP_SYS_PTRACE".into());
            }
            join_namespaces_of(s, pid, &["ipc", "uts", "pid"]);
        });
        std::fs::copy(&probe, peer.join("rootfs/bin/attach")).unwrap();
        let o = oci.run(&["--platform", platform, "run", "--bundle", &arg(&peer), "p1"]);
        let out = stdout(&o);
        assert!(
            out.contains("seize pid 1: "),
            "{platform}: {out}{}",
            stderr(&o)
        );
        assert!(!out.contains("ATTACHED"), "{platform}: {out}");
        oci.ok(&["delete", "--force", "c0"]);
    }
}

/// Only another rvisor container's namespaces may be joined: one a careless caller made with
/// `unshare` (owned by a user namespace that is not the host's) is refused.
#[test]
fn namespaces_not_of_a_running_rvisor_container_are_refused() {
    let oci = Oci::new("nsforeign");
    let mut holder = Command::new("unshare")
        .args(["-Uipf", "--map-root-user", "--mount-proc", "sleep", "1000"])
        .spawn()
        .expect("unshare (util-linux)");
    let mut inner = None;
    wait_until("the unshared sleep", || {
        inner = rvisor_tests::children(holder.id())
            .into_iter()
            .next()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.contains("sleep"))
            });
        inner.is_some()
    });
    let inner = inner.unwrap();
    let b = oci.bundle("b", &["true"], |s| {
        join_namespaces_of(s, inner, &["ipc", "pid"])
    });
    let o = oci.run(&["create", "--bundle", &arg(&b), "f1"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a namespace of a running rvisor container"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

/// What an app container leaves in a pod's shared pid namespace (its init's children, not
/// killed with it: PID 1 is the pause container's) is still the container's: `kill --all` on
/// the stopped container reaches it, as containerd's shim relies on, and `delete` removes it
/// and the cgroup.
#[test]
fn leftovers_in_a_shared_pid_namespace_are_killed_and_deleted() {
    let oci = Oci::new("leftover");
    let pause = oci.bundle("pause", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &arg(&pause), "p0"]);
    let pid = pid_of(&oci, "p0");
    let app = oci.bundle("app", &["sh", "-c", "sleep 777 & sleep 0.5; exit 3"], |s| {
        join_namespaces_of(s, pid, &["ipc", "uts", "pid"])
    });
    oci.ok(&["run", "-d", "--bundle", &arg(&app), "a1"]);
    assert_eq!(oci.run(&["wait", "a1"]).status.code(), Some(3));
    let left = rvisor_tests::processes_matching("sleep 777");
    assert!(!left.is_empty(), "the app's child should outlive its init");
    oci.ok(&["kill", "--all", "a1", "KILL"]);
    wait_until("kill --all to reach the leftover", || {
        rvisor_tests::processes_matching("sleep 777").is_empty()
    });
    oci.ok(&["delete", "a1"]);
    // Again, for delete alone.
    oci.ok(&["run", "-d", "--bundle", &arg(&app), "a2"]);
    assert_eq!(oci.run(&["wait", "a2"]).status.code(), Some(3));
    assert!(!rvisor_tests::processes_matching("sleep 777").is_empty());
    oci.ok(&["delete", "a2"]);
    assert!(rvisor_tests::processes_matching("sleep 777").is_empty());
    oci.ok(&["delete", "--force", "p0"]);
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

/// A created container whose init is killed before `start`: the sentry notices, and `delete`
/// succeeds at once, leaving nothing.
#[test]
fn an_init_killed_while_created_takes_its_sandbox_with_it() {
    for platform in PLATFORMS {
        let oci = Oci::new(&format!("killcreated-{platform}"));
        let b = oci.bundle("b", &["true"], |_| {});
        oci.ok(&["--platform", platform, "create", "--bundle", &arg(&b), "k1"]);
        let record = record(&oci, "k1");
        let sentry = record["sentry_pid"].as_i64().unwrap();
        let _ = Command::new("kill")
            .args(["-9", &record["pid"].as_i64().unwrap().to_string()])
            .status();
        wait_until(&format!("{platform}: the sentry to end"), || {
            std::fs::read_to_string(format!("/proc/{sentry}/stat"))
                .map_or(true, |s| s.contains(") Z"))
        });
        oci.ok(&["delete", "k1"]);
        assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
    }
}
