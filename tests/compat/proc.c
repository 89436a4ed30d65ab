/* /proc (compat item 8): writing another thread's comm (directly and by pthread_setname_np), a
 * process's own comm, another process's comm; writing and reading /proc/self/mem (including a
 * read-only mapping, which the kernel writes with FOLL_FORCE); what rmdir, unlink, mkdir and chmod
 * do to /proc entries; the magic links; fdinfo; the id maps; oom_score_adj. */
#include "compat.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

static const char *self_path;
static char abs_scratch[PATH_MAX];

/* --- threads ----------------------------------------------------------------------------------- */

static int hold[2];
static pid_t thread_tid;

static void *waiting_thread(void *arg) {
    (void)arg;
    thread_tid = syscall(SYS_gettid);
    char c;
    while (read(hold[0], &c, 1) > 0) {
    }
    return NULL;
}

/* Starts a thread that waits until the case ends; returns it with `thread_tid` set. */
static pthread_t start_thread(void) {
    pthread_t t;
    must(pipe(hold), "pipe");
    thread_tid = 0;
    pthread_create(&t, NULL, waiting_thread, NULL);
    while (!__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST)) usleep(1000);
    return t;
}

static const char *read_trimmed(const char *path) {
    static char b[256];
    char *s = slurp(path);
    if (!s) return rv(-1);
    snprintf(b, sizeof b, "%.200s", s);
    b[strcspn(b, "\n")] = 0;
    return b;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    int r = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static void comm_other_thread_write(void) {
    pthread_t t = start_thread();
    char p[96];
    snprintf(p, sizeof p, "/proc/self/task/%d/comm", thread_tid);
    result("write=%s", rv(write_file(p, "wname")));
    append("read=%s", read_trimmed(p));
    char n[32] = {0};
    pthread_getname_np(t, n, sizeof n);
    append("getname=%s", n);
    append("main=%s", read_trimmed("/proc/self/comm"));
}

static void comm_other_thread_via_pid_path(void) {
    start_thread();
    char p[96];
    snprintf(p, sizeof p, "/proc/%d/task/%d/comm", getpid(), thread_tid);
    result("write=%s", rv(write_file(p, "pidpath")));
    append("read=%s", read_trimmed(p));
}

static void pthread_setname_np_other_thread(void) {
    pthread_t t = start_thread();
    int r = pthread_setname_np(t, "pname");
    result("set=%s", r == 0 ? "ok" : ename(r));
    char n[32] = {0};
    r = pthread_getname_np(t, n, sizeof n);
    append("get=%s name=%s", r == 0 ? "ok" : ename(r), n);
    r = pthread_setname_np(t, "a-name-longer-than-15");
    append("too_long=%s", r == 0 ? "ok" : ename(r));
}

static void comm_self_write(void) {
    result("write=%s", rv(write_file("/proc/self/comm", "selfname")));
    char n[32] = {0};
    prctl(PR_GET_NAME, n);
    append("prctl=%s", n);
    append("thread_self=%s", read_trimmed("/proc/thread-self/comm"));
}

static void comm_truncated(void) {
    result("write=%s", rv(write_file("/proc/self/comm", "abcdefghijklmnopqrstuvwxyz")));
    append("read=%s", read_trimmed("/proc/self/comm"));
}

static void comm_other_process_write(void) {
    int p[2];
    must(pipe(p), "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        while (read(p[0], &c, 1) > 0) {
        }
        _exit(0);
    }
    close(p[0]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    result("write=%s", rv(write_file(path, "other")));
    append("read=%s", read_trimmed(path));
    close(p[1]);
    waitpid(pid, NULL, 0);
}

static void prctl_name_in_proc(void) {
    prctl(PR_SET_NAME, "prctlname");
    result("comm=%s", read_trimmed("/proc/self/comm"));
    append("status=%s", status_field("/proc/self/status", "Name"));
}

static void task_listing(void) {
    start_thread();
    start_thread();
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    result("tasks=%d", n);
    append("Threads=%s", status_field("/proc/self/status", "Threads"));
}

static void rmdir_task_dir(void) {
    start_thread();
    char p[96];
    snprintf(p, sizeof p, "/proc/self/task/%d", thread_tid);
    result("other=%s", rv(rmdir(p)));
    snprintf(p, sizeof p, "/proc/self/task/%ld", syscall(SYS_gettid));
    append("own=%s", rv(rmdir(p)));
    append("still_there=%s", rv(access(p, F_OK)));
}

static void proc_tree_changes(void) {
    result("unlink=%s", rv(unlink("/proc/self/comm")));
    append("rmdir_self=%s", rv(rmdir("/proc/self")));
    append("mkdir=%s", rv(mkdir("/proc/self/newdir", 0755)));
    append("creat=%s", rv(open("/proc/self/newfile", O_WRONLY | O_CREAT, 0644)));
    append("rename=%s", rv(rename("/proc/self/comm", "/proc/self/comm2")));
    append("chmod=%s", rv(chmod("/proc/self/comm", 0600)));
    append("symlink=%s", rv(symlink("x", "/proc/self/link")));
}

/* --- /proc/self/mem ---------------------------------------------------------------------------- */

static char target[64] = "original";

static void proc_self_mem_write(void) {
    int fd = open("/proc/self/mem", O_RDWR);
    if (fd < 0) {
        result("open=%s", rv(-1));
        return;
    }
    ssize_t w = pwrite(fd, "patched", 8, (off_t)(uintptr_t)target);
    result("write=%zd now=%s", w < 0 ? (ssize_t)-errno : w, target);
    char back[16] = {0};
    ssize_t r = pread(fd, back, 8, (off_t)(uintptr_t)target);
    append("read=%zd value=%s", r, back);
}

static void proc_self_mem_write_readonly_page(void) {
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(page, "readonly");
    mprotect(page, 4096, PROT_READ);
    int fd = open("/proc/self/mem", O_RDWR);
    if (fd < 0) {
        result("open=%s", rv(-1));
        return;
    }
    ssize_t w = pwrite(fd, "forced!", 8, (off_t)(uintptr_t)page);
    result("write=%s now=%s", w == 8 ? "ok" : rv(-1), page);
}

static void proc_self_mem_unmapped(void) {
    int fd = open("/proc/self/mem", O_RDWR);
    if (fd < 0) {
        result("open=%s", rv(-1));
        return;
    }
    char b[8];
    result("read0=%s", rv(pread(fd, b, 8, 0)));
    append("write0=%s", rv(pwrite(fd, b, 8, 0)));
}

static void proc_self_mem_via_lseek(void) {
    int fd = open("/proc/self/mem", O_RDWR);
    if (fd < 0) {
        result("open=%s", rv(-1));
        return;
    }
    strcpy(target, "seekable");
    off_t o = lseek(fd, (off_t)(uintptr_t)target, SEEK_SET);
    char b[16] = {0};
    ssize_t n = read(fd, b, 8);
    result("seek=%s read=%zd value=%s", o == (off_t)(uintptr_t)target ? "ok" : rv(-1), n, b);
}

static void proc_child_mem_write(void) {
    /* A child (same user, dumpable) patched through /proc/<pid>/mem, read back by it. */
    int go[2], back[2];
    must(pipe(go), "pipe");
    must(pipe(back), "pipe");
    strcpy(target, "childorig");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        if (read(go[0], &c, 1) != 1) _exit(1);
        if (write(back[1], target, 16) != 16) _exit(1);
        _exit(0);
    }
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/mem", pid);
    int fd = open(p, O_RDWR);
    result("open=%s", rv(fd));
    if (fd >= 0) append("write=%s", rv(pwrite(fd, "childnew", 9, (off_t)(uintptr_t)target)));
    must(write(go[1], "g", 1), "write");
    char b[16] = {0};
    if (read(back[0], b, 16) == 16) append("child_sees=%s", b);
    waitpid(pid, NULL, 0);
}

