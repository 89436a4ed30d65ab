/* /proc writes Linux allows: the caller's own oom_score_adj (raise, read back, lower, a bad
 * value), and, for a root whose UTS namespace is its own, /proc/sys/kernel/hostname and
 * domainname (uname then shows the names); after dropping root, nothing (the process is no
 * longer dumpable). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *put(const char *path, const char *value) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return strerrorname_np(errno);
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    return n < 0 ? strerrorname_np(e) : "ok";
}

static void get(const char *what, const char *path) {
    char b[64] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof b - 1);
    if (n > 0 && b[n - 1] == '\n') b[n - 1] = 0;
    printf("%s=%s\n", what, n < 0 ? strerrorname_np(errno) : b);
}

int main(int argc, char **argv) {
    printf("oom_raise=%s\n", put("/proc/self/oom_score_adj", "100"));
    get("oom_read", "/proc/self/oom_score_adj");
    printf("oom_lower=%s\n", put("/proc/self/oom_score_adj", "50"));
    printf("oom_bad=%s\n", put("/proc/self/oom_score_adj", "5000"));
    if (argc > 1) {
        printf("proc_hostname=%s\n", put("/proc/sys/kernel/hostname", "via-proc\n"));
        printf("proc_domainname=%s\n", put("/proc/sys/kernel/domainname", "via.proc\n"));
        struct utsname u;
        uname(&u);
        printf("uname=%s,%s\n", u.nodename, u.domainname);
        /* After dropping root the process is no longer dumpable: its own /proc files are
         * root's, and opening them for writing is refused. */
        if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0) return 3;
        printf("dropped_oom_lower=%s\n", put("/proc/self/oom_score_adj", "0"));
    }
    return 0;
}
