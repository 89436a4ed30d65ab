/* The compatibility suite's case runner (tests/tests/compat.rs runs each program natively and in
 * rvisor and compares the lines). Each case prints exactly one line, `CASE <name> <result>`,
 * where the result is deterministic and independent of the environment (no pids, times or
 * host ids): `ok`, `errno=NAME`, a mode, a value. A case runs in a forked child with an alarm
 * guard, so identity changes and crashes stay in it; a child that dies or sets no result is
 * reported as such (`!died=SIGNAL`, `!exit=N`, `!noresult`: a leading `!` marks a broken case).
 *
 * Every program takes one argument, its scratch directory (writable in every mode, the same path
 * natively and in the sandbox), and chdirs into it before its cases run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESULT_MAX 512
#define HELPER static __attribute__((unused))

/* The result of the running case, in memory shared with the parent. */
static char *compat_result;
/* The scratch directory (argv[1]). */
static const char *scratch;

/* The symbolic name of an errno value. */
HELPER const char *ename(int e) {
    const char *n = strerrorname_np(e);
    static char buf[32];
    if (n) return n;
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

/* Sets (replaces) the case's result. */
__attribute__((format(printf, 1, 2))) HELPER void result(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(compat_result, RESULT_MAX, fmt, ap);
    va_end(ap);
}

/* Appends ` text` to the case's result. */
__attribute__((format(printf, 1, 2))) HELPER void append(const char *fmt, ...) {
    size_t len = strlen(compat_result);
    va_list ap;
    if (len && len + 1 < RESULT_MAX) compat_result[len++] = ' ';
    compat_result[len] = 0;
    va_start(ap, fmt);
    vsnprintf(compat_result + len, RESULT_MAX - len, fmt, ap);
    va_end(ap);
}

/* `ok` for a non-negative return value, else `errno=NAME` (static buffer: use before the next
 * call). */
HELPER const char *rv(long r) {
    static char bufs[8][48];
    static int i;
    char *b = bufs[i++ % 8];
    if (r >= 0) return "ok";
    snprintf(b, 48, "errno=%s", ename(errno));
    return b;
}

/* The same for the raw return value of `syscall()` (-1 with errno). */
#define RV(expr) rv((long)(expr))

/* Case result = rv(expr). */
#define CHECK(expr) result("%s", RV(expr))

/* Runs `fn` in a forked child with a 10 s alarm and prints `CASE name result`. */
HELPER void run_case(const char *name, void (*fn)(void)) {
    memset(compat_result, 0, RESULT_MAX);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("CASE %s !fork=%s\n", name, ename(errno));
        return;
    }
    if (pid == 0) {
        alarm(10);
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (compat_result[0] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        printf("CASE %s %s\n", name, compat_result);
    else if (WIFSIGNALED(st))
        printf("CASE %s !died=%s%s%s\n", name, sigabbrev_np(WTERMSIG(st)),
               compat_result[0] ? " partial=" : "", compat_result);
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        printf("CASE %s !exit=%d\n", name, WEXITSTATUS(st));
    else
        printf("CASE %s !noresult\n", name);
    fflush(stdout);
}

/* Runs `fn` in the program's own process (for cases about the initial process itself). */
HELPER void run_inline(const char *name, void (*fn)(void)) {
    memset(compat_result, 0, RESULT_MAX);
    fn();
    printf("CASE %s %s\n", name, compat_result[0] ? compat_result : "!noresult");
    fflush(stdout);
}

#define CASE(fn) run_case(#fn, fn)
#define CASE_INLINE(fn) run_inline(#fn, fn)

/* Shared result page; chdir to the scratch directory. */
HELPER void compat_init(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRATCH\n", argv[0]);
        exit(2);
    }
    scratch = argv[1];
    compat_result = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (compat_result == MAP_FAILED || chdir(scratch) != 0) {
        perror("compat_init");
        exit(2);
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
}

/* Fails the whole program (exit 3) when fixture set-up does not work: the harness shows it. */
HELPER void must(long r, const char *what) {
    if (r < 0) {
        fprintf(stderr, "set-up failed: %s: %s\n", what, strerror(errno));
        exit(3);
    }
}

/* Writes `text` to a new file (mode set exactly) owned by uid:gid (-1 leaves it). */
HELPER void make_file(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    must(fd, path);
    must(write(fd, text, strlen(text)), path);
    close(fd);
    must(chmod(path, mode), path);
}

HELPER void make_dir(const char *path, mode_t mode) {
    must(mkdir(path, 0700), path);
    must(chmod(path, mode), path);
}

/* Drops to uid:gid with no supplementary groups (setgroups, setresgid, setresuid, as a
 * privilege-dropping daemon would). Returns NULL or the failure (`setgroups=errno=EPERM`). */
HELPER const char *drop_to(uid_t uid, gid_t gid) {
    static char buf[64];
    if (setgroups(0, NULL) < 0) {
        snprintf(buf, sizeof buf, "setgroups=%s", rv(-1));
        return buf;
    }
    if (setresgid(gid, gid, gid) < 0) {
        snprintf(buf, sizeof buf, "setresgid=%s", rv(-1));
        return buf;
    }
    if (setresuid(uid, uid, uid) < 0) {
        snprintf(buf, sizeof buf, "setresuid=%s", rv(-1));
        return buf;
    }
    return NULL;
}

/* Drops to nobody (65534) or records why it could not and returns from the case. */
#define DROP_OR_RETURN()                                                                           \
    do {                                                                                           \
        const char *why_ = drop_to(65534, 65534);                                                  \
        if (why_) {                                                                                \
            result("drop=%s", why_);                                                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Reads a whole small file into a static buffer (NULL on error, errno set). */
HELPER char *slurp(const char *path) {
    static char buf[8192];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* The value of `Key:` in a /proc status-like file, whitespace squeezed to commas. */
HELPER const char *status_field(const char *path, const char *key) {
    static char out[256];
    char *s = slurp(path);
    if (!s) return rv(-1);
    size_t klen = strlen(key);
    for (char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *p = line + klen + 1, *o = out;
            int sep = 0;
            while (*p && *p != '\n' && o < out + sizeof out - 2) {
                if (*p == ' ' || *p == '\t') {
                    sep = o != out;
                } else {
                    if (sep) *o++ = ',';
                    sep = 0;
                    *o++ = *p;
                }
                p++;
            }
            *o = 0;
            return out[0] ? out : "(empty)";
        }
    }
    return "(absent)";
}

/* The mode of a path (lstat) as octal permission bits, or the errno. */
HELPER const char *mode_of(const char *path) {
    static char bufs[4][32];
    static int i;
    char *b = bufs[i++ % 4];
    struct stat st;
    if (lstat(path, &st) < 0) return rv(-1);
    snprintf(b, 32, "%04o", st.st_mode & 07777);
    return b;
}

/* The owner of a path (lstat) as uid:gid, or the errno. */
HELPER const char *owner_of(const char *path) {
    static char bufs[4][32];
    static int i;
    char *b = bufs[i++ % 4];
    struct stat st;
    if (lstat(path, &st) < 0) return rv(-1);
    snprintf(b, 32, "%u:%u", st.st_uid, st.st_gid);
    return b;
}

/* The capabilities among a few telling ones that a capability set holds, comma-separated, or
 * `none`. */
HELPER const char *cap_names(unsigned long long set) {
    static char bufs[4][256];
    static int i;
    char *b = bufs[i++ % 4];
    static const struct {
        int cap;
        const char *name;
    } known[] = {
        {CAP_CHOWN, "chown"},   {CAP_DAC_OVERRIDE, "dac_override"}, {CAP_DAC_READ_SEARCH, "dac_read_search"},
        {CAP_FOWNER, "fowner"}, {CAP_KILL, "kill"},                 {CAP_SETGID, "setgid"},
        {CAP_SETUID, "setuid"}, {CAP_SYS_ADMIN, "sys_admin"},
    };
    b[0] = 0;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (set & (1ULL << known[k].cap)) {
            if (b[0]) strcat(b, ",");
            strcat(b, known[k].name);
        }
    if (!b[0]) strcpy(b, set ? "other" : "none");
    return b;
}

/* The calling thread's effective and permitted sets (capget), as 64-bit masks. */
HELPER int caps_get(unsigned long long *eff, unsigned long long *prm) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0) return -1;
    *eff = d[0].effective | ((unsigned long long)d[1].effective << 32);
    *prm = d[0].permitted | ((unsigned long long)d[1].permitted << 32);
    return 0;
}

/* Removes `cap` from the calling thread's effective set (capset). */
HELPER int cap_drop_effective(int cap) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0) return -1;
    d[cap / 32].effective &= ~(1U << (cap % 32));
    return syscall(SYS_capset, &h, d);
}

/* `eff=... prm=...` for the calling thread. */
HELPER const char *caps_now(void) {
    static char b[600];
    unsigned long long eff, prm;
    if (caps_get(&eff, &prm) < 0) return rv(-1);
    snprintf(b, sizeof b, "eff=%s prm=%s", cap_names(eff), cap_names(prm));
    return b;
}
