/* Extended attributes as an unprivileged owner: the remove calls, the l* calls on symlinks and
 * files, flags and prefixes, trusted.*, and access following the file's permission bits. Prints
 * one line per call; run in an empty directory given as argv[1]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static void r(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
    char buf[256];
    if (argc < 2 || chdir(argv[1])) return 1;
    close(open("f", O_CREAT | O_WRONLY, 0644));
    symlink("f", "l");
    r("set", setxattr("f", "user.a", "v", 1, 0));
    r("get", getxattr("f", "user.a", buf, sizeof buf));
    r("remove", removexattr("f", "user.a"));
    r("remove_again", removexattr("f", "user.a"));
    r("lset_file", lsetxattr("f", "user.b", "v", 1, 0));
    r("lremove_file", lremovexattr("f", "user.b"));
    r("lset_link", lsetxattr("l", "user.c", "v", 1, 0));
    r("lget_link", lgetxattr("l", "user.c", buf, sizeof buf));
    r("lremove_link", lremovexattr("l", "user.c"));
    r("set_via_link", setxattr("l", "user.d", "v", 1, 0));
    r("remove_via_link", removexattr("l", "user.d"));
    r("flags_4", setxattr("f", "user.e", "v", 1, 4));
    r("flags_4_missing", setxattr("missing", "user.e", "v", 1, 4));
    r("replace_missing", setxattr("f", "user.e", "v", 1, XATTR_REPLACE));
    r("prefix_unknown", setxattr("f", "foo.bar", "v", 1, 0));
    r("remove_prefix_unknown", removexattr("f", "foo.bar"));
    r("trusted_set", setxattr("f", "trusted.t", "v", 1, 0));
    r("trusted_get", getxattr("f", "trusted.t", buf, sizeof buf));
    r("trusted_remove", removexattr("f", "trusted.t"));
    close(open("ro", O_CREAT | O_WRONLY, 0644));
    setxattr("ro", "user.p", "v", 1, 0);
    chmod("ro", 0400);
    r("ro_get", getxattr("ro", "user.p", buf, sizeof buf));
    r("ro_set", setxattr("ro", "user.q", "v", 1, 0));
    r("ro_remove", removexattr("ro", "user.p"));
    close(open("wo", O_CREAT | O_WRONLY, 0644));
    setxattr("wo", "user.p", "v", 1, 0);
    chmod("wo", 0200);
    r("wo_get", getxattr("wo", "user.p", buf, sizeof buf));
    r("wo_set", setxattr("wo", "user.q", "v", 1, 0));
    r("wo_remove", removexattr("wo", "user.p"));
    return 0;
}
