//! The Linux compatibility suite: C programs under `tests/compat/` (one per family: identity and
//! access control, chown, umask, xattrs, paths, uts, /proc, the rest) each print one line per
//! case, `CASE <name> <result>`. Every program runs natively first, in fresh namespaces, as the
//! oracle, and then under `rvisor do` on each platform; results must agree case by case.
//!
//! - root: natively `unshare --fork --pid --mount --uts --ipc --net --mount-proc` as root (the
//!   program is its pid namespace's init); in rvisor `rvisor do` as root.
//! - rootless: natively the unprivileged user (`rootless_uid`) in `unshare --user
//!   --map-root-user` plus the same namespaces (root inside, only its own id mapped); in rvisor
//!   `rvisor do` as that user.
//!
//! Each run gets a fresh scratch directory (the same path natively and in the sandbox, bound
//! with `-v`, owned by the mode's user). A test per platform and mode compares every case with
//! the native run of the same mode, prints `compat: PLATFORM/MODE N/M agree`, and fails listing
//! every disagreeing case. `ALLOWED` names the deliberate differences, each with a reason that
//! README's "Compatibility" section states word for word.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use rvisor_tests::*;

/// The programs, in the order they run (sources in `tests/compat/`).
const PROGRAMS: [&str; 8] = [
    "identity", "chown", "umask", "xattr", "paths", "uts", "proc", "misc",
];

/// rvisor refuses namespace creation inside the sandbox.
const NAMESPACES_REFUSED: &str =
    "Creating namespaces inside the sandbox (unshare or clone with CLONE_NEW* flags) is refused with EPERM.";

/// `rvisor do` runs the command under an init of its own.
const COMMAND_IS_PID_2: &str =
    "`rvisor do` runs the command as pid 2, under an init that reaps orphans and forwards signals (as `docker run --init`); an OCI container's process is pid 1.";

/// Set-id binaries and file capabilities raise nothing.
const NOSUID: &str =
    "Every mount the guest sees is nosuid and `rvisor do` sets no_new_privs: set-id binaries and file capabilities raise no privileges.";

/// The sandbox's root is root of its own user namespace only.
const HOST_CAPABILITIES: &str =
    "The sandbox's root holds its capabilities in the sandbox's user namespace only: what needs them in the host's initial namespace (a nice value below the current one, real-time scheduling, `trusted.*` xattrs, stealing a controlling terminal) fails with EPERM or EACCES, as in any user-namespaced container.";

/// Rootless, the guest's host name lives where the sentry cannot follow.
const ROOTLESS_UTS: &str =
    "Rootless, the sentry cannot join the guest's UTS namespace: `/proc/sys/kernel/hostname` and `domainname` keep the start names after `sethostname`/`setdomainname` (uname shows the new ones).";

/// TIOCSTI is refused.
const NO_TIOCSTI: &str =
    "TIOCSTI (pushing input into a terminal) is refused with EPERM: the guest must not type into the caller's terminal.";

/// /proc, /sys and /dev are read-only.
const READ_ONLY_PSEUDO: &str =
    "The guest's /proc, /sys and /dev are read-only mounts: a write the sentry does not serve (another process's `comm` or `mem`, chmod or rename there, an xattr on a device node) fails with EROFS.";

/// Cases allowed to differ from Linux, and why (each reason is in README's Compatibility
/// section). Keep this list minimal: a bug is never an allowed difference.
const ALLOWED: [(&str, &str); 22] = [
    ("proc/comm_other_process_write", READ_ONLY_PSEUDO),
    ("proc/proc_child_mem_write", READ_ONLY_PSEUDO),
    ("proc/proc_tree_changes", READ_ONLY_PSEUDO),
    ("xattr/devnull_user", READ_ONLY_PSEUDO),
    ("identity/clone_parent_from_init", COMMAND_IS_PID_2),
    ("identity/no_new_privs_initial", NOSUID),
    ("identity/setuid_exec_gains_euid", NOSUID),
    ("identity/setpriority_lower_root", HOST_CAPABILITIES),
    ("misc/sched_policy_root", HOST_CAPABILITIES),
    ("misc/tiocsctty_steal", HOST_CAPABILITIES),
    ("xattr/trusted_namespace", HOST_CAPABILITIES),
    ("xattr/symlink_ltrusted", HOST_CAPABILITIES),
    ("uts/sethostname_root", ROOTLESS_UTS),
    ("uts/setdomainname_root", ROOTLESS_UTS),
    ("misc/tiocsti_injection", NO_TIOCSTI),
    ("misc/unshare_newns", NAMESPACES_REFUSED),
    ("misc/unshare_newuts", NAMESPACES_REFUSED),
    ("misc/unshare_newipc", NAMESPACES_REFUSED),
    ("misc/unshare_newnet", NAMESPACES_REFUSED),
    ("misc/unshare_newpid", NAMESPACES_REFUSED),
    ("misc/unshare_newuser", NAMESPACES_REFUSED),
    ("misc/unshare_newcgroup", NAMESPACES_REFUSED),
];