/* --- links and fdinfo -------------------------------------------------------------------------- */

static const char *link_of(const char *path) {
    static char b[PATH_MAX];
    ssize_t n = readlink(path, b, sizeof b - 1);
    if (n < 0) return rv(-1);
    b[n] = 0;
    size_t s = strlen(abs_scratch);
    if (strncmp(b, abs_scratch, s) == 0) {
        memmove(b + 8, b + s, strlen(b + s) + 1);
        memcpy(b, "SCRATCH:", 8);
    }
    return b;
}

static void link_exe(void) {
    /* The harness runs the program by its canonical absolute path. */
    const char *l = link_of("/proc/self/exe");
    result("exe=%s", strcmp(l, self_path) == 0 ? "same" : l);
}

static void link_cwd_and_fd(void) {
    must(mkdir("lk", 0755), "lk");
    must(chdir("lk"), "chdir");
    make_file("file", "x", 0644);
    int fd = open("file", O_RDONLY);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    result("cwd=%s", link_of("/proc/self/cwd"));
    append("fd=%s", link_of(p));
    unlink("file");
    append("deleted=%s", link_of(p));
}

static void link_pipe_socket(void) {
    int pp[2], sp[2];
    must(pipe(pp), "pipe");
    must(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), "socketpair");
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", pp[0]);
    result("pipe=%.6s", link_of(p));
    snprintf(p, sizeof p, "/proc/self/fd/%d", sp[0]);
    append("socket=%.8s", link_of(p));
    int efd = eventfd(0, 0);
    snprintf(p, sizeof p, "/proc/self/fd/%d", efd);
    append("eventfd=%s", link_of(p));
}

static void reopen_via_proc_fd(void) {
    make_file("reopen", "abc", 0644);
    int fd = open("reopen", O_RDONLY);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int w = open(p, O_WRONLY | O_APPEND);
    result("reopen_write=%s", rv(w));
    if (w >= 0) append("write=%s", rv(write(w, "d", 1)));
    char b[8] = {0};
    append("content=%.*s", (int)pread(fd, b, 8, 0), b);
}

