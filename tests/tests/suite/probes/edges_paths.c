/* Path edge cases: a final ".", ".." or "/" in rename, rmdir, unlink, mkdir; trailing slashes;
 * bad dirfds; statx and utimensat argument checks; truncate. Run in a fresh directory argv[1]
 * (made here); prints one line per call. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/stat.h>

static void r(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
    if (mkdir(argv[1], 0755) && errno != EEXIST) return 1;
    if (chdir(argv[1])) return 1;
    mkdir("d", 0755); mkdir("d/sub", 0755); mkdir("e", 0755);
    close(open("f", O_CREAT | O_WRONLY, 0644));
    symlink("d", "ld");
    r("rename_dot", rename(".", "x"));
    r("rename_dotdot", rename("..", "x"));
    r("rename_to_dot", rename("f", "."));
    r("rename_to_dotdot", rename("f", ".."));
    r("rename_to_d_dot", rename("f", "d/."));
    r("rename_d_dot", rename("d/.", "x"));
    r("rename_d_dotdot", rename("d/sub/..", "x"));
    r("rename_root", rename("/", "x"));
    r("rename_to_root", rename("f", "/"));
    r("rename_missing_dot", rename("nope/.", "x"));
    r("rename_file_dot", rename("f/.", "x"));
    r("rename_dir_to_dot_noreplace", syscall(SYS_renameat2, AT_FDCWD, "e", AT_FDCWD, "d/.", 1));
    r("rename_badflags", syscall(SYS_renameat2, AT_FDCWD, "nope", AT_FDCWD, "x", 8 | 16));
    r("rename_exch_noreplace", syscall(SYS_renameat2, AT_FDCWD, "nope", AT_FDCWD, "x", 3));
    r("rename_file_slash", rename("f/", "g")); rename("g", "f");
    r("rename_to_slash", rename("f", "g/")); rename("g", "f");
    r("rename_dir_to_slash", rename("e", "e2/"));
    r("rename_back", rename("e2", "e"));
    r("rename_self", rename("f", "f"));
    r("link_slash_new", link("f", "newlink/"));
    r("link_slash_existing", link("f", "d/"));
    r("link_src_slash", link("f/", "nl"));
    r("symlink_slash", symlink("f", "newsym/")); unlink("newsym");
    r("mknod_slash", mknod("newnod/", S_IFREG | 0644, 0)); unlink("newnod");
    r("mkdir_slash", mkdir("newdir/", 0755));
    r("mkdir_dot", mkdir(".", 0755));
    r("mkdir_root", mkdir("/", 0755));
    r("unlinkat_badfd", unlinkat(99, "x", 0));
    r("unlinkat_negfd", unlinkat(-7, "x", 0));
    r("unlinkat_filefd", unlinkat(open("f", O_RDONLY), "x", 0));
    r("unlinkat_badfd_abs", unlinkat(99, "/nonexistent-xyz", 0));
    r("unlink_file_slash", unlink("f/")); close(open("f", O_CREAT | O_WRONLY, 0644));
    r("unlink_dir_slash", unlink("d/"));
    r("unlink_missing_slash", unlink("nope/"));
    r("unlink_link_slash", unlink("ld/")); symlink("d", "ld");
    r("rmdir_file_slash", rmdir("f/"));
    r("rmdir_dot", rmdir("."));
    r("rmdir_dotdot", rmdir(".."));
    r("rmdir_d_dot", rmdir("d/."));
    r("rmdir_d_sub_dotdot", rmdir("d/sub/.."));
    r("rmdir_root", rmdir("/"));
    r("unlink_dot", unlink("."));
    r("unlink_dotdot", unlink(".."));
    r("unlink_root", unlink("/"));
    r("rmdir_missing_dot", rmdir("nope/."));
    r("rmdir_newdir_slash", rmdir("newdir/"));
    r("rmdir_link_slash", rmdir("ld/"));
    struct statx sx;
    r("statx_reserved", syscall(SYS_statx, AT_FDCWD, "f", 0, 0x80000000u, &sx));
    r("statx_sync_both", syscall(SYS_statx, AT_FDCWD, "f", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx));
    r("statx_unknown_flag", syscall(SYS_statx, AT_FDCWD, "f", 0x10000000, STATX_BASIC_STATS, &sx));
    r("statx_ok", syscall(SYS_statx, AT_FDCWD, "f", 0, STATX_BASIC_STATS, &sx));
    r("statx_reserved_missing", syscall(SYS_statx, AT_FDCWD, "nope", 0, 0x80000000u, &sx));
    r("statx_reserved_empty", syscall(SYS_statx, 0, "", AT_EMPTY_PATH, 0x80000000u, &sx));
    r("statx_sync_both_proc", syscall(SYS_statx, AT_FDCWD, "/proc/self/status", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx));
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    r("utimens_omit_missing", utimensat(AT_FDCWD, "nope", omit, 0));
    r("utimens_omit_badflags", utimensat(AT_FDCWD, "f", omit, 0x4000));
    r("utimens_omit", utimensat(AT_FDCWD, "f", omit, 0));
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    r("utimens_badnsec", utimensat(AT_FDCWD, "f", bad, 0));
    r("utimens_badflags", utimensat(AT_FDCWD, "f", NULL, 0x4000));
    char abs[4096];
    snprintf(abs, sizeof abs, "%s/f", argv[1]);
    r("utimens_abs_fd0", utimensat(0, abs, NULL, 0));
    r("utimens_abs_badfd", utimensat(99, abs, NULL, 0));
    r("utimens_rel_badfd", utimensat(99, "f", NULL, 0));
    r("truncate_grow", truncate("f", 100));
    struct stat st; stat("f", &st); printf("size=%ld\n", (long)st.st_size);
    r("truncate_shrink", truncate("f", 10));
    stat("f", &st); printf("size=%ld\n", (long)st.st_size);
    r("truncate_neg", truncate("f", -1));
    r("truncate_dir", truncate("d", 0));
    r("truncate_missing", truncate("nope", 0));
    r("truncate_slash", truncate("f/", 0));
    int fd = open("f", O_WRONLY | O_TRUNC);
    stat("f", &st); printf("otrunc_fd=%d_size=%ld\n", fd >= 0, (long)st.st_size);
    r("otrunc_dir", open("d", O_RDONLY | O_TRUNC));
    r("otrunc_dir_w", open("d", O_WRONLY | O_TRUNC));
    return 0;
}