/// Whose sandbox: root's, or an unprivileged user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Root,
    Rootless,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::Rootless => "rootless",
        }
    }
}

/// Case name (`program/case`) -> result.
type Results = BTreeMap<String, String>;

/// The scratch root of this test process, the compiled programs in its `bin/`. Those of runs
/// more than ten minutes old go (a whole run takes seconds; each removes its own per-mode
/// directories as it ends).
fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = scratch("compat");
        let stale_before = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        for old in std::fs::read_dir(base.parent().unwrap()).unwrap().flatten() {
            let stale = old.file_name().to_string_lossy().starts_with("compat-")
                && old.path() != base
                && old
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < stale_before);
            if stale {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        base
    })
}

/// The programs, compiled (statically: the sandbox sees the host's libraries anyway, and a static
/// binary needs nothing of the view it runs in).
fn binaries() -> &'static BTreeMap<&'static str, PathBuf> {
    static BINS: OnceLock<BTreeMap<&'static str, PathBuf>> = OnceLock::new();
    BINS.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat");
        let bin = base().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        set_mode(&bin, 0o755);
        PROGRAMS
            .iter()
            .map(|&name| {
                let out_path = bin.join(name);
                let out = Command::new("gcc")
                    .args(["-O1", "-Wall", "-static", "-I"])
                    .arg(&src)
                    .arg("-o")
                    .arg(&out_path)
                    .arg(src.join(format!("{name}.c")))
                    .arg("-lpthread")
                    .output()
                    .expect("gcc must be installed (scripts/test installs it)");
                assert!(
                    out.status.success(),
                    "gcc {name}.c: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                set_mode(&out_path, 0o755);
                (name, out_path)
            })
            .collect()
    })
}

/// A fresh, empty scratch directory for one run of one program, owned by the mode's user.
fn run_dir(label: &str, program: &str, mode: Mode) -> PathBuf {
    let parent = base().join(label);
    std::fs::create_dir_all(&parent).unwrap();
    set_mode(&parent, 0o755);
    let dir = parent.join(program);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o755);
    if mode == Mode::Rootless {
        chown_tree(&dir, rootless_uid());
    }
    dir
}

/// The namespaces of the native runs (the program is the new pid namespace's init).
const UNSHARE: [&str; 8] = [
    "--fork",
    "--pid",
    "--mount",
    "--uts",
    "--ipc",
    "--net",
    "--mount-proc",
    "--",
];

fn native_command(mode: Mode, bin: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    match mode {
        Mode::Root => {
            cmd.args(["--clear-groups", "--", "unshare"]);
        }
        Mode::Rootless => {
            let uid = rootless_uid().to_string();
            cmd.args(["--reuid", &uid, "--regid", &uid, "--clear-groups", "--"])
                .args(["unshare", "--user", "--map-root-user"]);
        }
    }
    cmd.args(UNSHARE).arg(bin).arg(dir);
    cmd.env("HOME", "/").current_dir("/");
    cmd
}

fn rvisor_command(platform: &str, mode: Mode, bin: &Path, dir: &Path) -> Command {
    let volume = format!("{0}:{0}:rw", dir.display());
    let args = [
        "-v".as_ref(),
        volume.as_ref(),
        "--".as_ref(),
        bin.as_os_str(),
        dir.as_os_str(),
    ];
    match mode {
        Mode::Root => rvisor_do_on(platform, args),
        Mode::Rootless => rootless_do_on(platform, args),
    }
}

/// Parses a program's output into `results`; returns what went wrong with the run, if anything.
fn collect(program: &str, o: &Output, results: &mut Results) -> Option<String> {
    let mut seen = 0;
    for line in stdout(o).lines() {
        let Some(rest) = line.strip_prefix("CASE ") else {
            continue;
        };
        let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
        let key = format!("{program}/{name}");
        assert!(
            results.insert(key.clone(), value.to_string()).is_none(),
            "{key} printed twice"
        );
        seen += 1;
    }
    if o.status.success() && seen > 0 {
        None
    } else {
        Some(format!(
            "{program}: exit {:?} after {seen} cases; stderr: {}",
            o.status,
            stderr(o).trim()
        ))
    }
}

