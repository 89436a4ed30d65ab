/* Path semantics (compat items 6 and 9): rename of `.`/`..` and to names ending in `/.`,
 * trailing slashes on link, rename, unlink and rmdir, bad dirfds, rmdir and unlink of `.` and
 * `..`, chdir into /proc/self/fd/N of a deleted directory, statx argument checks, utimensat
 * (UTIME_OMIT, an absolute path ignoring the dirfd, argument errors), truncate semantics, open
 * and openat2 path errors. Each case works in a directory of its own under the scratch area, so a
 * wrong success stays in it. */
#include "compat.h"

#include <dirent.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

static char abs_scratch[PATH_MAX];

/* A fresh directory for the case (named after it), made the working directory. */
static void in_dir(const char *name) {
    must(mkdir(name, 0755), name);
    must(chdir(name), name);
}

static void touch(const char *name) { make_file(name, "abc", 0644); }

/* --- rename ------------------------------------------------------------------------------------ */

static void rename_dot(void) {
    in_dir("rn_dot");
    must(mkdir("sub", 0755), "sub");
    must(chdir("sub"), "sub");
    CHECK(rename(".", "../renamed"));
}

static void rename_dotdot(void) {
    in_dir("rn_dotdot");
    must(mkdir("a", 0755), "a");
    must(mkdir("a/b", 0755), "a/b");
    CHECK(rename("a/b/..", "moved"));
}

static void rename_to_slash_dot(void) {
    in_dir("rn_to_dot");
    touch("f");
    must(mkdir("d", 0755), "d");
    result("file=%s", rv(rename("f", "d/.")));
    must(mkdir("e", 0755), "e");
    append("dir=%s", rv(rename("e", "d/.")));
}

static void rename_to_slash_dotdot(void) {
    in_dir("rn_to_dotdot");
    must(mkdir("d", 0755), "d");
    must(mkdir("d/e", 0755), "d/e");
    must(mkdir("x", 0755), "x");
    CHECK(rename("x", "d/e/.."));
}

static void rename_from_slash_dot(void) {
    in_dir("rn_from_dot");
    must(mkdir("d", 0755), "d");
    CHECK(rename("d/.", "e"));
}

static void rename_dir_trailing_slash(void) {
    in_dir("rn_dir_slash");
    must(mkdir("d", 0755), "d");
    result("new_slash=%s", rv(rename("d", "e/")));
    append("old_slash=%s", rv(rename("e/", "f")));
    append("both=%s", rv(rename("f/", "g/")));
}

static void rename_file_trailing_slash(void) {
    in_dir("rn_file_slash");
    touch("f");
    result("new_slash=%s", rv(rename("f", "g/")));
    append("old_slash=%s", rv(rename("f/", "g")));
    append("exists=%s", rv(access("f", F_OK)));
}

static void rename_into_own_subdir(void) {
    in_dir("rn_into_self");
    must(mkdir("p", 0755), "p");
    must(mkdir("p/c", 0755), "p/c");
    result("child=%s", rv(rename("p", "p/c/x")));
    append("self=%s", rv(rename("p", "p/x")));
}

static void rename_type_mismatch(void) {
    in_dir("rn_types");
    touch("f");
    must(mkdir("d", 0755), "d");
    must(mkdir("full", 0755), "full");
    touch("full/x");
    must(mkdir("empty", 0755), "empty");
    result("dir_over_file=%s", rv(rename("d", "f")));
    append("file_over_dir=%s", rv(rename("f", "d")));
    append("dir_over_nonempty=%s", rv(rename("d", "full")));
    append("dir_over_empty=%s", rv(rename("d", "empty")));
}

static void rename_hardlinks_noop(void) {
    in_dir("rn_links");
    touch("a");
    must(link("a", "b"), "link");
    result("%s", rv(rename("a", "b")));
    append("a=%s b=%s", rv(access("a", F_OK)), rv(access("b", F_OK)));
}

static void renameat2_flags(void) {
    in_dir("rn2_flags");
    touch("a");
    touch("b");
    result("noreplace=%s", RV(syscall(SYS_renameat2, AT_FDCWD, "a", AT_FDCWD, "b", RENAME_NOREPLACE)));
    append("exchange_missing=%s",
           RV(syscall(SYS_renameat2, AT_FDCWD, "a", AT_FDCWD, "c", RENAME_EXCHANGE)));
    append("both=%s", RV(syscall(SYS_renameat2, AT_FDCWD, "a", AT_FDCWD, "b",
                                 RENAME_NOREPLACE | RENAME_EXCHANGE)));
    append("unknown=%s", RV(syscall(SYS_renameat2, AT_FDCWD, "a", AT_FDCWD, "c", 0x100)));
}

