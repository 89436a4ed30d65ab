//! Helpers for the integration tests: find the built `rvisor`, run it with a deadline, build
//! small C probes, and look at the host for leftovers.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Uid the rootless tests run as: `RVISOR_ROOTLESS_UID` (`.ci/run` creates a user for it), else
/// nobody.
pub fn rootless_uid() -> u32 {
    std::env::var("RVISOR_ROOTLESS_UID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(65534)
}

/// The `rvisor` binary of the profile these tests were built with.
pub fn rvisor() -> PathBuf {
    if let Some(p) = std::env::var_os("RVISOR_BIN") {
        return p.into();
    }
    // target/<profile>/deps/<test> -> target/<profile>/rvisor
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("rvisor");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        bin.display()
    );
    bin
}

/// `rvisor --platform=PLATFORM do <args...>` as a Command.
pub fn rvisor_do_on<I, S>(platform: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(rvisor());
    // The checkout may lie anywhere, even under /tmp, which the sandbox replaces.
    cmd.arg(format!("--platform={platform}"))
        .arg("do")
        .args(args)
        .current_dir("/");
    cmd
}

/// Runs `cmd` with no stdin, failing the test if it does not finish within `secs` (a hang is a
/// failure, not a timing measurement).
pub fn run_for(cmd: &mut Command, secs: u64) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn rvisor");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Runs `rvisor --platform=PLATFORM do -- sh -c script` and returns the output.
pub fn sh_on(platform: &str, script: &str) -> Output {
    run_for(
        &mut rvisor_do_on(platform, ["--", "/bin/sh", "-c", script]),
        120,
    )
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// A directory for test artefacts that the sandbox can see (its /tmp is its own, and the checkout
/// may lie under the host's /tmp) and that an unprivileged user can read.
pub fn scratch(name: &str) -> PathBuf {
    let base = PathBuf::from("/var/tmp/rvisor-tests");
    let dir = base.join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for d in [&base, &dir] {
        make_world_readable(d);
    }
    dir
}

fn make_world_readable(p: &Path) {
    set_mode(p, 0o755);
}

/// Sets a path's permission bits.
pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The child processes of a host process (its main thread's).
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Polls `done` until it holds, failing the test after 30 s (a hang is a failure, not a
/// measurement).
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Leaves `fds` (number -> fd) open, without close-on-exec, in the process `cmd` spawns: what a
/// careless caller (a shell, a shim) hands rvisor.
pub fn leave_open(cmd: &mut Command, fds: Vec<(i32, std::os::fd::OwnedFd)>) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let hook = move || {
        for (n, fd) in &fds {
            // SAFETY: dup2 takes integers; `fd` is open for the closure's life.
            if unsafe { libc::dup2(fd.as_raw_fd(), *n) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto itself keeps close-on-exec: clear it.
            // SAFETY: fcntl takes integers.
            if fd.as_raw_fd() == *n && unsafe { libc::fcntl(*n, libc::F_SETFD, 0) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: between fork and exec the hook only calls dup2, which is async-signal-safe.
    unsafe { cmd.pre_exec(hook) };
}

/// A pipe whose read end (returned) holds `text`.
pub fn pipe_with(text: &str) -> std::os::fd::OwnedFd {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe fills the two-int array we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
    w.write_all(text.as_bytes()).unwrap();
    // SAFETY: as above.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) }
}

/// Compiles a C probe with gcc into a scratch directory and returns the binary's path.
pub fn compile_c(name: &str, source: &str) -> PathBuf {
    compile_c_with(name, source, &[])
}

/// As `compile_c`, statically linked (for roots without a C library).
pub fn compile_c_static(name: &str, source: &str) -> PathBuf {
    compile_c_with(name, source, &["-static"])
}

fn compile_c_with(name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let dir = scratch("probes");
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = Command::new("gcc")
        .args(["-O1", "-Wall"])
        .args(extra)
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .arg("-lpthread")
        .output()
        .expect("gcc must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "gcc {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    make_world_readable(&bin);
    bin
}

/// Every host process but this one, with its command line (arguments joined by spaces).
pub fn process_cmdlines() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let c = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&c).replace('\0', " ")))
        })
        .collect()
}

/// Host pids whose command line contains `marker` (rvisor's own processes aside).
pub fn processes_matching(marker: &str) -> Vec<i32> {
    process_cmdlines()
        .into_iter()
        .filter(|(_, c)| c.contains(marker) && !c.contains("rvisor"))
        .map(|(pid, _)| pid)
        .collect()
}

/// A copy of `rvisor` that any user can execute: the checkout may lie under a directory an
/// unprivileged user cannot traverse. Kept at a fixed place so runs do not accumulate copies.
pub fn rootless_binary() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = PathBuf::from("/var/tmp/rvisor-rootless-test");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join(format!("rvisor-{}", std::process::id()));
        std::fs::copy(rvisor(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Older copies from earlier runs.
        for old in std::fs::read_dir(&dir).unwrap().flatten() {
            if old.path() != bin
                && old.metadata().map(|m| m.modified().ok()).ok().flatten()
                    < Some(std::time::SystemTime::now() - Duration::from_secs(3600))
            {
                let _ = std::fs::remove_file(old.path());
            }
        }
        bin
    })
    .clone()
}

/// A Command running `rvisor --platform=PLATFORM do` as the unprivileged user.
pub fn rootless_do_on<I, S>(platform: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let uid = rootless_uid().to_string();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", &uid, "--regid", &uid, "--clear-groups", "--"])
        .arg(rootless_binary())
        .arg(format!("--platform={platform}"))
        .arg("do")
        .args(args);
    cmd.env("HOME", "/").current_dir("/");
    cmd
}

/// Gives `path` and everything under it (symlinks themselves) to `uid` (user and group).
pub fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

/// A minimal root (busybox-static, the usual mount points) in a scratch directory.
pub fn mini_root(name: &str) -> PathBuf {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static must be installed (.ci/run installs it)");
    let root = scratch(name);
    for d in ["bin", "proc", "dev", "sys", "tmp", "run", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for tool in ["sh", "cat", "ls", "echo"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(tool));
    }
    root
}

/// An OCI container harness: a private `--root` and bundles built from busybox-static.
#[derive(Debug)]
pub struct Oci {
    /// The state root passed as `--root` (rootless: the default it gets from `xdg`).
    pub root: PathBuf,
    /// Scratch directory for bundles.
    pub dir: PathBuf,
    /// Rootless: `XDG_RUNTIME_DIR` of the unprivileged user every command runs as.
    pub xdg: Option<PathBuf>,
}

/// busybox applets the test bundles link.
const APPLETS: [&str; 22] = [
    "sh", "cat", "ls", "echo", "sleep", "id", "true", "false", "ps", "hostname", "touch", "mkdir",
    "grep", "wc", "head", "dd", "seq", "kill", "env", "pwd", "uname", "tty",
];

impl Oci {
    /// A harness with its own state root.
    pub fn new(name: &str) -> Self {
        let dir = scratch(&format!("oci-{name}"));
        Oci {
            root: dir.join("state"),
            dir,
            xdg: None,
        }
    }

    /// A harness whose commands run as the unprivileged user (`rootless_uid`, as `setpriv`
    /// would start them), without `--root`: the state goes under `XDG_RUNTIME_DIR`, a
    /// directory of the user's only. The scratch directory is the user's too (bundles are
    /// written there by `spec --rootless`).
    pub fn rootless(name: &str) -> Self {
        let dir = scratch(&format!("oci-rootless-{name}"));
        let xdg = dir.join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        set_mode(&xdg, 0o700);
        let uid = rootless_uid();
        for d in [&dir, &xdg] {
            std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
        }
        Oci {
            root: xdg.join("rvisor"),
            dir,
            xdg: Some(xdg),
        }
    }

    /// `rvisor --root R <args>`.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let Some(xdg) = &self.xdg else {
            let mut cmd = Command::new(rvisor());
            cmd.arg("--root")
                .arg(&self.root)
                .args(args)
                .current_dir("/");
            return cmd;
        };
        let uid = rootless_uid().to_string();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", &uid, "--regid", &uid, "--clear-groups", "--"])
            .arg(rootless_binary())
            .args(args)
            .env("XDG_RUNTIME_DIR", xdg)
            .env("HOME", "/")
            .current_dir("/");
        cmd
    }

    /// Runs `rvisor --root R <args>` with a deadline. Output goes through files, not pipes: a
    /// created container keeps the stdio it was created with (as with runc), so reading a pipe to
    /// its end would wait for the container.
    pub fn run(&self, args: &[&str]) -> Output {
        use std::os::unix::process::ExitStatusExt;
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (out_path, err_path) = (
            self.dir.join(format!(".out{n}")),
            self.dir.join(format!(".err{n}")),
        );
        let mut child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("spawn rvisor");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rvisor {args:?} did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let output = Output {
            status: std::process::ExitStatus::from_raw(status.into_raw()),
            stdout: std::fs::read(&out_path).unwrap(),
            stderr: std::fs::read(&err_path).unwrap(),
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        output
    }

    /// Runs it and insists it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.run(args))
    }

    /// A bundle named `name` whose process runs `args`; `edit` adjusts config.json (made by
    /// `rvisor spec`, terminal off).
    pub fn bundle(
        &self,
        name: &str,
        args: &[&str],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
        let bundle = self.dir.join(name);
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "run", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static must be installed (.ci/run installs it)");
        std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        for tool in APPLETS {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool));
        }
        let config = bundle.join("config.json");
        let _ = std::fs::remove_file(&config);
        let mut spec_cmd = match self.xdg {
            None => {
                let mut cmd = Command::new(rvisor());
                cmd.arg("spec");
                cmd
            }
            Some(_) => {
                // The user's own bundle, in which it writes its own spec (mapping its ids).
                chown_tree(&bundle, rootless_uid());
                self.cmd(["spec", "--rootless"])
            }
        };
        ok(&run_for(spec_cmd.args(["--bundle"]).arg(&bundle), 30));
        let mut spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        edit(&mut spec);
        std::fs::write(&config, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
        bundle
    }

    /// The container's OCI state.
    pub fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// The container's status word.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        // Whatever a failed test left running goes; then the scratch directory.
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
