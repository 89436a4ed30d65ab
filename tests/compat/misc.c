/* Assorted behaviours (compat items 9 and 10): RLIMIT_FSIZE on writes and truncates (EFBIG and
 * SIGXFSZ), inotify events (writes through a dup'ed fd, truncate, getdents, link, exec, rename),
 * stealing a controlling terminal with TIOCSCTTY, SO_RCVBUFFORCE, nice values, argument errors
 * that refused calls must still report first (io_uring_setup, mount, umount2, setns, ...), and
 * namespace creation with unshare (refused in rvisor: the one allowed difference). */
#include "compat.h"

#include <limits.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/swap.h>
#include <termios.h>
#include <dirent.h>
#include <sched.h>
#include <linux/io_uring.h>

static const char *self_path;

/* --- RLIMIT_FSIZE ------------------------------------------------------------------------------ */

static volatile sig_atomic_t xfsz_caught;
static void on_xfsz(int sig) {
    (void)sig;
    xfsz_caught++;
}

static void set_fsize(rlim_t n) {
    struct rlimit rl = {n, n};
    must(setrlimit(RLIMIT_FSIZE, &rl), "setrlimit");
}

static const char *size_of(const char *path) {
    static char b[32];
    struct stat st;
    if (stat(path, &st) < 0) return rv(-1);
    snprintf(b, sizeof b, "%lld", (long long)st.st_size);
    return b;
}