static void renameat2_exchange(void) {
    in_dir("rn2_exchange");
    make_file("a", "A", 0644);
    must(mkdir("b", 0755), "b");
    result("%s", RV(syscall(SYS_renameat2, AT_FDCWD, "a", AT_FDCWD, "b", RENAME_EXCHANGE)));
    struct stat st;
    append("a_is_dir=%d", stat("a", &st) == 0 && S_ISDIR(st.st_mode));
}

static void rename_bad_dirfd(void) {
    in_dir("rn_baddirfd");
    touch("a");
    result("old=%s", rv(renameat(9999, "a", AT_FDCWD, "b")));
    append("new=%s", rv(renameat(AT_FDCWD, "a", -5, "b")));
}

/* --- link -------------------------------------------------------------------------------------- */

static void link_new_trailing_slash(void) {
    in_dir("ln_new_slash");
    touch("f");
    CHECK(link("f", "g/"));
}

static void link_old_trailing_slash(void) {
    in_dir("ln_old_slash");
    touch("f");
    CHECK(link("f/", "g"));
}

static void link_directory(void) {
    in_dir("ln_dir");
    must(mkdir("d", 0755), "d");
    CHECK(link("d", "e"));
}

static void link_existing(void) {
    in_dir("ln_exists");
    touch("f");
    touch("g");
    CHECK(link("f", "g"));
}

static void link_symlink_nofollow(void) {
    in_dir("ln_symlink");
    touch("f");
    must(symlink("f", "s"), "symlink");
    result("nofollow=%s", rv(linkat(AT_FDCWD, "s", AT_FDCWD, "h1", 0)));
    struct stat st;
    append("h1_is_link=%d", lstat("h1", &st) == 0 && S_ISLNK(st.st_mode));
    append("follow=%s", rv(linkat(AT_FDCWD, "s", AT_FDCWD, "h2", AT_SYMLINK_FOLLOW)));
    append("h2_is_reg=%d", lstat("h2", &st) == 0 && S_ISREG(st.st_mode));
    append("bad_flag=%s", rv(linkat(AT_FDCWD, "f", AT_FDCWD, "h3", 0x1)));
}

static void link_tmpfile_via_proc(void) {
    in_dir("ln_tmpfile");
    int fd = open(".", O_WRONLY | O_TMPFILE, 0600);
    if (fd < 0) {
        result("tmpfile=%s", rv(-1));
        return;
    }
    must(write(fd, "t", 1), "write");
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    result("%s", rv(linkat(AT_FDCWD, p, AT_FDCWD, "named", AT_SYMLINK_FOLLOW)));
    struct stat st;
    append("size=%lld", stat("named", &st) == 0 ? (long long)st.st_size : -1LL);
}

