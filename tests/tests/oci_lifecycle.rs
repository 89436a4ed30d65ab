//! OCI lifecycle: every sequence a runtime user (or containerd's shim) drives, and every call
//! the state does not allow, on real containers built from busybox-static.

use rvisor_tests::{pipe_with, stderr, stdout, Oci};

fn bundle_arg(b: &std::path::Path) -> String {
    b.display().to_string()
}

#[test]
fn create_start_wait_delete() {
    let oci = Oci::new("seq");
    let b = oci.bundle("b", &["sh", "-c", "echo out; exit 3"], |s| {
        s["annotations"] = serde_json::json!({"org.example.k": "v"});
    });
    oci.ok(&["create", "--bundle", &bundle_arg(&b), "c1"]);
    let st = oci.state("c1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], "c1");
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(st["bundle"], bundle_arg(&b));
    assert_eq!(st["annotations"]["org.example.k"], "v");
    let pid = st["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    oci.ok(&["start", "c1"]);
    let waited = oci.run(&["wait", "c1"]);
    assert_eq!(waited.status.code(), Some(3), "{}", stderr(&waited));
    let st = oci.state("c1");
    assert_eq!(st["status"], "stopped");
    assert!(st.get("pid").is_none());
    assert_eq!(st["annotations"]["io.github.rvisor.exit-status"], "3");
    oci.ok(&["delete", "c1"]);
    let gone = oci.run(&["state", "c1"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn run_returns_the_exit_status_and_output() {
    let oci = Oci::new("run");
    let b = oci.bundle("b", &["sh", "-c", "hostname; echo $MARK; exit 7"], |s| {
        s["hostname"] = "boxname".into();
        s["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("MARK=marked".into());
    });
    let o = oci.run(&["run", "--bundle", &bundle_arg(&b), "r1"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "boxname\nmarked\n");
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn wrong_state_calls_fail_with_one_line_and_change_nothing() {
    let oci = Oci::new("wrong");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    let bs = bundle_arg(&b);
    oci.ok(&["create", "--bundle", &bs, "w1"]);
    let refuse = |args: &[&str], what: &str| {
        let o = oci.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(what), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    };
    // created: no pause, resume, exec, second create.
    refuse(&["pause", "w1"], "is created: cannot pause");
    refuse(&["resume", "w1"], "is created: cannot resume");
    refuse(&["exec", "w1", "true"], "is created: cannot exec");
    refuse(&["create", "--bundle", &bs, "w1"], "already exists");
    assert_eq!(oci.status("w1"), "created");
    oci.ok(&["start", "w1"]);
    // running: no start, resume, delete without force.
    refuse(&["start", "w1"], "is running: cannot start");
    refuse(&["resume", "w1"], "is running: cannot resume");
    refuse(&["delete", "w1"], "cannot delete without --force");
    assert_eq!(oci.status("w1"), "running");
    oci.ok(&["pause", "w1"]);
    assert_eq!(oci.status("w1"), "paused");
    refuse(&["pause", "w1"], "is paused: cannot pause");
    refuse(&["exec", "w1", "true"], "is paused: cannot exec");
    oci.ok(&["resume", "w1"]);
    assert_eq!(oci.status("w1"), "running");
    oci.ok(&["kill", "w1", "KILL"]);
    assert_eq!(oci.run(&["wait", "w1"]).status.code(), Some(137));
    // stopped: no start, kill, pause, exec.
    refuse(&["start", "w1"], "is stopped: cannot start");
    // runc's words, which containerd's shim matches; `kill --all` has nothing to do and succeeds.
    refuse(&["kill", "w1", "9"], "container not running");
    oci.ok(&["kill", "--all", "w1", "9"]);
    refuse(&["pause", "w1"], "is stopped: cannot pause");
    refuse(&["exec", "w1", "true"], "is stopped: cannot exec");
    oci.ok(&["delete", "w1"]);
    // missing containers and bad ids.
    refuse(&["start", "nope"], "does not exist");
    refuse(&["kill", "nope"], "does not exist");
    refuse(&["delete", "nope"], "does not exist");
    oci.ok(&["delete", "--force", "nope"]);
    refuse(&["create", "--bundle", &bs, "a/b"], "invalid container id");
    refuse(&["create", "--bundle", &bs, "../x"], "invalid container id");
    let o = oci.run(&["kill", "w1x", "NOSUCHSIG"]);
    assert!(
        stderr(&o).contains("unknown signal \"NOSUCHSIG\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn a_bad_bundle_is_a_clear_error_and_leaves_nothing() {
    let oci = Oci::new("badbundle");
    let empty = oci.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = oci.run(&["create", "--bundle", &bundle_arg(&empty), "b1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    let b = oci.bundle("b", &["/bin/no-such-program"], |_| {});
    let o = oci.run(&["create", "--bundle", &bundle_arg(&b), "b2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    // A process that cannot start is refused at create, as runc does, not started to exit 126.
    let b = oci.bundle("d", &["/bin"], |_| {});
    let o = oci.run(&["create", "--bundle", &bundle_arg(&b), "b4"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
    let b = oci.bundle("r", &["true"], |s| {
        s["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 100}]);
    });
    let o = oci.run(&["create", "--bundle", &bundle_arg(&b), "b5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("soft 100 above hard 1"),
        "{}",
        stderr(&o)
    );
    // A memory limit too small for the sandbox: the OOM killer ends it during setup, and the
    // error says so rather than only that it died.
    let b = oci.bundle("m", &["true"], |s| {
        s["linux"]["resources"]["memory"] = serde_json::json!({"limit": 1});
    });
    let o = oci.run(&["create", "--bundle", &bundle_arg(&b), "b6"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("memory limit"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    let b = oci.bundle("j", &["true"], |s| {
        s["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/x", "type": "nfs", "source": "srv:/x"}));
    });
    let o = oci.run(&["create", "--bundle", &bundle_arg(&b), "b3"]);
    assert!(
        stderr(&o).contains("unsupported: mount type \"nfs\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
    let o = oci.run(&["--systemd-cgroup", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--systemd-cgroup is not supported"));
}

/// As runc: a signal that ends a process stops a created container (its process never runs), and
/// `delete --force` kills a running one at once.
#[test]
fn kill_stops_a_created_container_and_delete_force_kills_at_once() {
    let oci = Oci::new("killcreated");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    oci.ok(&["create", "--bundle", &bundle_arg(&b), "k1"]);
    oci.ok(&["kill", "k1", "KILL"]);
    assert_eq!(oci.status("k1"), "stopped");
    oci.ok(&["delete", "k1"]);
    // delete --force sends no TERM first: a PID 1 that records every TERM in a bound host
    // directory (and carries on) has recorded none.
    let marks = oci.dir.join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let t = oci.bundle(
        "t",
        &[
            "sh",
            "-c",
            "trap 'echo term >> /mnt/marks/got' TERM; touch /mnt/marks/up; \
             while true; do sleep 0.05; done",
        ],
        |s| {
            s["mounts"].as_array_mut().unwrap().push(serde_json::json!({
                "destination": "/mnt/marks", "type": "bind",
                "source": marks.display().to_string(), "options": ["rbind", "rw"]
            }));
        },
    );
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&t), "k2"]);
    rvisor_tests::wait_until("the trap to be set", || marks.join("up").exists());
    oci.ok(&["delete", "--force", "k2"]);
    assert!(
        !marks.join("got").exists(),
        "delete --force sent TERM first"
    );
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn concurrent_creates_of_one_id_admit_exactly_one() {
    let oci = Oci::new("race");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    let bs = bundle_arg(&b);
    let children: Vec<_> = (0..6)
        .map(|_| {
            oci.cmd(["create", "--bundle", &bs, "same"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    assert_eq!(oci.status("same"), "created");
    oci.ok(&["delete", "same"]);
}

#[test]
fn term_reaches_a_process_with_a_handler_and_pid1_semantics_hold() {
    let oci = Oci::new("term");
    let b = oci.bundle(
        "h",
        &[
            "sh",
            "-c",
            "trap 'exit 9' TERM; while true; do sleep 0.05; done",
        ],
        |_| {},
    );
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "t1"]);
    // The shell may not have installed its trap when `run -d` returns (PID 1 ignores a TERM it
    // has no handler for): send it until the container stops.
    rvisor_tests::wait_until("the container to stop on TERM", || {
        let _ = oci.run(&["kill", "t1", "TERM"]);
        oci.status("t1") == "stopped"
    });
    assert_eq!(oci.run(&["wait", "t1"]).status.code(), Some(9));
    oci.ok(&["delete", "t1"]);
    // A PID 1 without a handler ignores TERM; with --init the reaper forwards it.
    let plain = oci.bundle("p", &["sleep", "1000"], |_| {});
    oci.ok(&["--init", "run", "-d", "--bundle", &bundle_arg(&plain), "t2"]);
    oci.ok(&["kill", "t2", "SIGTERM"]);
    assert_eq!(oci.run(&["wait", "t2"]).status.code(), Some(143));
    oci.ok(&["delete", "t2"]);
}

#[test]
fn delete_force_stops_a_running_container_and_kill_all_reaches_every_process() {
    let oci = Oci::new("force");
    let b = oci.bundle("b", &["sh", "-c", "sleep 1000 & sleep 1000 & wait"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "f1"]);
    let pids: Vec<i64> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", "f1"])).unwrap();
    rvisor_tests::wait_until("three guest processes", || {
        let p: Vec<i64> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", "f1"])).unwrap();
        p.len() == 3
    });
    let table = oci.ok(&["ps", "f1"]);
    assert!(table.contains("sleep 1000"), "{table}");
    oci.ok(&["kill", "--all", "f1", "KILL"]);
    assert_eq!(oci.run(&["wait", "f1"]).status.code(), Some(137));
    oci.ok(&["delete", "f1"]);
    // The container's process is `run -d`'s child, as with runc: once that exits, the host's
    // init (or the caller's subreaper) reaps it.
    rvisor_tests::wait_until("every guest process to be reaped", || {
        pids.iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "f2"]);
    let sentry = oci.state("f2")["pid"].as_i64().unwrap();
    oci.ok(&["delete", "--force", "f2"]);
    // Gone, once the host's init has reaped it (it was orphaned by `run -d`).
    rvisor_tests::wait_until("the sentry to be reaped", || {
        !std::path::Path::new(&format!("/proc/{sentry}")).exists()
    });
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn list_and_state_report_every_container() {
    let oci = Oci::new("list");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    oci.ok(&["create", "--bundle", &bundle_arg(&b), "l1"]);
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "l2"]);
    let list: serde_json::Value =
        serde_json::from_str(&oci.ok(&["list", "--format", "json"])).unwrap();
    let statuses: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("l1".into(), "created".into()),
            ("l2".into(), "running".into())
        ]
    );
    let table = oci.ok(&["list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("l2") && table.contains("running"), "{table}");
    assert_eq!(oci.ok(&["list", "-q"]), "l1\nl2\n");
    oci.ok(&["delete", "l1"]);
    oci.ok(&["delete", "--force", "l2"]);
}

#[test]
fn exec_runs_in_the_container_with_its_status_identity_and_pid_file() {
    let oci = Oci::new("exec");
    let b = oci.bundle("b", &["sleep", "1000"], |s| s["hostname"] = "inside".into());
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "e1"]);
    let o = oci.run(&[
        "exec",
        "e1",
        "sh",
        "-c",
        "hostname; ps -o comm | grep -c '^sleep'; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stdout(&o), "inside\n1\n");
    let o = oci.run(&["exec", "-u", "1000:1000", "-g", "44", "e1", "id"]);
    assert_eq!(
        stdout(&o),
        "uid=1000 gid=1000 groups=44\n",
        "{}",
        stderr(&o)
    );
    // --process, detached, with a pid file: the pid exits with the process's status.
    let process = oci.dir.join("process.json");
    std::fs::write(
        &process,
        r#"{"args":["sh","-c","exit 6"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"]}"#,
    )
    .unwrap();
    let pid_file = oci.dir.join("exec.pid");
    oci.ok(&[
        "exec",
        "--process",
        &process.display().to_string(),
        "--detach",
        "--pid-file",
        &pid_file.display().to_string(),
        "e1",
    ]);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    rvisor_tests::wait_until("the exec'd process to end", || {
        !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
    });
    let o = oci.run(&["exec", "e1", "/bin/nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    oci.ok(&["delete", "--force", "e1"]);
}

#[test]
fn events_report_cgroup_and_sentry_figures() {
    let oci = Oci::new("events");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "v1"]);
    let ev: serde_json::Value =
        serde_json::from_str(&oci.ok(&["events", "--stats", "v1"])).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{ev}"
    );
    // The guest's one task, as with runc: the sentry and the gofer are not counted.
    assert_eq!(ev["data"]["pids"]["current"], 1, "{ev}");
    // `start` is answered once the init lets go of its report socket, just before its exec: the
    // first trapped call may come a moment later.
    let trapped = || -> u64 {
        let ev: serde_json::Value =
            serde_json::from_str(&oci.ok(&["events", "--stats", "v1"])).unwrap();
        ev["data"]["rvisor"]["trapped"].as_u64().unwrap()
    };
    rvisor_tests::wait_until("the sentry to serve a call", || trapped() > 0);
    let before = trapped();
    // An exec'd process is served by a sentry of its own; its traps count too.
    oci.ok(&["exec", "v1", "id"]);
    let ev: serde_json::Value =
        serde_json::from_str(&oci.ok(&["events", "--stats", "v1"])).unwrap();
    assert!(
        ev["data"]["rvisor"]["trapped"].as_u64().unwrap() > before,
        "{ev}"
    );
    assert!(oci.run(&["events", "--interval", "0s", "v1"]).status.code() == Some(2));
    oci.ok(&["delete", "--force", "v1"]);
}

#[test]
fn spec_and_features_describe_the_runtime() {
    let oci = Oci::new("spec");
    let dir = oci.dir.join("s");
    std::fs::create_dir_all(&dir).unwrap();
    oci.ok(&["spec", "--bundle", &dir.display().to_string()]);
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"][0], "sh");
    let again = oci.run(&["spec", "--bundle", &dir.display().to_string()]);
    assert!(stderr(&again).contains("already exists"));
    let rl = oci.dir.join("r");
    std::fs::create_dir_all(&rl).unwrap();
    oci.ok(&["spec", "--rootless", "--bundle", &rl.display().to_string()]);
    let spec = std::fs::read_to_string(rl.join("config.json")).unwrap();
    assert!(spec.contains("uidMappings"), "{spec}");
    let f: serde_json::Value = serde_json::from_str(&oci.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert!(oci.ok(&["--version"]).starts_with("rvisor "));
}

#[test]
fn containers_run_on_the_ptrace_platform_and_refuse_exec_clearly() {
    let oci = Oci::new("ptrace");
    let b = oci.bundle(
        "b",
        &[
            "sh",
            "-c",
            "hostname; ls /proc/self/fd; echo made > /tmp/f; cat /tmp/f; sleep 1000",
        ],
        |s| s["hostname"] = "traced".into(),
    );
    let bs = bundle_arg(&b);
    oci.ok(&["--platform=ptrace", "create", "--bundle", &bs, "p1"]);
    oci.ok(&["start", "p1"]);
    assert_eq!(oci.status("p1"), "running");
    let exec = oci.run(&["exec", "p1", "true"]);
    assert_eq!(exec.status.code(), Some(1));
    assert!(
        stderr(&exec).contains("ptrace platform"),
        "{}",
        stderr(&exec)
    );
    oci.ok(&["kill", "p1", "KILL"]);
    let waited = oci.run(&["wait", "p1"]);
    assert_eq!(waited.status.code(), Some(137), "{}", stderr(&waited));
    oci.ok(&["delete", "p1"]);
    let o = oci.run(&[
        "--platform=ptrace",
        "run",
        "--bundle",
        &bundle_arg(&oci.bundle(
            "r",
            &["sh", "-c", "hostname; ls /proc/self/fd; exit 4"],
            |s| {
                s["hostname"] = "traced".into();
            },
        )),
        "p2",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // The listing is the process's own: stdio and the directory read, no reserved socket.
    assert_eq!(stdout(&o), "traced\n0\n1\n2\n3\n");
}

/// A writable root under `--overlay=memory` is bounded by `io.github.rvisor.overlay-size` (the
/// process gets ENOSPC and goes on), and its pages are charged to the container's memory cgroup.
#[test]
fn a_writable_root_is_bounded_and_charged_to_the_container() {
    let oci = Oci::new("ovsize");
    let writable = |size: &str| {
        let size = size.to_string();
        move |s: &mut serde_json::Value| {
            s["root"]["readonly"] = false.into();
            s["annotations"] = serde_json::json!({"io.github.rvisor.overlay-size": size});
            s["linux"]["resources"] = serde_json::json!({"memory": {"limit": 256 << 20}});
        }
    };
    let script = "dd if=/dev/zero of=/root/f bs=1048576 count=100 2>&1; echo dd=$?; \
                  rm /root/f && echo small > /root/s && cat /root/s; exit 4";
    let b = oci.bundle("b", &["sh", "-c", script], writable("32m"));
    let o = oci.run(&["--overlay=memory", "run", "--bundle", &bundle_arg(&b), "o1"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{out}{}", stderr(&o));
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("dd=1\n") && out.ends_with("small\n"), "{out}");

    let b = oci.bundle(
        "c",
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/root/f bs=1048576 count=24 && sleep 60",
        ],
        writable("64m"),
    );
    oci.ok(&[
        "--overlay=memory",
        "run",
        "-d",
        "--bundle",
        &bundle_arg(&b),
        "o2",
    ]);
    let stats = [
        "/sys/fs/cgroup/memory/rvisor/o2/memory.stat",
        "/sys/fs/cgroup/rvisor/o2/memory.stat",
    ];
    let shmem = || {
        stats
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| l.strip_prefix("shmem ")?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .next()
            .unwrap_or(0)
    };
    rvisor_tests::wait_until("the overlay's pages in the container's cgroup", || {
        shmem() >= 24 << 20
    });
    oci.ok(&["delete", "--force", "o2"]);

    let b = oci.bundle("d", &["true"], writable("200%"));
    let o = oci.run(&[
        "--overlay=memory",
        "create",
        "--bundle",
        &bundle_arg(&b),
        "o3",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("io.github.rvisor.overlay-size"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

/// `rvisor <args>` with `fds` (number -> fd) left open, as a careless shim would leave them.
fn with_leaked_fds(
    oci: &Oci,
    args: &[&str],
    fds: Vec<(i32, std::os::fd::OwnedFd)>,
) -> std::process::Output {
    let mut cmd = oci.cmd(args);
    rvisor_tests::leave_open(&mut cmd, fds);
    rvisor_tests::run_for(&mut cmd, 120)
}

fn leaked(oci: &Oci) -> Vec<(i32, std::os::fd::OwnedFd)> {
    vec![
        (5, std::fs::File::open(&oci.dir).unwrap().into()),
        (9, pipe_with("LEAKED")),
        (100, std::fs::File::open("/").unwrap().into()),
    ]
}

/// The fd numbers `ls /proc/self/fd` printed (ls's own directory fd among them).
fn listed(out: &str) -> Vec<String> {
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn only_stdio_and_preserved_fds_reach_a_container_and_an_exec() {
    let oci = Oci::new("fds");
    let b = oci.bundle("b", &["ls", "/proc/self/fd"], |_| {});
    let o = with_leaked_fds(
        &oci,
        &["run", "--bundle", &bundle_arg(&b), "f1"],
        leaked(&oci),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let fds = listed(&stdout(&o));
    for n in ["5", "9", "100"] {
        assert!(!fds.contains(&n.to_string()), "fd {n} leaked: {fds:?}");
    }
    // --preserve-fds 1: fd 3 crosses, the others still do not.
    let b = oci.bundle("p", &["sh", "-c", "cat <&3; ls /proc/self/fd"], |_| {});
    let mut fds = leaked(&oci);
    fds.push((3, pipe_with("KEPT\n")));
    let o = with_leaked_fds(
        &oci,
        &[
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            &bundle_arg(&b),
            "f2",
        ],
        fds,
    );
    let out = stdout(&o);
    assert!(out.starts_with("KEPT\n"), "{out}\n{}", stderr(&o));
    let fds = listed(&out);
    for n in ["5", "9", "100"] {
        assert!(!fds.contains(&n.to_string()), "fd {n} leaked: {fds:?}");
    }
    // exec: the same rules.
    let b = oci.bundle("e", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "f3"]);
    let o = with_leaked_fds(&oci, &["exec", "f3", "ls", "/proc/self/fd"], leaked(&oci));
    let fds = listed(&stdout(&o));
    assert!(
        o.status.success() && fds.contains(&"2".to_string()),
        "{}",
        stderr(&o)
    );
    for n in ["5", "9", "100"] {
        assert!(
            !fds.contains(&n.to_string()),
            "exec: fd {n} leaked: {fds:?}"
        );
    }
    let o = with_leaked_fds(
        &oci,
        &["exec", "--preserve-fds", "1", "f3", "sh", "-c", "cat <&3"],
        vec![(3, pipe_with("EXEC-KEPT"))],
    );
    assert_eq!(stdout(&o), "EXEC-KEPT", "{}", stderr(&o));
    oci.ok(&["delete", "--force", "f3"]);
}

/// A container's process and an exec'd one start with default dispositions (SIGPIPE kills
/// `yes`), as under runc: nothing rvisor ignores (SIGPIPE, and glibc's 32 and 33) is inherited.
/// (busybox's `sh` ignores SIGQUIT itself, natively too.)
#[test]
fn container_and_exec_processes_start_with_default_signal_dispositions() {
    let leaked = |out: &str| {
        let hex = out
            .trim()
            .strip_prefix("SigIgn:\t")
            .unwrap_or("ffffffffffffffff");
        u64::from_str_radix(hex, 16).unwrap_or(u64::MAX) & 0x1_8000_1000
    };
    let oci = Oci::new("sigdfl");
    let b = oci.bundle("b", &["sh", "-c", "grep SigIgn /proc/self/status"], |_| {});
    let o = oci.run(&["run", "--bundle", &bundle_arg(&b), "s1"]);
    assert_eq!(leaked(&stdout(&o)), 0, "{}{}", stdout(&o), stderr(&o));
    let b = oci.bundle("e", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "s2"]);
    let o = oci.run(&["exec", "s2", "sh", "-c", "grep SigIgn /proc/self/status"]);
    assert_eq!(leaked(&stdout(&o)), 0, "{}{}", stdout(&o), stderr(&o));
    oci.ok(&["delete", "--force", "s2"]);
}

/// Docker's state layout (`.../runtime-runc/moby/<64 hex>/`) puts the control socket past the
/// 108 bytes of `sun_path`: create, start, exec, events and delete still work.
#[test]
fn a_state_path_longer_than_sun_path_works() {
    let oci = Oci::new(&"deep-state-directory".repeat(3));
    let id = "0123456789abcdef".repeat(4);
    let socket = oci.root.join(&id).join("control.sock");
    assert!(socket.as_os_str().len() > 108, "{}", socket.display());
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    oci.ok(&["create", "--bundle", &bundle_arg(&b), &id]);
    oci.ok(&["start", &id]);
    assert_eq!(oci.ok(&["exec", &id, "echo", "inside"]), "inside\n");
    let events = oci.ok(&["events", "--stats", &id]);
    assert!(events.contains("\"type\":\"stats\""), "{events}");
    oci.ok(&["delete", "--force", &id]);
}

/// A process `rvisor exec` adds is held by Landlock like the container's own: its stdout, a
/// host file outside the rootfs handed write-only, does not reopen for reading through
/// `/proc/self/fd/1` (an open for reading runs natively, so only the kernel can refuse it).
#[test]
fn an_execd_process_cannot_reopen_its_host_stdout_for_reading() {
    let oci = Oci::new("exec-landlock");
    let b = oci.bundle("b", &["sleep", "1000"], |_| {});
    oci.ok(&["run", "-d", "--bundle", &bundle_arg(&b), "x1"]);
    let o = oci.run(&[
        "exec",
        "x1",
        "sh",
        "-c",
        "echo EARLIER; (exec 5</proc/self/fd/1 && echo OPENED) 2>/dev/null || echo DENIED",
    ]);
    assert_eq!(stdout(&o), "EARLIER\nDENIED\n", "{}", stderr(&o));
    oci.ok(&["delete", "--force", "x1"]);
}
