//! The escape battery: whatever the guest plants or is handed, no path reaches a file outside
//! the sandbox root, and no race turns a read-only file into a writable fd.

use std::process::Stdio;

use super::prelude::*;

const ESCAPE: &str = r##"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* argv[1]: the host directory holding "secret" (outside the root; fd 0 is that directory). */
static char *outside;

static void attempt(const char *name, int fd) {
    char buf[64] = {0};
    if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0 && strstr(buf, "TOP SECRET"))
        printf("%s ESCAPED\n", name);
    else
        printf("%s contained\n", name);
    if (fd >= 0) close(fd);
}

/* A directory listing that shows the outside directory's entries escaped. */
static void listing(const char *name, int fd) {
    int found = 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strcmp(e->d_name, "secret") || !strcmp(e->d_name, strrchr(outside, '/') + 1))
            found = 1;
    printf("%s %s\n", name, found ? "ESCAPED" : "contained");
    if (d) closedir(d);
    else if (fd >= 0) close(fd);
}

static char *at(const char *prefix, const char *suffix) {
    static char p[8][4096];
    static int n;
    char *out = p[n++ % 8];
    snprintf(out, 4096, "%s%s%s", prefix, outside, suffix);
    return out;
}

int main(int argc, char **argv) {
    outside = argv[1];
    symlink(at("", "/secret"), "/tmp/abs");
    attempt("absolute-symlink", open("/tmp/abs", O_RDONLY));
    symlink(at("../../../../../../../../..", "/secret"), "/tmp/rel");
    attempt("relative-symlink", open("/tmp/rel", O_RDONLY));
    attempt("dotdot-chain", open(at("/../../../../..", "/secret"), O_RDONLY));
    attempt("dotdot-from-tmp", open(at("/tmp/../../../..", "/secret"), O_RDONLY));
    attempt("proc-self-root", open(at("/proc/self/root", "/secret"), O_RDONLY));
    attempt("proc-1-root", open(at("/proc/1/root", "/secret"), O_RDONLY));
    attempt("proc-1-cwd", open(at("/proc/1/cwd", "/secret"), O_RDONLY));
    symlink("/proc/self/root/..", "/tmp/magic");
    attempt("planted-magic-link", open(at("/tmp/magic", "/secret"), O_RDONLY));
    attempt("dirfd-from-outside", openat(0, "secret", O_RDONLY));
    attempt("proc-fd-magic-link", open("/proc/self/fd/0/secret", O_RDONLY));
    attempt("proc-thread-self-fd", open("/proc/thread-self/fd/0/secret", O_RDONLY));
    char dotdot[4096];
    snprintf(dotdot, sizeof dotdot, "/proc/self/fd/0/../%s/secret", strrchr(outside, '/') + 1);
    attempt("proc-fd-dotdot", open(dotdot, O_RDONLY));
    attempt("proc-1-fd", open("/proc/1/fd/0/secret", O_RDONLY));
    attempt("proc-fd-o-path", open("/proc/self/fd/0/secret", O_PATH));
    attempt("dirfd-dotdot", openat(0, "../../secret", O_RDONLY));
    /* Directory opens and metadata run natively: no directory from outside may be held. */
    struct stat st0;
    printf("stdin-directory %s\n", fstat(0, &st0) == 0 && S_ISDIR(st0.st_mode) ? "ALLOWED" : "refused");
    listing("dirfd-listing", openat(0, ".", O_RDONLY | O_DIRECTORY));
    listing("dirfd-dotdot-listing", openat(0, "..", O_RDONLY | O_DIRECTORY));
    listing("proc-fd-listing", open("/proc/self/fd/0", O_RDONLY | O_DIRECTORY));
    listing("proc-fd-dotdot-listing", open("/proc/self/fd/0/..", O_RDONLY | O_DIRECTORY));
    printf("stat-through-fd %s\n", fstatat(0, "secret", &st0, 0) == 0 ? "ESCAPED" : "contained");
    int op = openat(0, "secret", O_PATH);
    char reopen[64];
    snprintf(reopen, sizeof reopen, "/proc/self/fd/%d", op);
    attempt("o-path-reopened", op >= 0 ? open(reopen, O_RDONLY) : -1);
    /* A directory planted as a symlink to the outside, then written through. */
    symlink(outside, "/tmp/out");
    mkdir("/tmp/out/made-inside", 0755);
    int w = open("/tmp/out/written", O_CREAT | O_WRONLY, 0644);
    if (w >= 0) { write(w, "x", 1); close(w); }
    link(at("", "/secret"), "/tmp/hardlink");
    attempt("hardlink", open("/tmp/hardlink", O_RDONLY));
    /* The cwd may not move outside: not by fchdir, not through a magic link. */
    printf("chdir-magic-link %s\n", chdir("/proc/self/fd/0") == 0 ? "ALLOWED" : "refused");
    printf("chroot-inside %s\n", chroot("/tmp") == 0 ? "ALLOWED" : "refused");
    int moved = fchdir(0) == 0;
    printf("fchdir-outside %s\n", moved ? "ALLOWED" : "refused");
    fflush(stdout);
    /* Were it allowed: relative opens would still stay in the root... */
    if (moved) {
        attempt("cwd-outside", open("secret", O_RDONLY));
        /* ...and exec of a relative path is refused rather than run from outside. */
        pid_t p = fork();
        if (p == 0) {
            char *args[] = {"payload", NULL};
            execv("./payload", args);
            printf("exec-from-outside-cwd refused errno=%d\n", errno);
            fflush(stdout);
            _exit(0);
        }
        waitpid(p, NULL, 0);
        /* chroot into the outside directory, then an absolute exec of a path that also exists
           inside the sandbox (so the gofer's check passes). */
        int pf = open("/payload", O_CREAT | O_WRONLY, 0755);
        write(pf, "#!/bin/sh\necho inside-payload\n", 31);
        close(pf);
        printf("chroot %s\n", chroot(".") == 0 ? "ALLOWED" : "refused");
        fflush(stdout);
        p = fork();
        if (p == 0) {
            char *args[] = {"payload", NULL};
            execv("/payload", args);
            _exit(0);
        }
        waitpid(p, NULL, 0);
    }
    return 0;
}
"##;