static void link_tmpfile_excl(void) {
    in_dir("ln_tmpfile_excl");
    int fd = open(".", O_WRONLY | O_TMPFILE | O_EXCL, 0600);
    if (fd < 0) {
        result("tmpfile=%s", rv(-1));
        return;
    }
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    CHECK(linkat(AT_FDCWD, p, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
}

static void linkat_empty_path(void) {
    in_dir("ln_empty");
    touch("f");
    int fd = open("f", O_RDONLY);
    result("%s", rv(linkat(fd, "", AT_FDCWD, "g", AT_EMPTY_PATH)));
    append("g=%s", rv(access("g", F_OK)));
}

/* --- unlink and rmdir --------------------------------------------------------------------------- */

static void unlinkat_bad_dirfd(void) {
    in_dir("ul_baddirfd");
    touch("x");
    result("big=%s", rv(unlinkat(9999, "x", 0)));
    append("minus1=%s", rv(unlinkat(-1, "x", 0)));
    char abs[PATH_MAX + 32];
    snprintf(abs, sizeof abs, "%s/ul_baddirfd/x", abs_scratch);
    append("absolute=%s", rv(unlinkat(9999, abs, 0)));
}

static void unlinkat_file_dirfd(void) {
    in_dir("ul_filedirfd");
    touch("x");
    int fd = open("x", O_RDONLY);
    CHECK(unlinkat(fd, "y", 0));
}

static void unlinkat_bad_flag(void) {
    in_dir("ul_badflag");
    touch("x");
    result("%s", rv(unlinkat(AT_FDCWD, "x", 0x1)));
    append("exists=%s", rv(access("x", F_OK)));
}

static void unlinkat_trailing_slash(void) {
    in_dir("ul_slash");
    touch("file");
    result("unlink=%s", rv(unlinkat(AT_FDCWD, "file/", 0)));
    append("removedir=%s", rv(unlinkat(AT_FDCWD, "file/", AT_REMOVEDIR)));
    append("missing=%s", rv(unlinkat(AT_FDCWD, "nothing/", 0)));
    append("exists=%s", rv(access("file", F_OK)));
}

static void unlink_directory(void) {
    in_dir("ul_dir");
    must(mkdir("d", 0755), "d");
    result("unlink=%s", rv(unlink("d")));
    append("unlinkat=%s", rv(unlinkat(AT_FDCWD, "d", 0)));
    append("removedir=%s", rv(unlinkat(AT_FDCWD, "d", AT_REMOVEDIR)));
}

static void unlinkat_removedir_file(void) {
    in_dir("ul_rmfile");
    touch("f");
    CHECK(unlinkat(AT_FDCWD, "f", AT_REMOVEDIR));
}

static void rmdir_dot_dotdot(void) {
    in_dir("rd_dots");
    must(mkdir("d", 0755), "d");
    must(mkdir("d/e", 0755), "d/e");
    result("dot=%s", rv(rmdir(".")));
    append("d_dot=%s", rv(rmdir("d/.")));
    append("e_dotdot=%s", rv(rmdir("d/e/..")));
    append("removedir_dot=%s", rv(unlinkat(AT_FDCWD, "d/.", AT_REMOVEDIR)));
}

static void rmdir_dotdot_of_cwd(void) {
    in_dir("rd_dotdot");
    must(mkdir("d", 0755), "d");
    must(chdir("d"), "d");
    CHECK(rmdir(".."));
}

static void unlink_dot_dotdot(void) {
    in_dir("ul_dots");
    must(mkdir("d", 0755), "d");
    result("dot=%s", rv(unlink(".")));
    append("d_dotdot=%s", rv(unlink("d/..")));
}

static void rmdir_errors(void) {
    in_dir("rd_errors");
    must(mkdir("full", 0755), "full");
    touch("full/x");
    touch("file");
    result("nonempty=%s", rv(rmdir("full")));
    append("file=%s", rv(rmdir("file")));
    append("missing=%s", rv(rmdir("missing")));
    append("file_slash=%s", rv(rmdir("file/")));
    must(mkdir("ok", 0755), "ok");
    append("trailing_slash=%s", rv(rmdir("ok/")));
}

static void rmdir_cwd(void) {
    in_dir("rd_cwd");
    must(mkdir("d", 0755), "d");
    must(chdir("d"), "d");
    result("rmdir=%s", rv(rmdir("../d")));
    char buf[PATH_MAX];
    append("getcwd=%s", getcwd(buf, sizeof buf) ? "ok" : rv(-1));
    append("create=%s", rv(open("x", O_WRONLY | O_CREAT, 0644)));
    append("mkdir=%s", rv(mkdir("y", 0755)));
    struct stat st = {0};
    append("stat_dot=%s", rv(stat(".", &st)));
    append("nlink=%lu", (unsigned long)st.st_nlink);
    DIR *d = opendir(".");
    int n = 0;
    if (d)
        while (readdir(d)) n++;
    append("entries=%d", n);
}

static void chdir_proc_fd_deleted(void) {
    in_dir("cd_deleted");
    must(mkdir("gone", 0755), "gone");
    int fd = open("gone", O_RDONLY | O_DIRECTORY);
    must(fd, "open gone");
    must(rmdir("gone"), "rmdir gone");
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    result("chdir=%s", rv(chdir(p)));
    char buf[PATH_MAX];
    append("getcwd=%s", getcwd(buf, sizeof buf) ? "ok" : rv(-1));
    append("create=%s", rv(open("x", O_WRONLY | O_CREAT, 0644)));
    struct stat st = {0};
    append("stat_dot=%s", rv(stat(".", &st)));
    append("nlink=%lu", (unsigned long)st.st_nlink);
}

static void fchdir_deleted(void) {
    in_dir("fcd_deleted");
    must(mkdir("gone", 0755), "gone");
    int fd = open("gone", O_RDONLY | O_DIRECTORY);
    must(rmdir("gone"), "rmdir gone");
    result("fchdir=%s", rv(fchdir(fd)));
    char buf[PATH_MAX];
    append("getcwd=%s", getcwd(buf, sizeof buf) ? "ok" : rv(-1));
    append("dotdot=%s", rv(access("..", F_OK)));
}

static void chdir_proc_fd_live(void) {
    in_dir("cd_live");
    must(mkdir("here", 0755), "here");
    int fd = open("here", O_RDONLY | O_DIRECTORY);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    result("chdir=%s", rv(chdir(p)));
    char buf[PATH_MAX];
    const char *cwd = getcwd(buf, sizeof buf);
    size_t n = strlen(abs_scratch);
    append("cwd=%s", cwd ? (strncmp(cwd, abs_scratch, n) == 0 ? cwd + n : "elsewhere") : rv(-1));
}

static void chdir_errors(void) {
    in_dir("cd_errors");
    touch("f");
    result("file=%s", rv(chdir("f")));
    append("missing=%s", rv(chdir("missing")));
    append("empty=%s", rv(chdir("")));
    int fd = open("f", O_RDONLY);
    append("fchdir_file=%s", rv(fchdir(fd)));
    append("fchdir_bad=%s", rv(fchdir(9999)));
}

/* --- statx ------------------------------------------------------------------------------------- */

static long sys_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *sx) {
    return syscall(SYS_statx, dfd, path, flags, mask, sx);
}

static void statx_reserved_mask(void) {
    in_dir("sx_reserved");
    touch("f");
    struct statx sx;
    CHECK(sys_statx(AT_FDCWD, "f", 0, 0x80000000U, &sx));
}

static void statx_sync_flags_both(void) {
    in_dir("sx_sync");
    touch("f");
    struct statx sx;
    CHECK(sys_statx(AT_FDCWD, "f", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx));
}

static void statx_unknown_flag(void) {
    in_dir("sx_flag");
    touch("f");
    struct statx sx;
    result("bit31=%s", RV(sys_statx(AT_FDCWD, "f", 0x80000000, STATX_BASIC_STATS, &sx)));
    append("bit1=%s", RV(sys_statx(AT_FDCWD, "f", 0x1, STATX_BASIC_STATS, &sx)));
}

static void statx_basic(void) {
    in_dir("sx_basic");
    make_file("f", "12345", 0640);
    struct statx sx;
    long r = sys_statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, &sx);
    result("%s", RV(r));
    append("basic=%s", (sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS ? "yes" : "no");
    append("mode=%o size=%llu nlink=%u", sx.stx_mode, (unsigned long long)sx.stx_size, sx.stx_nlink);
}

static void statx_empty_path(void) {
    in_dir("sx_empty");
    touch("f");
    int fd = open("f", O_RDONLY);
    struct statx sx;
    result("without_flag=%s", RV(sys_statx(fd, "", 0, STATX_BASIC_STATS, &sx)));
    append("with_flag=%s", RV(sys_statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx)));
    append("size=%llu", (unsigned long long)sx.stx_size);
}