/// Runs every program in one mode; the results and the runs that failed.
fn run_all(
    label: &str,
    mode: Mode,
    command: impl Fn(&Path, &Path) -> Command,
) -> (Results, Vec<String>) {
    let mut results = Results::new();
    let mut failures = Vec::new();
    for (program, bin) in binaries() {
        let dir = run_dir(label, program, mode);
        let o = run_for(&mut command(bin, &dir), 120);
        failures.extend(collect(program, &o, &mut results));
    }
    let _ = std::fs::remove_dir_all(base().join(label));
    (results, failures)
}

/// The native results of a mode (the oracle), computed once.
fn native(mode: Mode) -> &'static Results {
    static ROOT: OnceLock<Results> = OnceLock::new();
    static ROOTLESS: OnceLock<Results> = OnceLock::new();
    let cell = match mode {
        Mode::Root => &ROOT,
        Mode::Rootless => &ROOTLESS,
    };
    cell.get_or_init(|| {
        let label = format!("native-{}", mode.name());
        let (results, failures) = run_all(&label, mode, |bin, dir| native_command(mode, bin, dir));
        assert!(
            failures.is_empty(),
            "the native oracle itself failed ({}):\n{}",
            mode.name(),
            failures.join("\n")
        );
        results
    })
}

fn allowed(case: &str) -> Option<&'static str> {
    ALLOWED.iter().find(|(c, _)| *c == case).map(|(_, r)| *r)
}

/// Runs the suite in rvisor on `platform` in `mode` and compares it with the native run.
fn compare(platform: &str, mode: Mode) {
    let oracle = native(mode);
    let label = format!("{platform}-{}", mode.name());
    let (got, failures) = run_all(&label, mode, |bin, dir| {
        rvisor_command(platform, mode, bin, dir)
    });
    let mut agree = 0;
    let mut allowed_differences = 0;
    let mut disagreements = Vec::new();
    for (case, want) in oracle {
        let have = got.get(case).map(String::as_str).unwrap_or("(missing)");
        if have == want {
            agree += 1;
        } else if allowed(case).is_some() {
            allowed_differences += 1;
        } else {
            disagreements.push(format!(
                "  {case}\n      linux:  {want}\n      rvisor: {have}"
            ));
        }
    }
    for case in got.keys().filter(|c| !oracle.contains_key(*c)) {
        disagreements.push(format!("  {case}: only in rvisor"));
    }
    let summary = format!(
        "compat: {platform}/{} {agree}/{} agree ({allowed_differences} allowed differences, {} disagree)",
        mode.name(),
        oracle.len(),
        disagreements.len()
    );
    eprintln!("{summary}");
    assert!(
        failures.is_empty() && disagreements.is_empty(),
        "{summary}\nruns that failed:\n{}\ndisagreeing cases ({platform}, {}):\n{}",
        failures.join("\n"),
        mode.name(),
        disagreements.join("\n")
    );
}

#[test]
fn seccomp_notify_root_agrees_with_linux() {
    compare("seccomp-notify", Mode::Root);
}

#[test]
fn seccomp_notify_rootless_agrees_with_linux() {
    compare("seccomp-notify", Mode::Rootless);
}

#[test]
fn ptrace_root_agrees_with_linux() {
    compare("ptrace", Mode::Root);
}

#[test]
fn ptrace_rootless_agrees_with_linux() {
    compare("ptrace", Mode::Rootless);
}

/// The oracle is sound: both native modes ran every program, print the same cases, none of
/// which died or printed nothing, and the allowed differences name real cases.
#[test]
fn native_oracle_is_complete() {
    let root = native(Mode::Root);
    let rootless = native(Mode::Rootless);
    let names = |r: &Results| r.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(root), names(rootless));
    for (mode, results) in [("root", root), ("rootless", rootless)] {
        for (case, result) in results {
            assert!(
                !result.is_empty() && !result.starts_with('!'),
                "native {mode} {case}: {result}"
            );
        }
    }
    for (case, _) in ALLOWED {
        assert!(root.contains_key(case), "ALLOWED names no case: {case}");
    }
    println!("compat: {} cases per mode", root.len());
}

/// Every allowed difference is documented, word for word, in README's Compatibility section.
#[test]
fn allowed_differences_are_documented() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Compatibility"))
        .expect("README has a Compatibility section");
    for (case, reason) in ALLOWED {
        assert!(
            section.contains(reason),
            "README's Compatibility section lacks the reason for {case}: {reason}"
        );
    }
}
