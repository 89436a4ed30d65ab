/* Path edges: a deleted working directory (stat of "." and "..", creating in it), readlink of
 * what is no symlink (and realpath, which relies on it), linking an O_TMPFILE file through
 * /proc/self/fd/N, AT_EMPTY_PATH links, and openat2's strict checks. Run from a scratch
 * directory (argv[1]). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void r(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) < 0) return 2;
    char top[PATH_MAX];
    if (!getcwd(top, sizeof top)) return 3;

    close(open("f", O_WRONLY | O_CREAT, 0644));
    char buf[64];
    r("readlink_file", readlink("f", buf, sizeof buf));
    mkdir("d", 0755);
    symlink("d", "s");
    char real[PATH_MAX];
    const char *rp = realpath("s", real);
    printf("realpath=%s\n", rp ? (strncmp(rp, top, strlen(top)) == 0 ? rp + strlen(top) : "elsewhere") : strerrorname_np(errno));

    int t = open(".", O_WRONLY | O_TMPFILE, 0600);
    if (write(t, "t", 1) != 1) return 4;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", t);
    r("link_tmpfile_via_proc", linkat(AT_FDCWD, p, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
    struct stat st;
    printf("named_size=%lld\n", stat("named", &st) == 0 ? (long long)st.st_size : -1LL);
    int x = open(".", O_WRONLY | O_TMPFILE | O_EXCL, 0600);
    snprintf(p, sizeof p, "/proc/self/fd/%d", x);
    r("link_tmpfile_excl", linkat(AT_FDCWD, p, AT_FDCWD, "named_excl", AT_SYMLINK_FOLLOW));
    int f = open("f", O_RDONLY);
    r("link_empty_path", linkat(f, "", AT_FDCWD, "g", AT_EMPTY_PATH));

    struct open_how how = {.flags = O_RDONLY, .resolve = 0x80};
    r("openat2_unknown_resolve", syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how));
    how.resolve = RESOLVE_BENEATH | RESOLVE_IN_ROOT;
    r("openat2_both_scopes", syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how));
    how.resolve = 0;
    how.mode = 0644;
    r("openat2_mode_without_creat", syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how));
    how.flags = O_RDONLY | (1u << 30);
    how.mode = 0;
    r("openat2_unknown_flag", syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how));

    mkdir("gone", 0755);
    if (chdir("gone") < 0) return 5;
    r("rmdir_cwd", rmdir("../gone"));
    memset(&st, 0xff, sizeof st);
    r("stat_dot", stat(".", &st));
    printf("nlink=%lu\n", (unsigned long)st.st_nlink);
    r("stat_dotdot", stat("..", &st));
    r("access_dotdot_f", access("../f", F_OK));
    r("create_in_deleted", open("x", O_WRONLY | O_CREAT, 0644));
    r("mkdir_dotdot_new", mkdir("../made", 0755));
    r("made_exists", access(strcat(strcpy(real, top), "/made"), F_OK));
    return 0;
}