static void statx_symlink_nofollow(void) {
    in_dir("sx_symlink");
    touch("f");
    must(symlink("f", "s"), "symlink");
    struct statx sx;
    long r = sys_statx(AT_FDCWD, "s", AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx);
    result("%s link=%d", RV(r), S_ISLNK(sx.stx_mode));
    r = sys_statx(AT_FDCWD, "s", 0, STATX_TYPE, &sx);
    append("follow=%s reg=%d", RV(r), S_ISREG(sx.stx_mode));
}

static void statx_bad_pointer(void) {
    in_dir("sx_fault");
    touch("f");
    result("buf=%s", RV(sys_statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, (struct statx *)8)));
    struct statx sx;
    append("path=%s", RV(sys_statx(AT_FDCWD, (const char *)8, 0, STATX_BASIC_STATS, &sx)));
}

/* --- utimensat --------------------------------------------------------------------------------- */

static const char *times_of(const char *path) {
    static char b[96];
    struct stat st;
    if (stat(path, &st) < 0) return rv(-1);
    snprintf(b, sizeof b, "atime=%lld.%09ld mtime=%lld.%09ld", (long long)st.st_atim.tv_sec,
             st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return b;
}

static void utimensat_explicit(void) {
    in_dir("ut_explicit");
    touch("f");
    struct timespec ts[2] = {{2000, 0}, {1000, 500}};
    long r = utimensat(AT_FDCWD, "f", ts, 0);
    result("%s %s", rv(r), times_of("f"));
}

static void utimensat_both_omit(void) {
    in_dir("ut_omit");
    touch("f");
    struct timespec set[2] = {{2000, 0}, {1000, 0}};
    utimensat(AT_FDCWD, "f", set, 0);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    long r = utimensat(AT_FDCWD, "f", ts, 0);
    result("%s %s", rv(r), times_of("f"));
}

static void utimensat_both_omit_missing(void) {
    in_dir("ut_omit_missing");
    struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    CHECK(utimensat(AT_FDCWD, "missing", ts, 0));
}

static void utimensat_one_omit(void) {
    in_dir("ut_one_omit");
    touch("f");
    struct timespec set[2] = {{2000, 0}, {1000, 0}};
    utimensat(AT_FDCWD, "f", set, 0);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {3000, 7}};
    long r = utimensat(AT_FDCWD, "f", ts, 0);
    result("%s %s", rv(r), times_of("f"));
}

