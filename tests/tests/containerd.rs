//! containerd drives rvisor through its runc v2 shim (`ctr run --runc-binary`): a private
//! containerd under a temporary directory, an image built with umoci from busybox files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use rvisor_tests::{ok, run_for, rvisor, scratch, stderr, stdout};

struct Containerd {
    dir: PathBuf,
    sock: PathBuf,
    ns: String,
    daemon: Child,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // The shim's mounts and the daemon's snapshots live under dir.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {0}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l",
                self.dir.display()
            ))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
        // ctr's cgroupsPath is /<namespace>/<id>: the containers' went with them, the parent
        // is ctr's to leave; we remove it.
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let _ = std::fs::remove_dir(h.path().join(&self.ns));
            }
        }
        let _ = std::fs::remove_dir(PathBuf::from("/sys/fs/cgroup").join(&self.ns));
    }
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is required (.ci/run installs it from apt)");
}

impl Containerd {
    /// A daemon of its own for the test `name` (tests run in parallel).
    fn start(name: &str) -> Self {
        for tool in [
            "containerd",
            "ctr",
            "umoci",
            "containerd-shim-runc-v2",
            "script",
        ] {
            need(tool);
        }
        let dir = scratch(&format!("containerd-{name}"));
        let sock = dir.join("c.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 [grpc]\n  address = \"{1}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_apparmor = true\n",
                dir.display(),
                sock.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            dir,
            sock,
            ns: format!("rvisor-test-{name}-{}", std::process::id()),
            daemon,
        };
        rvisor_tests::wait_until("containerd to listen", || {
            c.ctr(&["version"]).status.success()
        });
        c
    }

    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a")
            .arg(&self.sock)
            .arg("-n")
            .arg(&self.ns)
            .args(args);
        cmd
    }

    fn ctr(&self, args: &[&str]) -> Output {
        run_for(&mut self.ctr_cmd(args), 120)
    }

    /// An OCI image of busybox files, built with umoci and imported.
    fn import_busybox(&self) -> String {
        let img = self.dir.join("img");
        let bundle = self.dir.join("unpacked");
        let umoci = |args: &[&str]| {
            ok(&run_for(Command::new("umoci").args(args), 120));
        };
        let img_s = img.display().to_string();
        let tag = format!("{img_s}:latest");
        umoci(&["init", "--layout", &img_s]);
        umoci(&["new", "--image", &tag]);
        umoci(&["unpack", "--image", &tag, &bundle.display().to_string()]);
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
        for tool in ["sh", "echo", "id", "sleep", "tty", "cat", "hostname"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
        }
        umoci(&["repack", "--image", &tag, &bundle.display().to_string()]);
        let tar = self.dir.join("img.tar");
        ok(&run_for(
            Command::new("tar")
                .arg("-C")
                .arg(&img)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
            120,
        ));
        ok(&self.ctr(&[
            "images",
            "import",
            "--base-name",
            "rvisor.test/busybox",
            &tar.display().to_string(),
        ]));
        "rvisor.test/busybox:latest".into()
    }
}

fn busybox() -> &'static Path {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("busybox-static must be installed")
}

#[test]
fn ctr_runs_execs_and_kills_through_rvisor() {
    let c = Containerd::start("run");
    let image = c.import_busybox();
    let bin = rvisor().display().to_string();
    // ctr run: output and exit code.
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        &bin,
        &image,
        "r1",
        "sh",
        "-c",
        "echo hello; id; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("hello\nuid=0 gid=0"),
        "{}",
        stdout(&o)
    );
    // ctr run --device: the node is created and the devices cgroup rule containerd adds lets
    // it open; containerd's /dev/shm (64 MiB tmpfs) is the one mounted.
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        &bin,
        "--device",
        "/dev/kmsg",
        &image,
        "r0",
        "sh",
        "-c",
        "[ -c /dev/kmsg ] && (exec 3>/dev/kmsg) && echo kmsg; while read -r l; do case $l in *' /dev/shm '*) echo ${l##* - };; esac; done </proc/self/mountinfo",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("kmsg\n"), "{out}");
    assert!(out.trim_end().ends_with("size=65536k"), "{out}");
    // ctr run -t: a pty from the console socket (`script` gives ctr a terminal).
    let cmd = format!(
        "ctr -a {} -n {} run -t --rm --runc-binary {bin} {image} r2 sh -c 'tty; exit 4'",
        c.sock.display(),
        c.ns
    );
    let o = run_for(
        Command::new("script").args(["-qec", &cmd, "/dev/null"]),
        120,
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stdout(&o).contains("/dev/pts/0"), "{}", stdout(&o));
    // A long-running task: exec into it, then kill it.
    ok(&c.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        &bin,
        &image,
        "r3",
        "sh",
        "-c",
        "trap 'exit 9' TERM; while true; do sleep 0.05; done",
    ]));
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "r3",
        "sh",
        "-c",
        "hostname; exit 6",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    ok(&c.ctr(&["task", "kill", "r3"]));
    rvisor_tests::wait_until("the task to stop", || {
        stdout(&c.ctr(&["task", "ls"]))
            .lines()
            .any(|l| l.starts_with("r3") && l.contains("STOPPED"))
    });
    ok(&c.ctr(&["task", "rm", "r3"]));
    ok(&c.ctr(&["containers", "rm", "r3"]));
    // The shim deleted every container: nothing is left in rvisor's state root.
    let root = PathBuf::from("/run/containerd/runc").join(&c.ns);
    let left = std::fs::read_dir(&root).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "{}", root.display());
}

/// What a container writes is in its snapshot, as with runc: containerd's diff of it (what
/// `docker commit` and `ctr snapshots diff` build a layer from) holds the file.
#[test]
fn the_containers_writes_are_in_its_snapshot_diff() {
    let c = Containerd::start("diff");
    let image = c.import_busybox();
    let bin = rvisor().display().to_string();
    let o = c.ctr(&[
        "run",
        "--runc-binary",
        &bin,
        &image,
        "w1",
        "sh",
        "-c",
        "echo kept > /kept && echo more >> /etc/made",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The diff, as a tar stream on stdout.
    let blob = c.dir.join("diff.tar");
    let mut diff = c.ctr_cmd(&["snapshots", "diff", "w1"]);
    diff.stdout(std::fs::File::create(&blob).unwrap());
    let o = diff.output().unwrap();
    // An empty diff makes ctr fail (silently): nothing to list then.
    let listing = if o.status.success() {
        ok(&run_for(Command::new("tar").arg("-tf").arg(&blob), 60))
    } else {
        format!("ctr snapshots diff: {:?} {}", o.status, stderr(&o))
    };
    let names: Vec<&str> = listing.lines().collect();
    assert!(
        names.contains(&"kept") && names.contains(&"etc/made"),
        "{listing}"
    );
    ok(&c.ctr(&["containers", "rm", "w1"]));
}