static void fsize_write_ignored(void) {
    signal(SIGXFSZ, SIG_IGN);
    set_fsize(10);
    int fd = open("fsize_ign", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t a = write(fd, "0123456789abcdef", 16);
    result("first=%zd", a);
    append("second=%s", rv(write(fd, "x", 1)));
    append("size=%s", size_of("fsize_ign"));
}

static void fsize_write_caught(void) {
    signal(SIGXFSZ, on_xfsz);
    set_fsize(10);
    int fd = open("fsize_caught", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t a = write(fd, "0123456789", 10);
    result("first=%zd", a);
    append("second=%s", rv(write(fd, "x", 1)));
    append("caught=%d", (int)xfsz_caught);
}

static void fsize_write_default_kills(void) {
    signal(SIGXFSZ, SIG_DFL);
    set_fsize(4);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("fsize_kill", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (write(fd, "0123", 4) != 4) _exit(3);
        if (write(fd, "4", 1) < 0) _exit(4);
        _exit(5);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        result("signal=%s", sigabbrev_np(WTERMSIG(st)));
    else
        result("exit=%d", WEXITSTATUS(st));
}

static void fsize_pwrite_beyond(void) {
    signal(SIGXFSZ, SIG_IGN);
    set_fsize(10);
    int fd = open("fsize_pwrite", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    result("at20=%s", rv(pwrite(fd, "x", 1, 20)));
    append("at9=%zd", pwrite(fd, "yz", 2, 9));
}

static void fsize_ftruncate(void) {
    signal(SIGXFSZ, on_xfsz);
    set_fsize(10);
    int fd = open("fsize_ftrunc", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int r = ftruncate(fd, 100);
    result("%s caught=%d size=%s", rv(r), (int)xfsz_caught, size_of("fsize_ftrunc"));
}

static void fsize_truncate_path(void) {
    make_file("fsize_trunc", "", 0644);
    signal(SIGXFSZ, on_xfsz);
    set_fsize(10);
    int r = truncate("fsize_trunc", 100);
    result("%s caught=%d size=%s", rv(r), (int)xfsz_caught, size_of("fsize_trunc"));
}

static void fsize_dev_null(void) {
    /* Only regular files are limited. */
    signal(SIGXFSZ, on_xfsz);
    set_fsize(1);
    int fd = open("/dev/null", O_WRONLY);
    ssize_t n = write(fd, "0123456789", 10);
    result("devnull=%zd caught=%d", n, (int)xfsz_caught);
}

static void fsize_open_trunc_existing(void) {
    /* O_TRUNC to zero is never beyond the limit; copying a larger file in is. */
    make_file("fsize_big", "0123456789abcdefghij", 0644);
    signal(SIGXFSZ, SIG_IGN);
    set_fsize(5);
    int fd = open("fsize_big", O_WRONLY | O_TRUNC);
    result("open=%s size=%s", rv(fd), size_of("fsize_big"));
    int fd2 = open("fsize_big", O_WRONLY | O_APPEND);
    append("write=%zd", write(fd2, "0123456789", 10));
}

/* --- inotify ----------------------------------------------------------------------------------- */

static const struct {
    unsigned m;
    const char *n;
} event_names[] = {
    {IN_ACCESS, "ACCESS"},         {IN_MODIFY, "MODIFY"},
    {IN_ATTRIB, "ATTRIB"},         {IN_CLOSE_WRITE, "CLOSE_WRITE"},
    {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
    {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
    {IN_CREATE, "CREATE"},         {IN_DELETE, "DELETE"},
    {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
    {IN_IGNORED, "IGNORED"},       {IN_ISDIR, "ISDIR"},
    {IN_Q_OVERFLOW, "OVERFLOW"},
};

/* Appends the events of one read of `in` to `out` as `MASKS[:name]`; returns the union of their
 * masks (0 when none were queued). */
static unsigned read_events(int in, char *out, size_t cap) {
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    unsigned all = 0;
    ssize_t n = read(in, buf, sizeof buf);
    for (char *p = buf; n > 0 && p < buf + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        all |= e->mask;
        if (strlen(out) + 80 < cap) {
            if (out[0]) strcat(out, " ");
            int first = 1;
            for (size_t i = 0; i < sizeof event_names / sizeof event_names[0]; i++)
                if (e->mask & event_names[i].m) {
                    if (!first) strcat(out, "|");
                    strcat(out, event_names[i].n);
                    first = 0;
                }
            if (e->len && e->name[0]) {
                strcat(out, ":");
                strncat(out, e->name, 40);
            }
        }
        p += sizeof *e + e->len;
    }
    return all;
}

/* The events queued on `in` now, joined by spaces (IN_ prefixes dropped), or `none`. */
static const char *drain(int in) {
    static char out[RESULT_MAX];
    out[0] = 0;
    read_events(in, out, sizeof out);
    return out[0] ? out : "none";
}

/* The events up to one in `until` (IN_CLOSE_* after a close: Linux queues it before close
 * returns, a sandbox may deliver it a little later; waiting for it, at most 2 s, keeps the case
 * about which events come, not when), then whatever else is queued. */
static const char *settle(int in, unsigned until) {
    static char out[RESULT_MAX];
    out[0] = 0;
    for (int i = 0; i < 200; i++) {
        if (read_events(in, out, sizeof out) & until) break;
        usleep(10000);
    }
    read_events(in, out, sizeof out);
    return out[0] ? out : "none";
}

/* The distinct event kinds in `events` (sorted by kind), for cases where how often the kernel
 * repeats an event is not the point. */
static const char *kinds(const char *events) {
    static char out[RESULT_MAX];
    out[0] = 0;
    for (size_t i = 0; i < sizeof event_names / sizeof event_names[0]; i++) {
        const char *n = event_names[i].n;
        size_t l = strlen(n);
        for (const char *p = strstr(events, n); p; p = strstr(p + 1, n))
            if ((p == events || p[-1] == ' ' || p[-1] == '|') && (p[l] == 0 || p[l] == ' ' || p[l] == '|' || p[l] == ':')) {
                if (out[0]) strcat(out, ",");
                strcat(out, n);
                break;
            }
    }
    return out[0] ? out : "none";
}

static int inotify_on(const char *path, unsigned mask) {
    int in = inotify_init1(IN_NONBLOCK);
    must(in, "inotify_init1");
    must(inotify_add_watch(in, path, mask), path);
    return in;
}

static void inotify_write_via_dup(void) {
    make_file("in_dup", "", 0644);
    int in = inotify_on("in_dup", IN_ALL_EVENTS);
    int fd = open("in_dup", O_WRONLY);
    int fd2 = dup(fd);
    must(write(fd2, "abc", 3), "write");
    close(fd);
    result("after_first_close=%s", drain(in));
    close(fd2);
    append("after_last_close=%s", settle(in, IN_CLOSE));
}

static void inotify_truncate(void) {
    make_file("in_trunc", "abcdef", 0644);
    int in = inotify_on("in_trunc", IN_ALL_EVENTS);
    must(truncate("in_trunc", 2), "truncate");
    result("truncate=%s", drain(in));
    int fd = open("in_trunc", O_WRONLY);
    append("open=%s", drain(in));
    must(ftruncate(fd, 1), "ftruncate");
    append("ftruncate=%s", drain(in));
    close(fd);
    append("close=%s", settle(in, IN_CLOSE));
    int fd3 = open("in_trunc", O_WRONLY | O_TRUNC);
    append("o_trunc=%s", drain(in));
    close(fd3);
    append("close=%s", settle(in, IN_CLOSE));
}

static void inotify_getdents(void) {
    must(mkdir("in_dir", 0755), "mkdir");
    make_file("in_dir/a", "", 0644);
    int in = inotify_on("in_dir", IN_ALL_EVENTS);
    DIR *d = opendir("in_dir");
    result("open=%s", drain(in));
    while (readdir(d)) {
    }
    append("read=%s", drain(in));
    closedir(d);
    append("close=%s", settle(in, IN_CLOSE));
}

static void inotify_link(void) {
    must(mkdir("in_link", 0755), "mkdir");
    make_file("in_link/f", "", 0644);
    int in_dir = inotify_on("in_link", IN_ALL_EVENTS);
    int in_file = inotify_on("in_link/f", IN_ALL_EVENTS);
    must(link("in_link/f", "in_link/g"), "link");
    result("dir=%s", drain(in_dir));
    append("file=%s", drain(in_file));
    must(unlink("in_link/g"), "unlink");
    append("unlink_dir=%s", drain(in_dir));
    append("unlink_file=%s", drain(in_file));
}

static void inotify_rename(void) {
    must(mkdir("in_rename", 0755), "mkdir");
    make_file("in_rename/f", "", 0644);
    int in = inotify_init1(IN_NONBLOCK);
    must(inotify_add_watch(in, "in_rename", IN_ALL_EVENTS), "watch");
    must(rename("in_rename/f", "in_rename/g"), "rename");
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(in, buf, sizeof buf);
    unsigned cookies[2] = {0, 0};
    int k = 0;
    for (char *p = buf; n > 0 && p < buf + n && k < 2;) {
        struct inotify_event *e = (struct inotify_event *)p;
        if (e->mask & (IN_MOVED_FROM | IN_MOVED_TO)) cookies[k++] = e->cookie;
        p += sizeof *e + e->len;
    }
    result("moves=%d cookie_match=%d", k, k == 2 && cookies[0] == cookies[1] && cookies[0] != 0);
}

static void inotify_attrib_and_create(void) {
    must(mkdir("in_misc", 0755), "mkdir");
    int in = inotify_on("in_misc", IN_ALL_EVENTS);
    must(mknod("in_misc/f", S_IFREG | 0644, 0), "mknod");
    result("create=%s", drain(in));
    must(chmod("in_misc/f", 0600), "chmod");
    append("chmod=%s", drain(in));
    must(mkdir("in_misc/d", 0755), "mkdir");
    append("mkdir=%s", drain(in));
    must(symlink("x", "in_misc/s"), "symlink");
    append("symlink=%s", drain(in));
    must(rmdir("in_misc/d"), "rmdir");
    append("rmdir=%s", drain(in));
}

static void inotify_self_events(void) {
    make_file("in_self", "", 0644);
    int in = inotify_on("in_self", IN_ALL_EVENTS);
    must(rename("in_self", "in_self2"), "rename");
    result("move=%s", drain(in));
    must(unlink("in_self2"), "unlink");
    append("unlink=%s", drain(in));
}

static void inotify_exec(void) {
    /* A copy of this program, watched, then run with --exit. */
    int src = open(self_path, O_RDONLY);
    int dst = open("in_exe", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0) must(write(dst, buf, n), "copy");
    close(src);
    close(dst);
    int in = inotify_on("in_exe", IN_ALL_EVENTS);
    pid_t pid = fork();
    if (pid == 0) {
        execl("./in_exe", "in_exe", "--exit", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    result("exit=%d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    append("kinds=%s", kinds(settle(in, IN_CLOSE_NOWRITE)));
}

static void inotify_read(void) {
    make_file("in_read", "abc", 0644);
    int in = inotify_on("in_read", IN_ALL_EVENTS);
    int fd = open("in_read", O_RDONLY);
    char b[4];
    must(read(fd, b, 3), "read");
    result("read=%s", drain(in));
    close(fd);
    append("close=%s", settle(in, IN_CLOSE));
}

static void inotify_errors(void) {
    int in = inotify_init1(IN_NONBLOCK);
    make_file("in_err", "", 0644);
    result("zero_mask=%s", rv(inotify_add_watch(in, "in_err", 0)));
    append("missing=%s", rv(inotify_add_watch(in, "in_missing", IN_ALL_EVENTS)));
    append("onlydir_file=%s", rv(inotify_add_watch(in, "in_err", IN_ALL_EVENTS | IN_ONLYDIR)));
    append("add_and_create=%s",
           rv(inotify_add_watch(in, "in_err", IN_ALL_EVENTS | IN_MASK_ADD | IN_MASK_CREATE)));
    int w = inotify_add_watch(in, "in_err", IN_ALL_EVENTS);
    append("again_create=%s", rv(inotify_add_watch(in, "in_err", IN_ALL_EVENTS | IN_MASK_CREATE)));
    append("same_wd=%d", inotify_add_watch(in, "in_err", IN_MODIFY) == w);
    append("rm=%s", rv(inotify_rm_watch(in, w)));
    append("rm_again=%s", rv(inotify_rm_watch(in, w)));
    append("bad_fd=%s", rv(inotify_add_watch(0, "in_err", IN_ALL_EVENTS)));
    append("bad_flags=%s", rv(inotify_init1(0x1)));
}

/* --- terminals --------------------------------------------------------------------------------- */

static volatile sig_atomic_t got_hup;
static void on_hup(int sig) {
    (void)sig;
    got_hup++;
}

static void tiocsctty_steal(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
        result("pty=%s", rv(-1));
        return;
    }
    const char *sname = ptsname(m);
    int ready[2], done[2];
    must(pipe(ready), "pipe");
    must(pipe(done), "pipe");
    pid_t owner = fork();
    if (owner == 0) {
        /* A session that owns the terminal first. */
        signal(SIGHUP, on_hup);
        setsid();
        int s = open(sname, O_RDWR);
        int r = ioctl(s, TIOCSCTTY, 0);
        char c = r == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1) _exit(1);
        if (read(done[0], &c, 1) != 1) _exit(1);
        _exit(got_hup ? 10 : 0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1 || c != 'y') {
        result("owner_ctty=%s", c == 'n' ? "failed" : "died");
        close(done[1]);
        waitpid(owner, NULL, 0);
        return;
    }
    signal(SIGHUP, on_hup);
    setsid();
    int s = open(sname, O_RDWR | O_NOCTTY);
    result("plain=%s", rv(ioctl(s, TIOCSCTTY, 0)));
    append("steal=%s", rv(ioctl(s, TIOCSCTTY, 1)));
    append("caller_hup=%d", (int)got_hup);
    pid_t fg = -1;
    ioctl(s, TIOCGPGRP, &fg);
    append("fg_is_caller=%d", fg == getpgrp());
    must(write(done[1], "d", 1), "write");
    int st;
    waitpid(owner, &st, 0);
    append("owner_hup=%d", WIFEXITED(st) && WEXITSTATUS(st) == 10);
}

static void tiocsctty_not_leader(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
        result("pty=%s", rv(-1));
        return;
    }
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    /* The case runs in a child of the program, which is not a session leader. */
    CHECK(ioctl(s, TIOCSCTTY, 0));
}

static void tiocsti_injection(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
        result("pty=%s", rv(-1));
        return;
    }
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    char ch = 'x';
    CHECK(ioctl(s, TIOCSTI, &ch));
}

/* --- sockets and scheduling -------------------------------------------------------------------- */

static void so_rcvbufforce(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int v = 1 << 20, got = 0;
    socklen_t l = sizeof got;
    result("%s", rv(setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v)));
    getsockopt(s, SOL_SOCKET, SO_RCVBUF, &got, &l);
    append("rcvbuf=%d", got);
}

static void so_sndbufforce_unix(void) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int v = 1 << 20, got = 0;
    socklen_t l = sizeof got;
    result("%s", rv(setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v)));
    getsockopt(s, SOL_SOCKET, SO_SNDBUF, &got, &l);
    append("sndbuf=%d", got);
}

static void so_rcvbufforce_unpriv(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    DROP_OR_RETURN();
    int v = 1 << 20;
    CHECK(setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v));
}

static void nice_within_range(void) {
    result("set10=%s", rv(setpriority(PRIO_PROCESS, 0, 10)));
    errno = 0;
    append("get=%d", getpriority(PRIO_PROCESS, 0));
    errno = 0;
    int n = nice(3);
    append("nice3=%d", n);
    append("set25=%s", rv(setpriority(PRIO_PROCESS, 0, 25)));
    append("clamped=%d", getpriority(PRIO_PROCESS, 0));
    append("bad_which=%s", rv(setpriority(7, 0, 5)));
    append("missing_pid=%s", rv(setpriority(PRIO_PROCESS, 999999, 5)));
}

static void nice_other_process(void) {
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    result("child=%s", rv(setpriority(PRIO_PROCESS, pid, 7)));
    errno = 0;
    append("get=%d", getpriority(PRIO_PROCESS, pid));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void sched_policy_unpriv(void) {
    DROP_OR_RETURN();
    struct sched_param p = {.sched_priority = 1};
    CHECK(sched_setscheduler(0, SCHED_FIFO, &p));
}

static void sched_policy_root(void) {
    struct sched_param p = {.sched_priority = 1};
    result("fifo=%s", rv(sched_setscheduler(0, SCHED_FIFO, &p)));
    p.sched_priority = 0;
    append("back=%s", rv(sched_setscheduler(0, SCHED_OTHER, &p)));
    p.sched_priority = 500;
    append("bad_prio=%s", rv(sched_setscheduler(0, SCHED_FIFO, &p)));
}

/* --- refused calls report argument errors first ------------------------------------------------ */

static void io_uring_setup_bad_params(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    result("entries0=%s", RV(syscall(SYS_io_uring_setup, 0, &p)));
    append("fault=%s", RV(syscall(SYS_io_uring_setup, 4, (void *)8)));
    memset(&p, 0, sizeof p);
    p.resv[0] = 1;
    append("resv=%s", RV(syscall(SYS_io_uring_setup, 4, &p)));
    memset(&p, 0, sizeof p);
    p.flags = 0x80000000;
    append("flags=%s", RV(syscall(SYS_io_uring_setup, 4, &p)));
}

static void io_uring_enter_bad_fd(void) {
    result("enter=%s", RV(syscall(SYS_io_uring_enter, 9999, 0, 0, 0, NULL, 0)));
    append("register=%s", RV(syscall(SYS_io_uring_register, 9999, 0, NULL, 0)));
}

static void mount_unknown_fstype(void) {
    must(mkdir("mnt_unknown", 0755), "mkdir");
    CHECK(mount("none", "mnt_unknown", "nosuchfs", 0, NULL));
}

static void mount_missing_target(void) { CHECK(mount("none", "no_such_dir", "tmpfs", 0, NULL)); }

static void mount_unpriv(void) {
    must(mkdir("mnt_unpriv", 0755), "mkdir");
    DROP_OR_RETURN();
    CHECK(mount("none", "mnt_unpriv", "tmpfs", 0, NULL));
}

static void umount_errors(void) {
    must(mkdir("umnt", 0755), "mkdir");
    result("not_mount=%s", rv(umount2("umnt", 0)));
    append("missing=%s", rv(umount2("no_such_dir", 0)));
    append("bad_flags=%s", rv(umount2("umnt", 0x80000000)));
    append("expire_force=%s", rv(umount2("umnt", MNT_EXPIRE | MNT_FORCE)));
}

static void setns_errors(void) {
    result("bad_fd=%s", rv(setns(9999, 0)));
    int fd = open(".", O_RDONLY);
    append("not_ns=%s", rv(setns(fd, 0)));
    int ns = open("/proc/self/ns/uts", O_RDONLY);
    append("open_ns=%s", rv(ns));
    if (ns >= 0) append("wrong_type=%s", rv(setns(ns, CLONE_NEWNET)));
}

static void unshare_bad_flags(void) {
    result("csignal=%s", rv(unshare(0x1)));
    append("clone_vm=%s", rv(unshare(CLONE_VM)));
    append("nothing=%s", rv(unshare(0)));
    append("files=%s", rv(unshare(CLONE_FILES)));
}

static void chroot_errors(void) {
    make_file("chroot_file", "", 0644);
    result("missing=%s", rv(chroot("no_such_dir")));
    append("file=%s", rv(chroot("chroot_file")));
}

static void chroot_unpriv(void) {
    DROP_OR_RETURN();
    CHECK(chroot("."));
}

static void pivot_root_errors(void) {
    result("missing=%s", RV(syscall(SYS_pivot_root, "no_such_dir", "no_such_dir")));
}

static void swapoff_missing(void) { CHECK(swapoff("no_such_swap")); }

static void perf_event_open_fault(void) { CHECK(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)); }

static void bpf_bad_command(void) { CHECK(syscall(SYS_bpf, 9999, NULL, 0)); }

static void userfaultfd_bad_flags(void) { CHECK(syscall(SYS_userfaultfd, 0x80000000)); }

static void acct_missing(void) { CHECK(acct("no_such_file")); }

static void reboot_bad_magic(void) { CHECK(syscall(SYS_reboot, 1, 2, 0, NULL)); }

static void sethostname_is_not_refused(void) { CHECK(sethostname("misc", 4)); }

/* --- namespaces (item 10) ---------------------------------------------------------------------- */

static void unshare_one(int flag) { CHECK(unshare(flag)); }
static void unshare_newns(void) { unshare_one(CLONE_NEWNS); }
static void unshare_newuts(void) { unshare_one(CLONE_NEWUTS); }
static void unshare_newipc(void) { unshare_one(CLONE_NEWIPC); }
static void unshare_newnet(void) { unshare_one(CLONE_NEWNET); }
static void unshare_newpid(void) { unshare_one(CLONE_NEWPID); }
static void unshare_newuser(void) { unshare_one(CLONE_NEWUSER); }
static void unshare_newcgroup(void) { unshare_one(CLONE_NEWCGROUP); }

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--exit") == 0) return 7;
    self_path = argv[0];
    compat_init(argc, argv);

    CASE(fsize_write_ignored);
    CASE(fsize_write_caught);
    CASE(fsize_write_default_kills);
    CASE(fsize_pwrite_beyond);
    CASE(fsize_ftruncate);
    CASE(fsize_truncate_path);
    CASE(fsize_dev_null);
    CASE(fsize_open_trunc_existing);

    CASE(inotify_write_via_dup);
    CASE(inotify_truncate);
    CASE(inotify_getdents);
    CASE(inotify_link);
    CASE(inotify_rename);
    CASE(inotify_attrib_and_create);
    CASE(inotify_self_events);
    CASE(inotify_exec);
    CASE(inotify_read);
    CASE(inotify_errors);

    CASE(tiocsctty_steal);
    CASE(tiocsctty_not_leader);
    CASE(tiocsti_injection);

    CASE(so_rcvbufforce);
    CASE(so_sndbufforce_unix);
    CASE(so_rcvbufforce_unpriv);
    CASE(nice_within_range);
    CASE(nice_other_process);
    CASE(sched_policy_unpriv);
    CASE(sched_policy_root);

    CASE(io_uring_setup_bad_params);
    CASE(io_uring_enter_bad_fd);
    CASE(mount_unknown_fstype);
    CASE(mount_missing_target);
    CASE(mount_unpriv);
    CASE(umount_errors);
    CASE(setns_errors);
    CASE(unshare_bad_flags);
    CASE(chroot_errors);
    CASE(chroot_unpriv);
    CASE(pivot_root_errors);
    CASE(swapoff_missing);
    CASE(perf_event_open_fault);
    CASE(bpf_bad_command);
    CASE(userfaultfd_bad_flags);
    CASE(acct_missing);
    CASE(reboot_bad_magic);
    CASE(sethostname_is_not_refused);

    CASE(unshare_newns);
    CASE(unshare_newuts);
    CASE(unshare_newipc);
    CASE(unshare_newnet);
    CASE(unshare_newpid);
    CASE(unshare_newuser);
    CASE(unshare_newcgroup);
    return 0;
}