static void utimensat_absolute_ignores_dirfd(void) {
    in_dir("ut_absolute");
    touch("f");
    touch("other");
    int fd = open("other", O_RDONLY);
    char abs[PATH_MAX + 32];
    snprintf(abs, sizeof abs, "%s/ut_absolute/f", abs_scratch);
    struct timespec ts[2] = {{4000, 0}, {4000, 0}};
    result("file_fd=%s", rv(utimensat(fd, abs, ts, 0)));
    append("f=%s", times_of("f"));
    struct timespec ts2[2] = {{5000, 0}, {5000, 0}};
    append("bad_fd=%s", rv(utimensat(9999, abs, ts2, 0)));
    append("f=%s", times_of("f"));
}

static void utimensat_bad_nsec(void) {
    in_dir("ut_nsec");
    touch("f");
    struct timespec big[2] = {{0, 1000000000}, {0, 0}};
    struct timespec neg[2] = {{0, 0}, {0, -1}};
    result("big=%s", rv(utimensat(AT_FDCWD, "f", big, 0)));
    append("negative=%s", rv(utimensat(AT_FDCWD, "f", neg, 0)));
}

static void utimensat_null_path(void) {
    in_dir("ut_null");
    touch("f");
    int fd = open("f", O_RDONLY);
    struct timespec ts[2] = {{6000, 0}, {6000, 0}};
    result("fd=%s", RV(syscall(SYS_utimensat, fd, NULL, ts, 0)));
    append("f=%s", times_of("f"));
    append("cwd=%s", RV(syscall(SYS_utimensat, AT_FDCWD, NULL, ts, 0)));
    append("nofollow=%s", RV(syscall(SYS_utimensat, fd, NULL, ts, AT_SYMLINK_NOFOLLOW)));
}

static void utimensat_bad_flags(void) {
    in_dir("ut_flags");
    touch("f");
    struct timespec ts[2] = {{6000, 0}, {6000, 0}};
    CHECK(utimensat(AT_FDCWD, "f", ts, 0x4000));
}

static void utimensat_symlink_nofollow(void) {
    in_dir("ut_symlink");
    touch("f");
    struct timespec set[2] = {{100, 0}, {100, 0}};
    utimensat(AT_FDCWD, "f", set, 0);
    must(symlink("f", "s"), "symlink");
    struct timespec ts[2] = {{7000, 0}, {7000, 0}};
    result("%s", rv(utimensat(AT_FDCWD, "s", ts, AT_SYMLINK_NOFOLLOW)));
    struct stat st;
    lstat("s", &st);
    append("link_mtime=%lld", (long long)st.st_mtim.tv_sec);
    append("target=%s", times_of("f"));
}

static void utimensat_empty_path(void) {
    in_dir("ut_empty");
    touch("f");
    int fd = open("f", O_RDONLY);
    struct timespec ts[2] = {{8000, 0}, {8000, 0}};
    result("with_flag=%s", rv(utimensat(fd, "", ts, AT_EMPTY_PATH)));
    append("without=%s", rv(utimensat(fd, "", ts, 0)));
}

static void futimens_opath(void) {
    in_dir("ut_opath");
    touch("f");
    int fd = open("f", O_PATH);
    struct timespec ts[2] = {{9000, 0}, {9000, 0}};
    CHECK(futimens(fd, ts));
}

/* --- truncate ---------------------------------------------------------------------------------- */

static const char *size_of(const char *path) {
    static char b[32];
    struct stat st;
    if (stat(path, &st) < 0) return rv(-1);
    snprintf(b, sizeof b, "%lld", (long long)st.st_size);
    return b;
}

static void truncate_grow(void) {
    in_dir("tr_grow");
    touch("f");
    int r = truncate("f", 100);
    result("%s size=%s", rv(r), size_of("f"));
    char buf[100];
    int fd = open("f", O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf);
    int zeros = 0;
    for (ssize_t i = 3; i < n; i++) zeros += buf[i] == 0;
    append("read=%zd zeros=%d head=%.3s", n, zeros, buf);
}

