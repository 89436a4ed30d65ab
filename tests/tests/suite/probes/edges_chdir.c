/* chdir through /proc/self/fd/N, to a live directory, a deleted one, one whose parent was
 * deleted too, and a path below such a link; fchdir to a deleted directory. argv[1]: a fresh
 * directory to work in. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static void r(const char *what, long rc) { printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok"); }
int main(int argc, char **argv) {
    char p[256], q[256], buf[512];
    mkdir(argv[1], 0755);
    snprintf(p, sizeof p, "%s/a", argv[1]); mkdir(p, 0755);
    snprintf(q, sizeof q, "%s/a/b", argv[1]); mkdir(q, 0755);
    int fd = open(q, O_RDONLY | O_DIRECTORY);
    int fa = open(p, O_RDONLY | O_DIRECTORY);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
    r("chdir_fd_live", chdir(buf));
    chdir("/");
    r("rmdir_b", rmdir(q));
    r("rmdir_a", rmdir(p));
    r("chdir_fd_deleted", chdir(buf));
    r("getcwd", getcwd(q, sizeof q) ? 0 : -1);
    chdir("/");
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", fa);
    r("chdir_parent_deleted", chdir(buf));
    r("fchdir_deleted", fchdir(fd));
    chdir("/");
    int fd2 = open(argv[1], O_RDONLY | O_DIRECTORY);
    snprintf(p, sizeof p, "%s/c", argv[1]); mkdir(p, 0755);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d/c", fd2);
    r("chdir_through_fd", chdir(buf));
    return 0;
}
