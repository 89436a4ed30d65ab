//! What the spec asks of a container: cgroup limits (OOM and pids), hooks, seccomp, rlimits,
//! masked paths, mounts, a console socket; and that 200 run/delete cycles leave nothing behind.

use std::path::Path;

use rvisor_tests::{stderr, stdout, Oci};

fn arg(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_memory_hog_is_oom_killed_and_reported() {
    let oci = Oci::new("oom");
    let limit = 64 * 1024 * 1024;
    let b = oci.bundle(
        "b",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
        |s| {
            s["linux"]["resources"] =
                serde_json::json!({"memory": {"limit": limit, "swap": limit}});
        },
    );
    oci.ok(&["create", "--bundle", &arg(&b), "m1"]);
    let cg = "/sys/fs/cgroup/memory/rvisor/m1/memory.limit_in_bytes";
    let v2 = "/sys/fs/cgroup/rvisor/m1/memory.max";
    let set = std::fs::read_to_string(cg)
        .or_else(|_| std::fs::read_to_string(v2))
        .unwrap();
    assert_eq!(set.trim(), limit.to_string());
    oci.ok(&["start", "m1"]);
    assert_eq!(oci.run(&["wait", "m1"]).status.code(), Some(137));
    let st = oci.state("m1");
    assert_eq!(
        st["annotations"]["io.github.rvisor.oom-killed"], "true",
        "{st}"
    );
    let ev = oci.ok(&["events", "m1"]);
    assert!(ev.lines().any(|l| l.contains(r#""type":"oom""#)), "{ev}");
    oci.ok(&["delete", "m1"]);
    assert!(!Path::new(cg).exists() && !Path::new(v2).exists());
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let oci = Oci::new("pids");
    let b = oci.bundle(
        "b",
        &["sh", "-c", "while true; do sleep 1000 & done"],
        |s| s["linux"]["resources"] = serde_json::json!({"pids": {"limit": 40}}),
    );
    let err_file = oci.dir.join("bomb.err");
    let created = oci
        .cmd(["create", "--bundle", &arg(&b), "p1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .status()
        .unwrap();
    assert!(created.success());
    let ev: serde_json::Value =
        serde_json::from_str(&oci.ok(&["events", "--stats", "p1"])).unwrap();
    assert_eq!(ev["data"]["pids"]["limit"], 40);
    oci.ok(&["start", "p1"]);
    // The shell dies on its first failed fork; the limit held it (the kernel counted the
    // refusals).
    let code = oci.run(&["wait", "p1"]).status.code();
    assert_ne!(code, Some(0));
    let events = [
        "/sys/fs/cgroup/pids/rvisor/p1/pids.events",
        "/sys/fs/cgroup/rvisor/p1/pids.events",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .unwrap();
    let refused: u64 = events.trim().strip_prefix("max ").unwrap().parse().unwrap();
    assert!(refused >= 1, "{events}");
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert!(err.contains("can't fork"), "{err}");
    oci.ok(&["delete", "p1"]);
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let oci = Oci::new("hooks");
    let log_dir = oci.dir.join("hooklog");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = log_dir.join("log");
    let hook = |kind: &str, file: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("read -r state; echo \"{kind} $state\" >> {file}")],
            "timeout": 10
        })
    };
    let host = arg(&log);
    let b = oci.bundle("b", &["true"], |s| {
        s["hooks"] = serde_json::json!({
            "prestart": [hook("prestart", &host)],
            "createRuntime": [hook("createRuntime", &host)],
            "createContainer": [hook("createContainer", &host)],
            "startContainer": [hook("startContainer", "/hooklog/log")],
            "poststart": [hook("poststart", &host)],
            "poststop": [hook("poststop", &host)],
        });
        s["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/hooklog", "type": "bind", "source": arg(&log_dir),
            "options": ["rbind", "rw"]}));
    });
    let o = oci.run(&["run", "--bundle", &arg(&b), "h1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    let kinds: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    for line in text.lines() {
        let state: serde_json::Value =
            serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(state["id"], "h1", "{line}");
    }
    // A failing createRuntime hook fails create and leaves nothing.
    let bad = oci.bundle("bad", &["true"], |s| {
        s["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]});
    });
    let o = oci.run(&["create", "--bundle", &arg(&bad), "h2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("hook /bin/false failed"),
        "{}",
        stderr(&o)
    );
    let slow = oci.bundle("slow", &["true"], |s| {
        s["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "100"], "timeout": 1}]});
    });
    let o = oci.run(&["create", "--bundle", &arg(&slow), "h3"]);
    assert!(stderr(&o).contains("timed out after 1s"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
}

#[test]
fn the_spec_shapes_the_process() {
    let oci = Oci::new("shape");
    let data = oci.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "from-host\n").unwrap();
    let script = "ulimit -n; cat /proc/kcore | wc -c; cat /data/f; echo x > /data/g; \
                  mkdir /tmp/d 2>&1; echo x > /scratch/y && cat /scratch/y; \
                  grep CapEff /proc/self/status; uname -n; pwd";
    let b = oci.bundle("b", &["sh", "-c", script], |s| {
        s["process"]["cwd"] = "/tmp".into();
        s["hostname"] = "shaped".into();
        s["mounts"].as_array_mut().unwrap().extend([
            serde_json::json!({"destination": "/data", "type": "bind", "source": arg(&data), "options": ["rbind", "ro"]}),
            // Propagation flags (Kubernetes' mountPropagation) are accepted, as by runc.
            serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "rshared", "size=1m"]}),
            serde_json::json!({"destination": "/scratch2", "type": "tmpfs", "source": "tmpfs", "options": ["slave", "nodiratime"]}),
        ]);
        s["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let o = oci.run(&["run", "--bundle", &arg(&b), "s1"]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1024", "{out}\n{}", stderr(&o));
    assert_eq!(lines[1], "0", "masked /proc/kcore: {out}");
    assert_eq!(lines[2], "from-host");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(
        lines[3].contains("Operation not permitted"),
        "seccomp: {out}"
    );
    assert_eq!(lines[4], "x");
    // runc's default: CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE.
    assert!(lines[5].ends_with("0000000020000420"), "{out}");
    assert_eq!(&lines[6..], ["shaped", "/tmp"]);
    assert!(!data.join("g").exists());
}

#[test]
fn a_terminal_goes_to_the_console_socket() {
    let oci = Oci::new("console");
    let sock = oci.dir.join("console.sock");
    // The receiving end, as containerd's shim does it: accept, take the fd, read to EOF.
    let receiver = format!(
        "import socket,os\ns=socket.socket(socket.AF_UNIX)\ns.bind('{}')\ns.listen(1)\nprint('ready',flush=True)\n\
         c,_=s.accept()\nmsg,fds,_,_=socket.recv_fds(c,1024,1)\nm=fds[0]\nout=b''\n\
         while True:\n  try:\n    d=os.read(m,4096)\n  except OSError:\n    break\n  if not d: break\n  out+=d\n\
         print(msg.decode(), out.decode().replace('\\r',''))",
        sock.display()
    );
    let mut py = std::process::Command::new("python3")
        .args(["-c", &receiver])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(py.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    let b = oci.bundle("b", &["sh", "-c", "tty; echo on-the-pty"], |s| {
        s["process"]["terminal"] = true.into();
    });
    oci.ok(&[
        "create",
        "--bundle",
        &arg(&b),
        "--console-socket",
        &arg(&sock),
        "t1",
    ]);
    oci.ok(&["start", "t1"]);
    assert_eq!(oci.run(&["wait", "t1"]).status.code(), Some(0));
    oci.ok(&["delete", "t1"]);
    let out = py.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/dev/pts/0") && text.contains("on-the-pty"),
        "{text}"
    );
    let o = oci.run(&["create", "--bundle", &arg(&b), "t2"]);
    assert!(
        stderr(&o).contains("--console-socket is required"),
        "{}",
        stderr(&o)
    );
}

fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

fn cgroup_dirs() -> usize {
    [
        "/sys/fs/cgroup/memory/rvisor",
        "/sys/fs/cgroup/pids/rvisor",
        "/sys/fs/cgroup/devices/rvisor",
        "/sys/fs/cgroup/rvisor",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .map(|r| {
        r.flatten()
            .filter(|e| e.path().is_dir() && e.file_name().to_string_lossy().starts_with("cyc"))
            .count()
    })
    .sum()
}

#[test]
fn two_hundred_run_delete_cycles_leave_nothing_behind() {
    let oci = Oci::new("cycles");
    let b = oci.bundle("b", &["true"], |_| {});
    let mounts = mount_count();
    for i in 0..200 {
        let id = format!("cyc{i}");
        let o = oci.run(&["run", "--bundle", &arg(&b), &id]);
        assert!(o.status.success(), "cycle {i}: {}", stderr(&o));
    }
    assert_eq!(mount_count(), mounts);
    assert_eq!(cgroup_dirs(), 0);
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
    assert!(rvisor_tests::processes_matching(&arg(&oci.root)).is_empty());
}

#[test]
fn uid_mappings_back_the_container_with_the_host_ids_given() {
    let oci = Oci::new("userns");
    let vol = oci.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    rvisor_tests::set_mode(&vol, 0o777);
    let b = oci.bundle("b", &["sh", "-c", "id; cat /proc/self/uid_map; touch /vol/f"], |s| {
        s["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        s["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/vol", "type": "bind", "source": arg(&vol), "options": ["rbind", "rw"]}));
    });
    let o = oci.run(&["run", "--bundle", &arg(&b), "u1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("uid=0 gid=0"), "{out}");
    assert_eq!(
        out.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    let meta = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(vol.join("f")).unwrap());
    assert_eq!(meta, 200000);
}

#[test]
fn sysctls_cpu_limits_and_the_cgroup_path_are_applied() {
    let oci = Oci::new("cpu");
    let b = oci.bundle("b", &["sh", "-c", "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward"], |s| {
        s["linux"]["sysctl"] = serde_json::json!({"kernel.shmmni": "1234", "net.ipv4.ip_forward": "1"});
        s["linux"]["cgroupsPath"] = "/rvisor-test-cpu/c1".into();
        s["linux"]["resources"] = serde_json::json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"}});
    });
    oci.ok(&["create", "--bundle", &arg(&b), "c1"]);
    let read = |v1: &str, v2: &str| {
        std::fs::read_to_string(v1)
            .or_else(|_| std::fs::read_to_string(v2))
            .unwrap()
            .trim()
            .to_string()
    };
    let base1 = "/sys/fs/cgroup/cpu/rvisor-test-cpu/c1";
    let base2 = "/sys/fs/cgroup/rvisor-test-cpu/c1";
    if Path::new(base1).exists() {
        assert_eq!(read(&format!("{base1}/cpu.shares"), ""), "512");
        assert_eq!(read(&format!("{base1}/cpu.cfs_quota_us"), ""), "50000");
        assert_eq!(
            read("/sys/fs/cgroup/cpuset/rvisor-test-cpu/c1/cpuset.cpus", ""),
            "0"
        );
    } else {
        assert_eq!(read("", &format!("{base2}/cpu.max")), "50000 100000");
    }
    oci.ok(&["start", "c1"]);
    assert_eq!(oci.run(&["wait", "c1"]).status.code(), Some(0));
    oci.ok(&["delete", "c1"]);
    assert!(!Path::new(base1).exists() && !Path::new(base2).exists());
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(hierarchy.path().join("rvisor-test-cpu"));
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/rvisor-test-cpu");
    let o = oci.run(&["run", "--bundle", &arg(&b), "c3"]);
    assert_eq!(stdout(&o), "1234\n1\n", "{}", stderr(&o));
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(hierarchy.path().join("rvisor-test-cpu"));
    }
    let bad = oci.bundle("bad", &["true"], |s| {
        s["linux"]["sysctl"] = serde_json::json!({"kernel.hostname": "x"});
    });
    let o = oci.run(&["create", "--bundle", &arg(&bad), "c2"]);
    assert!(stderr(&o).contains("not namespaced"), "{}", stderr(&o));
}

/// Removes, when dropped, a host directory a runtime that let `cgroupsPath` climb out would
/// have made.
struct RemoveDirOnDrop(std::path::PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the host mounts a pure cgroup v2 hierarchy at /sys/fs/cgroup.
fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Every directory named `inner` (relative) under a cgroup hierarchy mount.
fn cgroup_dirs_named(inner: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(inner))
        .filter(|p| p.is_dir())
        .collect();
    let top = Path::new("/sys/fs/cgroup").join(inner);
    if top.is_dir() {
        found.push(top);
    }
    found
}

/// Whether a host process is gone (or a zombie nobody reaped yet).
fn process_gone(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn a_cgroups_path_cannot_climb_out_of_the_cgroup_hierarchy() {
    let name = format!("rvisor-cg-escape-{}", std::process::id());
    let escape = Path::new("/tmp").join(&name);
    // Declared first, dropped last: after the harness's own `delete --force`.
    let _cleanup = RemoveDirOnDrop(escape.clone());
    let oci = Oci::new("cgescape");
    let b = oci.bundle("b", &["sleep", "1000"], |s| {
        s["linux"]["cgroupsPath"] = format!("/../../../../../../tmp/{name}").into();
        s["linux"]["resources"] = serde_json::json!({"pids": {"limit": 40}});
    });
    let o = oci.run(&["create", "--bundle", &arg(&b), "e1"]);
    assert!(
        !escape.exists(),
        "cgroupsPath climbed out of the hierarchy: {} was made on the host",
        escape.display()
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // As runc: `..` stops at the hierarchy's root, so the cgroup is /tmp/<name> in it.
    let inner = format!("tmp/{name}");
    // The sentry's pid is in the runtime's record (the state reports the container's process).
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oci.root.join("e1/state.json")).unwrap())
            .unwrap();
    let pid = record["sentry_pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // The sentry is charged to the container's memory cgroup (v2: its `sandbox` leaf); the
    // guest alone is in its pids cgroup (v2: the `guest` leaf).
    let (sentry_cg, guest_leaf) = if pure_v2() {
        (format!("/{inner}/sandbox"), "guest")
    } else {
        (format!("/{inner}"), "")
    };
    let charged = own.lines().any(|l| {
        let mut f = l.splitn(3, ':');
        let (ctrls, path) = (f.nth(1).unwrap_or(""), f.next().unwrap_or(""));
        let ours = if pure_v2() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == "memory")
        };
        ours && path == sentry_cg
    });
    assert!(charged, "the sentry {pid} is not in {sentry_cg}: {own}");
    let hierarchy = if pure_v2() {
        Path::new("/sys/fs/cgroup").to_path_buf()
    } else {
        Path::new("/sys/fs/cgroup/pids").to_path_buf()
    };
    let dir = hierarchy.join(&inner).join(guest_leaf);
    assert!(std::fs::canonicalize(&dir)
        .unwrap()
        .starts_with("/sys/fs/cgroup/"));
    let max = std::fs::read_to_string(dir.join("pids.max")).unwrap();
    assert_eq!(max.trim(), "40");
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.lines().count(), 1, "the guest init alone: {procs}");
    assert!(!procs.lines().any(|l| l == pid.to_string()), "{procs}");
    let o = oci.run(&["delete", "--force", "e1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cgroup_dirs_named(&inner), Vec::<std::path::PathBuf>::new());
    assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0);
    rvisor_tests::wait_until("the sentry to go", || process_gone(pid));
    assert!(!escape.exists());
    for parent in cgroup_dirs_named("tmp") {
        let _ = std::fs::remove_dir(parent);
    }
}

#[test]
fn a_cgroups_path_naming_the_root_or_with_a_nul_is_refused() {
    let oci = Oci::new("cgbad");
    for (i, (path, says)) in [
        ("/..", "cgroupsPath"),
        ("/./", "cgroupsPath"),
        ("..", "cgroupsPath"),
        ("/rvisor-cg-nul\u{0}x", "NUL"),
        ("system.slice:rvisor:cg1", "systemd"),
    ]
    .into_iter()
    .enumerate()
    {
        let b = oci.bundle(&format!("b{i}"), &["true"], |s| {
            s["linux"]["cgroupsPath"] = path.into();
        });
        let o = oci.run(&["create", "--bundle", &arg(&b), &format!("bad{i}")]);
        assert_eq!(o.status.code(), Some(1), "{path:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(says), "{path:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{path:?}: {err}");
        assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0, "{path:?}");
    }
    assert!(cgroup_dirs_named("rvisor-cg-nul").is_empty());
    assert!(rvisor_tests::processes_matching(&arg(&oci.root)).is_empty());
}

/// A network namespace of its own, bind-mounted on a file; unmounted and removed when dropped.
struct PrivateNetns(std::path::PathBuf);

impl PrivateNetns {
    fn new(file: std::path::PathBuf) -> Self {
        std::fs::write(&file, "").unwrap();
        let ns = PrivateNetns(file);
        let made = std::process::Command::new("unshare")
            .arg(format!("--net={}", ns.0.display()))
            .arg("true")
            .status()
            .unwrap();
        assert!(made.success(), "unshare --net={}", ns.0.display());
        ns
    }

    /// Adds a veth pair inside it where `ip` is installed; the interfaces it has.
    fn interfaces(&self) -> Vec<String> {
        let added = std::process::Command::new("nsenter")
            .arg(format!("--net={}", self.0.display()))
            .args([
                "ip", "link", "add", "rvt0", "type", "veth", "peer", "name", "rvt1",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut names = vec!["lo".to_string()];
        if added {
            names.extend(["rvt0".to_string(), "rvt1".to_string()]);
        }
        names.sort();
        names
    }
}

impl Drop for PrivateNetns {
    fn drop(&mut self) {
        let _ = umount_lazy(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

fn umount_lazy(p: &Path) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new("umount")
        .arg("-l")
        .arg(p)
        .stderr(std::process::Stdio::null())
        .status()
}

/// Interface names in a /proc/net/dev listing.
fn interface_names(dev: &str) -> Vec<String> {
    let mut names: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
        .collect();
    names.sort();
    names
}

#[test]
fn joining_the_hosts_network_namespace_is_refused() {
    let oci = Oci::new("hostnet");
    let paths = [
        format!("/proc/{}/ns/net", std::process::id()),
        "/proc/1/ns/net".to_string(),
        "/proc/self/ns/net".to_string(),
    ];
    for (i, path) in paths.iter().enumerate() {
        let b = oci.bundle(&format!("b{i}"), &["cat", "/proc/net/dev"], |s| {
            for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "network" {
                    ns["path"] = path.as_str().into();
                }
            }
        });
        let o = oci.run(&["create", "--bundle", &arg(&b), &format!("n{i}")]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{path}: {err}");
        assert!(
            err.contains(&format!("network namespace {path}")),
            "{path}: {err}"
        );
        // Where even root may not look at init's namespaces (a sandboxed host), opening it
        // fails first: refused all the same.
        if std::fs::metadata(path).is_ok() {
            assert!(err.contains("is the host's own"), "{path}: {err}");
        }
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_eq!(std::fs::read_dir(&oci.root).unwrap().count(), 0, "{path}");
    }
    assert!(rvisor_tests::processes_matching(&arg(&oci.root)).is_empty());
}

#[test]
fn a_private_network_namespace_can_still_be_joined() {
    let oci = Oci::new("privnet");
    let netns = PrivateNetns::new(oci.dir.join("netns"));
    let expected = netns.interfaces();
    let host = interface_names(&std::fs::read_to_string("/proc/net/dev").unwrap());
    assert_ne!(host, expected, "the host's interfaces are the private ones");
    let path = arg(&netns.0);
    let b = oci.bundle("b", &["cat", "/proc/net/dev"], |s| {
        for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = path.as_str().into();
            }
        }
    });
    let o = oci.run(&["run", "--bundle", &arg(&b), "j1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(interface_names(&stdout(&o)), expected, "{}", stdout(&o));
}