static void truncate_shrink(void) {
    in_dir("tr_shrink");
    make_file("f", "abcdefgh", 0644);
    int r = truncate("f", 3);
    result("%s size=%s", rv(r), size_of("f"));
    char buf[16] = {0};
    int fd = open("f", O_RDONLY);
    append("content=%.*s", (int)read(fd, buf, sizeof buf), buf);
}

static void truncate_negative(void) {
    in_dir("tr_negative");
    touch("f");
    result("path=%s", rv(truncate("f", -1)));
    int fd = open("f", O_WRONLY);
    append("fd=%s", rv(ftruncate(fd, -1)));
}

static void truncate_directory(void) {
    in_dir("tr_dir");
    must(mkdir("d", 0755), "d");
    result("path=%s", rv(truncate("d", 0)));
    int fd = open("d", O_RDONLY | O_DIRECTORY);
    append("fd=%s", rv(ftruncate(fd, 0)));
}

static void truncate_errors(void) {
    in_dir("tr_errors");
    touch("f");
    result("missing=%s", rv(truncate("missing", 0)));
    append("slash=%s", rv(truncate("f/", 0)));
    int fd = open("f", O_RDONLY);
    append("rdonly_fd=%s", rv(ftruncate(fd, 0)));
    int p[2];
    must(pipe(p), "pipe");
    append("pipe=%s", rv(ftruncate(p[1], 0)));
    must(mkfifo("fifo", 0644), "mkfifo");
    append("fifo=%s", rv(truncate("fifo", 0)));
    append("empty=%s", rv(truncate("", 0)));
}

static void truncate_via_symlink(void) {
    in_dir("tr_symlink");
    make_file("f", "abcdef", 0644);
    must(symlink("f", "s"), "symlink");
    int r = truncate("s", 2);
    result("%s size=%s", rv(r), size_of("f"));
}

static void truncate_readonly_file_as_owner(void) {
    in_dir("tr_readonly");
    make_file("f", "abcdef", 0444);
    if (cap_drop_effective(CAP_DAC_OVERRIDE) < 0) {
        result("capset=%s", rv(-1));
        return;
    }
    result("path=%s", rv(truncate("f", 1)));
    append("size=%s", size_of("f"));
}

/* --- open and friends -------------------------------------------------------------------------- */

static void open_path_errors(void) {
    in_dir("op_errors");
    touch("f");
    must(mkdir("d", 0755), "d");
    result("file_slash=%s", rv(open("f/", O_RDONLY)));
    append("create_slash=%s", rv(open("new/", O_WRONLY | O_CREAT, 0644)));
    append("dir_write=%s", rv(open("d", O_WRONLY)));
    append("dir_creat=%s", rv(open("d", O_WRONLY | O_CREAT, 0644)));
    append("o_directory_file=%s", rv(open("f", O_RDONLY | O_DIRECTORY)));
    append("notdir_component=%s", rv(open("f/x", O_RDONLY)));
    append("empty=%s", rv(open("", O_RDONLY)));
    append("creat_directory=%s", rv(open("nd", O_RDONLY | O_CREAT | O_DIRECTORY, 0755)));
}

static void open_symlink_flags(void) {
    in_dir("op_symlink");
    touch("f");
    must(symlink("f", "s"), "symlink");
    must(symlink("missing", "dangling"), "symlink");
    result("nofollow=%s", rv(open("s", O_RDONLY | O_NOFOLLOW)));
    int fd = open("s", O_PATH | O_NOFOLLOW);
    struct stat st;
    append("opath_nofollow=%s", rv(fd));
    append("is_link=%d", fd >= 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode));
    append("excl_dangling=%s", rv(open("dangling", O_WRONLY | O_CREAT | O_EXCL, 0644)));
    append("creat_dangling=%s", rv(open("dangling", O_WRONLY | O_CREAT, 0644)));
    append("target=%s", rv(access("missing", F_OK)));
}

static void symlink_loop(void) {
    in_dir("op_loop");
    must(symlink("b", "a"), "symlink");
    must(symlink("a", "b"), "symlink");
    result("open=%s", rv(open("a", O_RDONLY)));
    struct stat st;
    append("stat=%s", rv(stat("a/x", &st)));
}

