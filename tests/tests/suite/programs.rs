//! Real programs run unmodified, and every thread and child stays under the sentry.

use super::prelude::*;

#[test]
fn coreutils_and_pipelines() {
    let out = ok(&sh(
        "ls -la / | head -3 && printf 'b\\na\\nc\\n' | sort | tr -d '\\n'",
    ));
    assert!(out.contains("total"), "{out}");
    assert!(out.ends_with("abc"), "{out}");
}

#[test]
fn find_sees_the_same_tree_as_the_host() {
    let script = "find /usr/lib -name '*.so' 2>/dev/null | wc -l";
    let host = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    let inside = ok(&sh(script));
    assert_eq!(inside.trim(), String::from_utf8_lossy(&host.stdout).trim());
    assert!(inside.trim().parse::<u32>().unwrap() > 0);
}

#[test]
fn busybox_static_runs() {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let busybox = busybox.expect("busybox-static must be installed (.ci/run installs it)");
    let o = run_for(
        &mut rvisor_do(["--", busybox, "sh", "-c", "echo $((6*7)) | busybox cat"]),
        60,
    );
    assert_eq!(ok(&o), "42\n");
}

#[test]
fn python_threads_and_subprocess() {
    let script = r#"
import os, subprocess, threading
results = []
def work(i):
    results.append(subprocess.run(["sh", "-c", "echo $0", str(i)], capture_output=True, text=True).stdout.strip())
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(sorted(int(r) for r in results), os.getpid(), os.getppid())
"#;
    let o = run_for(&mut rvisor_do(["--", "python3", "-c", script]), 120);
    assert_eq!(ok(&o), "[0, 1, 2, 3, 4, 5, 6, 7] 2 1\n");
}

#[test]
fn gcc_compiles_and_runs_hello_world_in_tmp() {
    let script = "cd /tmp && printf '#include <stdio.h>\\nint main(void){puts(\"hello, world\");return 0;}\\n' > h.c \
                  && gcc -O2 h.c -o hello && ./hello";
    assert_eq!(ok(&sh(script)), "hello, world\n");
}

const FOLLOW: &str = r#"
#define _GNU_SOURCE
#include <linux/sched.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each path reports its raw ids; getppid() traps to the sentry, getpid()/gettid() run natively
   in the guest's pid namespace. */
static void report(const char *how) {
    printf("%s pid=%ld ppid=%ld tid=%ld\n", how, syscall(SYS_getpid), syscall(SYS_getppid), syscall(SYS_gettid));
    fflush(stdout);
}
static void *thread_main(void *arg) { report("thread"); return arg; }

int main(int argc, char **argv) {
    if (argc > 1) { report("exec"); return 0; }
    report("main");
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, thread_main, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    pid_t p = fork();
    if (p == 0) { report("fork"); _exit(0); }
    waitpid(p, NULL, 0);
    p = vfork();
    if (p == 0) { execl("/proc/self/exe", argv[0], "exec", (char *)NULL); _exit(127); }
    waitpid(p, NULL, 0);
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    long c = syscall(SYS_clone3, &ca, sizeof ca);
    /* The sandbox answers ENOSYS (clone3's flags are in memory); fall back as libcs do. */
    if (c < 0 && errno == ENOSYS) c = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (c == 0) { report("clone3"); _exit(0); }
    if (c < 0) { perror("clone3"); return 1; }
    waitpid((pid_t)c, NULL, 0);
    return 0;
}
"#;

/// Threads, fork, vfork+exec and clone3 children all trap: each one's getppid reaches the sentry
/// (seen in --strace), and every id is the namespaced value.
#[test]
fn threads_fork_vfork_clone3_exec_are_followed() {
    let probe = compile_c("follow", FOLLOW);
    let log = scratch("follow").join("strace.log");
    let o = run_for(
        &mut rvisor_do([
            "--strace-log".as_ref(),
            log.as_os_str(),
            "--".as_ref(),
            probe.as_os_str(),
        ]),
        60,
    );
    let out = ok(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    let field = |line: &str, key: &str| -> i64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap()
            .parse()
            .unwrap()
    };
    let main_pid = field(lines[0], "pid=");
    assert_eq!(main_pid, 2, "the command is pid 2 under the sandbox init");
    assert_eq!(field(lines[0], "ppid="), 1);
    for l in &lines[1..5] {
        assert!(l.starts_with("thread"), "{l}");
        assert_eq!(field(l, "pid="), main_pid);
        assert_ne!(field(l, "tid="), main_pid);
    }
    for how in ["fork", "exec", "clone3"] {
        let l = lines
            .iter()
            .find(|l| l.starts_with(how))
            .unwrap_or_else(|| panic!("no {how} line: {out}"));
        assert_eq!(field(l, "ppid="), main_pid, "{l}");
        assert_ne!(field(l, "pid="), main_pid, "{l}");
    }
    let trace = std::fs::read_to_string(&log).unwrap();
    let tids: std::collections::HashSet<&str> = trace
        .lines()
        .filter(|l| l.contains("getppid()"))
        .filter_map(|l| l.split(']').next())
        .collect();
    assert!(
        tids.len() >= 8,
        "getppid trapped from only {} threads:\n{trace}",
        tids.len()
    );
    assert!(trace.contains("clone3("), "{trace}");
}