#[test]
fn nothing_outside_the_root_is_reachable() {
    let probe = compile_c_static("escape", ESCAPE);
    let root = mini_root("escape-root");
    std::fs::copy(&probe, root.join("bin/escape")).unwrap();
    let outside = scratch("escape-outside");
    std::fs::write(outside.join("secret"), "TOP SECRET\n").unwrap();
    std::fs::write(outside.join("payload"), "#!/bin/sh\necho ESCAPED-EXEC\n").unwrap();
    set_mode(&outside.join("payload"), 0o755);
    // The same path inside the root holds a harmless payload, so a check that only looks up the
    // path would pass while the kernel would run the outside one.
    let inside = root.join(outside.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(inside.join("payload"), "#!/bin/sh\necho inside-payload\n").unwrap();
    set_mode(&inside.join("payload"), 0o755);
    let dir = std::fs::File::open(&outside).unwrap();
    let child = rvisor_do([
        "--root".as_ref(),
        root.as_os_str(),
        "--".as_ref(),
        "/bin/escape".as_ref(),
        outside.as_os_str(),
    ])
    .stdin(Stdio::from(dir))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("ESCAPED"), "{text}");
    for name in [
        "absolute-symlink",
        "relative-symlink",
        "dotdot-chain",
        "dotdot-from-tmp",
        "proc-self-root",
        "proc-1-root",
        "proc-1-cwd",
        "planted-magic-link",
        "dirfd-from-outside",
        "proc-fd-magic-link",
        "proc-thread-self-fd",
        "proc-fd-dotdot",
        "proc-1-fd",
        "proc-fd-o-path",
        "dirfd-dotdot",
        "hardlink",
        "dirfd-listing",
        "dirfd-dotdot-listing",
        "proc-fd-listing",
        "proc-fd-dotdot-listing",
        "stat-through-fd",
        "o-path-reopened",
    ] {
        assert!(
            text.contains(&format!("{name} contained")),
            "{name} missing:\n{text}"
        );
    }
    for refused in [
        "stdin-directory refused",
        "chdir-magic-link refused",
        "chroot-inside refused",
        "fchdir-outside refused",
    ] {
        assert!(text.contains(refused), "{refused}:\n{text}");
    }
    assert!(!text.contains("ALLOWED"), "{text}");
    assert!(
        !outside.join("made-inside").exists(),
        "mkdir went through a planted symlink"
    );
    assert!(
        !outside.join("written").exists(),
        "a write went through a planted symlink"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        2,
        "the outside directory changed"
    );
}

const RACE: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char path[64] = "/tmp/w";
static volatile int stop;

/* Flips the path the main thread opens between a writable and a read-only target. */
static void *flipper(void *arg) {
    const char **targets = arg;
    unsigned n = 0;
    while (!stop) strcpy(path, targets[n++ & 1]);
    return NULL;
}

int main(int argc, char **argv) {
    const char *targets[2] = {argv[1], argv[2]};
    pthread_t t;
    pthread_create(&t, NULL, flipper, targets);
    int opened = 0;
    for (int i = 0; i < 3000; i++) {
        int fd = open(path, O_RDWR);
        if (fd < 0) continue;
        opened++;
        char link[64], target[256] = {0};
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        readlink(link, target, sizeof target - 1);
        if (strcmp(target, argv[2]) == 0) { printf("WRITABLE fd to %s\n", target); return 1; }
        close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("opened %d writable, none read-only\n", opened);
    return 0;
}
"#;

/// A thread flips the path buffer while another opens it read-write: the gofer opens what was
/// read once, and the read-only file never comes back writable (also through the native path
/// of /dev).
#[test]
fn racing_path_flips_never_yield_a_writable_read_only_file() {
    let probe = compile_c("race", RACE);
    let ro = scratch("race-ro");
    std::fs::write(ro.join("f"), "read-only\n").unwrap();
    for writable in ["/tmp/w", "/dev/null"] {
        let o = run_for(
            &mut rvisor_do([
                "--volume".to_string(),
                format!("{}:/ro:ro", ro.display()),
                "--".to_string(),
                "sh".to_string(),
                "-c".to_string(),
                format!("touch /tmp/w && {} {writable} /ro/f", probe.display()),
            ]),
            120,
        );
        let out = ok(&o);
        assert!(out.contains("none read-only"), "{writable}: {out}");
    }
    assert_eq!(
        std::fs::read_to_string(ro.join("f")).unwrap(),
        "read-only\n"
    );
}