static void name_too_long(void) {
    in_dir("op_long");
    char name[300];
    memset(name, 'n', sizeof name);
    name[256] = 0;
    result("component=%s", rv(open(name, O_WRONLY | O_CREAT, 0644)));
    name[255] = 0;
    append("max=%s", rv(open(name, O_WRONLY | O_CREAT, 0644)));
    static char path[PATH_MAX + 10];
    memset(path, 'a', sizeof path);
    for (size_t i = 1; i < sizeof path - 1; i += 2) path[i] = '/';
    path[sizeof path - 1] = 0;
    append("path=%s", rv(open(path, O_RDONLY)));
}

static void readlink_errors(void) {
    in_dir("rl_errors");
    touch("f");
    must(symlink("f", "s"), "symlink");
    char buf[64];
    result("not_link=%s", rv(readlink("f", buf, sizeof buf)));
    append("zero=%s", rv(readlink("s", buf, 0)));
    ssize_t n = readlink("s", buf, 1);
    append("short=%zd:%.*s", n, (int)(n > 0 ? n : 0), buf);
    append("missing=%s", rv(readlink("missing", buf, sizeof buf)));
}

static void symlink_errors(void) {
    in_dir("sl_errors");
    touch("f");
    result("empty_target=%s", rv(symlink("", "s")));
    append("exists=%s", rv(symlink("x", "f")));
    append("slash=%s", rv(symlink("x", "new/")));
}

static void mkdir_errors(void) {
    in_dir("mk_errors");
    touch("f");
    result("exists=%s", rv(mkdir("f", 0755)));
    append("notdir=%s", rv(mkdir("f/x", 0755)));
    append("missing=%s", rv(mkdir("missing/x", 0755)));
    append("slash=%s", rv(mkdir("new/", 0755)));
    append("dot=%s", rv(mkdir(".", 0755)));
}

static void openat2_resolve(void) {
    in_dir("o2_resolve");
    touch("f");
    must(mkdir("d", 0755), "d");
    must(symlink("f", "s"), "symlink");
    int dfd = open("d", O_PATH | O_DIRECTORY);
    struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH};
    result("beneath_dotdot=%s", RV(syscall(SYS_openat2, dfd, "../f", &how, sizeof how)));
    how.resolve = RESOLVE_NO_SYMLINKS;
    append("no_symlinks=%s", RV(syscall(SYS_openat2, AT_FDCWD, "s", &how, sizeof how)));
    how.resolve = 0x80;
    append("unknown_resolve=%s", RV(syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how)));
    how.resolve = 0;
    append("small=%s", RV(syscall(SYS_openat2, AT_FDCWD, "f", &how, 8)));
    append("ok=%s", RV(syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how)));
    how.mode = 0644;
    append("mode_without_creat=%s", RV(syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how)));
}

static void getdents_sorted(void) {
    in_dir("gd_list");
    touch("b");
    touch("a");
    must(mkdir("c", 0755), "c");
    must(symlink("a", "d"), "symlink");
    touch("gone");
    must(unlink("gone"), "unlink");
    DIR *d = opendir(".");
    char names[16][300];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 16) {
        snprintf(names[n], 300, "%s:%c", e->d_name,
                 e->d_type == DT_DIR ? 'd' : e->d_type == DT_LNK ? 'l' : e->d_type == DT_REG ? 'f' : '?');
        n++;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char t[300];
                strcpy(t, names[i]);
                strcpy(names[i], names[j]);
                strcpy(names[j], t);
            }
    result("n=%d", n);
    for (int i = 0; i < n; i++) append("%s", names[i]);
}

static void getdents_on_file(void) {
    in_dir("gd_file");
    touch("f");
    int fd = open("f", O_RDONLY);
    char buf[1024];
    CHECK(syscall(SYS_getdents64, fd, buf, sizeof buf));
}

static void realpath_of_cwd(void) {
    in_dir("rp_cwd");
    must(mkdir("d", 0755), "d");
    must(symlink("d", "s"), "symlink");
    char b[PATH_MAX];
    const char *r = realpath("s", b);
    size_t n = strlen(abs_scratch);
    result("%s", r ? (strncmp(r, abs_scratch, n) == 0 ? r + n : "elsewhere") : rv(-1));
}