static void fdinfo_fields(void) {
    make_file("fdinfo", "", 0644);
    int fd = open("fdinfo", O_RDWR | O_APPEND | O_CLOEXEC);
    must(write(fd, "12345", 5), "write");
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    result("pos=%s", status_field(p, "pos"));
    append("flags=%s", status_field(p, "flags"));
}

static void id_maps(void) {
    const char *files[] = {"/proc/self/uid_map", "/proc/self/gid_map"};
    for (int i = 0; i < 2; i++) {
        char *s = slurp(files[i]);
        unsigned inside, outside, count;
        if (!s) {
            append("%s=%s", i ? "gid_map" : "uid_map", rv(-1));
            continue;
        }
        int lines = 0;
        for (char *c = s; *c; c++) lines += *c == '\n';
        /* The host side of a rootless map is the caller's id: not reported. */
        sscanf(s, "%u %u %u", &inside, &outside, &count);
        append("%s=lines:%d,first:%u,count:%u", i ? "gid_map" : "uid_map", lines, inside, count);
    }
    append("setgroups=%s", read_trimmed("/proc/self/setgroups"));
}

static void oom_score_adj(void) {
    result("raise=%s", rv(write_file("/proc/self/oom_score_adj", "100")));
    append("read=%s", read_trimmed("/proc/self/oom_score_adj"));
    append("lower=%s", rv(write_file("/proc/self/oom_score_adj", "50")));
    append("bad=%s", rv(write_file("/proc/self/oom_score_adj", "5000")));
}

static void oom_score_adj_unpriv(void) {
    write_file("/proc/self/oom_score_adj", "100");
    DROP_OR_RETURN();
    result("lower=%s", rv(write_file("/proc/self/oom_score_adj", "50")));
    append("raise=%s", rv(write_file("/proc/self/oom_score_adj", "200")));
}

static void stat_and_status(void) {
    prctl(PR_SET_NAME, "statname");
    char *s = slurp("/proc/self/stat");
    char comm[32] = "?", state = '?';
    if (s) {
        char *open = strchr(s, '('), *close = strrchr(s, ')');
        if (open && close && close > open) {
            snprintf(comm, sizeof comm, "%.*s", (int)(close - open - 1), open + 1);
            state = close[2];
        }
    }
    result("comm=%s state=%c", comm, state);
    append("State=%s", status_field("/proc/self/status", "State"));
    append("Seccomp_filters_field=%s",
           strcmp(status_field("/proc/self/status", "Seccomp"), "(absent)") == 0 ? "absent" : "present");
}

static void cmdline_matches_argv(void) {
    char *s = slurp("/proc/self/cmdline");
    if (!s) {
        result("%s", rv(-1));
        return;
    }
    result("argv0=%s", strcmp(s, self_path) == 0 ? "same" : "differs");
    append("argv1=%s", strcmp(s + strlen(s) + 1, abs_scratch) == 0 ? "same" : "differs");
}

static void limits_match_getrlimit(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 77;
    setrlimit(RLIMIT_NOFILE, &rl);
    char *s = slurp("/proc/self/limits");
    char *line = s ? strstr(s, "Max open files") : NULL;
    unsigned long soft = 0;
    if (line) sscanf(line + strlen("Max open files"), "%lu", &soft);
    result("soft=%lu", soft);
}

static void personality_file(void) { result("%s", read_trimmed("/proc/self/personality")); }

static void ngroups_max(void) { result("%s", read_trimmed("/proc/sys/kernel/ngroups_max")); }

int main(int argc, char **argv) {
    self_path = argv[0];
    compat_init(argc, argv);
    if (!getcwd(abs_scratch, sizeof abs_scratch)) return 2;

    CASE(comm_other_thread_write);
    CASE(comm_other_thread_via_pid_path);
    CASE(pthread_setname_np_other_thread);
    CASE(comm_self_write);
    CASE(comm_truncated);
    CASE(comm_other_process_write);
    CASE(prctl_name_in_proc);
    CASE(task_listing);
    CASE(rmdir_task_dir);
    CASE(proc_tree_changes);
    CASE(proc_self_mem_write);
    CASE(proc_self_mem_write_readonly_page);
    CASE(proc_self_mem_unmapped);
    CASE(proc_self_mem_via_lseek);
    CASE(proc_child_mem_write);
    CASE(link_exe);
    CASE(link_cwd_and_fd);
    CASE(link_pipe_socket);
    CASE(reopen_via_proc_fd);
    CASE(fdinfo_fields);
    CASE(id_maps);
    CASE(oom_score_adj);
    CASE(oom_score_adj_unpriv);
    CASE(stat_and_status);
    CASE(cmdline_matches_argv);
    CASE(limits_match_getrlimit);
    CASE(personality_file);
    CASE(ngroups_max);
    return 0;
}