static void dotdot_of_root(void) {
    struct stat a, b;
    stat("/", &a);
    stat("/..", &b);
    result("same=%d", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
}

/* Changes through a directory opened for reading (rvisor: opened natively in the guest's
 * read-only view, the changes redirected by path). */
static void changes_through_a_directory_fd(void) {
    in_dir("dirfd_changes");
    must(mkdir("d", 0755), "d");
    int fd = open("d", O_RDONLY | O_DIRECTORY);
    struct stat st;
    result("fchmod=%s", rv(fchmod(fd, 0700)));
    fstat(fd, &st);
    append("mode=%o", st.st_mode & 07777);
    append("fchown=%s", rv(fchown(fd, getuid(), getgid())));
    struct timespec t[2] = {{1, 0}, {2, 0}};
    append("futimens=%s", rv(futimens(fd, t)));
    fstat(fd, &st);
    append("mtime=%ld", (long)st.st_mtime);
    t[1].tv_sec = 3;
    append("empty_path=%s", rv(utimensat(fd, "", t, AT_EMPTY_PATH)));
    fstat(fd, &st);
    append("mtime=%ld", (long)st.st_mtime);
    append("fsetxattr=%s", rv(fsetxattr(fd, "user.t", "v", 1, 0)));
    char v[8] = {0};
    append("fgetxattr=%s", rv(fgetxattr(fd, "user.t", v, sizeof v)));
    append("fremovexattr=%s", rv(fremovexattr(fd, "user.t")));
    struct statfs a, b;
    append("fstatfs=%s", rv(fstatfs(fd, &a)));
    statfs("d", &b);
    append("same_flags=%d", a.f_flags == b.f_flags);
    append("rdonly=%d", !!(a.f_flags & ST_RDONLY));
}

int main(int argc, char **argv) {
    compat_init(argc, argv);
    if (!getcwd(abs_scratch, sizeof abs_scratch)) return 2;
    umask(022);

    CASE(rename_dot);
    CASE(rename_dotdot);
    CASE(rename_to_slash_dot);
    CASE(rename_to_slash_dotdot);
    CASE(rename_from_slash_dot);
    CASE(rename_dir_trailing_slash);
    CASE(rename_file_trailing_slash);
    CASE(rename_into_own_subdir);
    CASE(rename_type_mismatch);
    CASE(rename_hardlinks_noop);
    CASE(renameat2_flags);
    CASE(renameat2_exchange);
    CASE(rename_bad_dirfd);

    CASE(link_new_trailing_slash);
    CASE(link_old_trailing_slash);
    CASE(link_directory);
    CASE(link_existing);
    CASE(link_symlink_nofollow);
    CASE(link_tmpfile_via_proc);
    CASE(link_tmpfile_excl);
    CASE(linkat_empty_path);

    CASE(unlinkat_bad_dirfd);
    CASE(unlinkat_file_dirfd);
    CASE(unlinkat_bad_flag);
    CASE(unlinkat_trailing_slash);
    CASE(unlink_directory);
    CASE(unlinkat_removedir_file);
    CASE(rmdir_dot_dotdot);
    CASE(rmdir_dotdot_of_cwd);
    CASE(unlink_dot_dotdot);
    CASE(rmdir_errors);
    CASE(rmdir_cwd);
    CASE(chdir_proc_fd_deleted);
    CASE(fchdir_deleted);
    CASE(chdir_proc_fd_live);
    CASE(chdir_errors);

    CASE(statx_reserved_mask);
    CASE(statx_sync_flags_both);
    CASE(statx_unknown_flag);
    CASE(statx_basic);
    CASE(statx_empty_path);
    CASE(statx_symlink_nofollow);
    CASE(statx_bad_pointer);

    CASE(utimensat_explicit);
    CASE(utimensat_both_omit);
    CASE(utimensat_both_omit_missing);
    CASE(utimensat_one_omit);
    CASE(utimensat_absolute_ignores_dirfd);
    CASE(utimensat_bad_nsec);
    CASE(utimensat_null_path);
    CASE(utimensat_bad_flags);
    CASE(utimensat_symlink_nofollow);
    CASE(utimensat_empty_path);
    CASE(futimens_opath);

    CASE(truncate_grow);
    CASE(truncate_shrink);
    CASE(truncate_negative);
    CASE(truncate_directory);
    CASE(truncate_errors);
    CASE(truncate_via_symlink);
    CASE(truncate_readonly_file_as_owner);

    CASE(open_path_errors);
    CASE(open_symlink_flags);
    CASE(symlink_loop);
    CASE(name_too_long);
    CASE(readlink_errors);
    CASE(symlink_errors);
    CASE(mkdir_errors);
    CASE(openat2_resolve);
    CASE(getdents_sorted);
    CASE(getdents_on_file);
    CASE(realpath_of_cwd);
    CASE(dotdot_of_root);
    CASE(changes_through_a_directory_fd);
    return 0;
}
