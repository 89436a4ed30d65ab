/* Ownership changes (compat item 3): chown, lchown, fchown and fchownat (O_PATH dirfd with
 * AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW) to the caller's own ids and to others, as root and after
 * dropping to nobody; what chown does to the set-id bits; fchown on a pipe. Each case works on
 * its own file, created by the program's root. */
#include "compat.h"

#include <sys/socket.h>

/* A new file `name` (0644, owned by the program's root) for one case. */
static void fresh(const char *name, mode_t mode) { make_file(name, "x\n", mode); }

static void chown_to_self(void) {
    fresh("c_self", 0644);
    long r_ = chown("c_self", 0, 0);
    result("%s owner=%s", rv(r_), owner_of("c_self"));
}

static void chown_to_other(void) {
    fresh("c_other", 0644);
    long r_ = chown("c_other", 1000, 1001);
    result("%s owner=%s", rv(r_), owner_of("c_other"));
}

static void chown_to_nobody(void) {
    fresh("c_nobody", 0644);
    long r_ = chown("c_nobody", 65534, 65534);
    result("%s owner=%s", rv(r_), owner_of("c_nobody"));
}

static void chown_group_only(void) {
    fresh("c_group", 0644);
    long r_ = chown("c_group", -1, 1001);
    result("%s owner=%s", rv(r_), owner_of("c_group"));
}

static void chown_minus_one_both(void) {
    fresh("c_none", 0644);
    long r_ = chown("c_none", -1, -1);
    result("%s owner=%s", rv(r_), owner_of("c_none"));
}

static void chown_missing(void) { CHECK(chown("c_missing", 0, 0)); }

static void chown_follows_symlink(void) {
    fresh("c_target", 0644);
    must(symlink("c_target", "c_link"), "symlink");
    int r = chown("c_link", 1000, 1000);
    result("%s target=%s link=%s", rv(r), owner_of("c_target"), owner_of("c_link"));
}

static void lchown_symlink(void) {
    fresh("l_target", 0644);
    must(symlink("l_target", "l_link"), "symlink");
    int r = lchown("l_link", 1000, 1000);
    result("%s target=%s link=%s", rv(r), owner_of("l_target"), owner_of("l_link"));
}

static void lchown_symlink_to_self(void) {
    fresh("ls_target", 0644);
    must(symlink("ls_target", "ls_link"), "symlink");
    CHECK(lchown("ls_link", 0, 0));
}

static void fchown_fd(void) {
    fresh("f_fd", 0644);
    int fd = open("f_fd", O_RDONLY);
    long r_ = fchown(fd, 1000, -1);
    result("%s owner=%s", rv(r_), owner_of("f_fd"));
}

static void fchown_fd_to_self(void) {
    fresh("f_fdself", 0644);
    int fd = open("f_fdself", O_RDONLY);
    CHECK(fchown(fd, 0, 0));
}

static void fchown_opath_fd(void) {
    fresh("f_opath", 0644);
    int fd = open("f_opath", O_PATH);
    CHECK(fchown(fd, 0, 0));
}

static void fchown_bad_fd(void) { CHECK(fchown(999, 0, 0)); }

static void fchownat_empty_path_opath(void) {
    fresh("fa_empty", 0644);
    int fd = open("fa_empty", O_PATH);
    int r = fchownat(fd, "", 1000, 1000, AT_EMPTY_PATH);
    result("%s owner=%s", rv(r), owner_of("fa_empty"));
}

static void fchownat_empty_path_opath_self(void) {
    fresh("fa_emptyself", 0644);
    int fd = open("fa_emptyself", O_PATH);
    CHECK(fchownat(fd, "", 0, 0, AT_EMPTY_PATH));
}

static void fchownat_empty_path_dir(void) {
    make_dir("fa_dir", 0755);
    int fd = open("fa_dir", O_PATH | O_DIRECTORY);
    int r = fchownat(fd, "", 1000, 1000, AT_EMPTY_PATH);
    result("%s owner=%s", rv(r), owner_of("fa_dir"));
}

static void fchownat_empty_without_flag(void) {
    fresh("fa_noflag", 0644);
    int fd = open("fa_noflag", O_PATH);
    CHECK(fchownat(fd, "", 0, 0, 0));
}

static void fchownat_opath_dirfd_relative(void) {
    make_dir("fa_rel", 0755);
    fresh("fa_rel/f", 0644);
    int dfd = open("fa_rel", O_PATH | O_DIRECTORY);
    int r = fchownat(dfd, "f", 1000, 1000, 0);
    result("%s owner=%s", rv(r), owner_of("fa_rel/f"));
}

static void fchownat_nofollow(void) {
    fresh("fa_nf_target", 0644);
    must(symlink("fa_nf_target", "fa_nf_link"), "symlink");
    int r = fchownat(AT_FDCWD, "fa_nf_link", 1000, 1000, AT_SYMLINK_NOFOLLOW);
    result("%s target=%s link=%s", rv(r), owner_of("fa_nf_target"), owner_of("fa_nf_link"));
}

static void fchownat_bad_flags(void) {
    fresh("fa_badflags", 0644);
    CHECK(fchownat(AT_FDCWD, "fa_badflags", 0, 0, 0x4000000));
}

static void fchownat_file_dirfd(void) {
    fresh("fa_notdir", 0644);
    int fd = open("fa_notdir", O_RDONLY);
    CHECK(fchownat(fd, "x", 0, 0, 0));
}

/* Set-id bits across chown: cleared on an executable even by root (Linux since 2.2.13); setgid
 * without group execute (mandatory locking marker) stays. */
static void chown_clears_setuid(void) {
    fresh("s_uid", 04755);
    int r = chown("s_uid", 0, 0);
    result("%s mode=%s", rv(r), mode_of("s_uid"));
}

static void chown_clears_setgid_exec(void) {
    fresh("s_gid", 02755);
    int r = chown("s_gid", 0, 0);
    result("%s mode=%s", rv(r), mode_of("s_gid"));
}

static void chown_keeps_setgid_noexec(void) {
    fresh("s_gidnx", 02644);
    int r = chown("s_gidnx", 0, 0);
    result("%s mode=%s", rv(r), mode_of("s_gidnx"));
}

static void chown_minus_one_keeps_setuid(void) {
    fresh("s_keep", 04755);
    int r = chown("s_keep", -1, -1);
    result("%s mode=%s", rv(r), mode_of("s_keep"));
}

static void chown_dir_keeps_setgid(void) {
    make_dir("s_dir", 02755);
    int r = chown("s_dir", 0, 0);
    result("%s mode=%s", rv(r), mode_of("s_dir"));
}

/* --- as nobody -------------------------------------------------------------------------------- */

/* A file of nobody's, created as root then given away (the case then drops). */
static int nobody_file(const char *name) {
    fresh(name, 0644);
    return chown(name, 65534, 65534);
}

static void unpriv_chown_own_to_other(void) {
    if (nobody_file("u_other") < 0) {
        result("setup=%s", rv(-1));
        return;
    }
    DROP_OR_RETURN();
    CHECK(chown("u_other", 1000, -1));
}

static void unpriv_chown_own_noop(void) {
    if (nobody_file("u_noop") < 0) {
        result("setup=%s", rv(-1));
        return;
    }
    DROP_OR_RETURN();
    CHECK(chown("u_noop", 65534, 65534));
}

static void unpriv_chown_own_group_member(void) {
    if (nobody_file("u_member") < 0) {
        result("setup=%s", rv(-1));
        return;
    }
    gid_t g = 4242;
    if (setgroups(1, &g) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0) {
        result("drop=%s", rv(-1));
        return;
    }
    int r = chown("u_member", -1, 4242);
    result("%s owner=%s", rv(r), owner_of("u_member"));
}

static void unpriv_chown_own_group_nonmember(void) {
    if (nobody_file("u_nonmember") < 0) {
        result("setup=%s", rv(-1));
        return;
    }
    DROP_OR_RETURN();
    CHECK(chown("u_nonmember", -1, 4242));
}

static void unpriv_chown_root_file(void) {
    fresh("u_rootfile", 0666);
    DROP_OR_RETURN();
    CHECK(chown("u_rootfile", 65534, 65534));
}

static void unpriv_chown_clears_setuid(void) {
    if (nobody_file("u_suid") < 0) {
        result("setup=%s", rv(-1));
        return;
    }
    must(chmod("u_suid", 04755), "chmod");
    DROP_OR_RETURN();
    int r = chown("u_suid", -1, 65534);
    result("%s mode=%s", rv(r), mode_of("u_suid"));
}

static void unpriv_fchown_own_fd(void) {
    if (nobody_file("u_fd") < 0) {
        result("setup=%s", rv(-1));
        return;
    }
    DROP_OR_RETURN();
    int fd = open("u_fd", O_RDONLY);
    long r_ = fchown(fd, 65534, -1);
    result("own=%s other=%s", rv(r_), rv(fchown(fd, 0, -1)));
}

static void unpriv_lchown_root_symlink(void) {
    must(symlink("whatever", "u_rootlink"), "symlink");
    DROP_OR_RETURN();
    CHECK(lchown("u_rootlink", 65534, 65534));
}

/* --- pipes ------------------------------------------------------------------------------------- */

static const char *fd_owner(int fd) {
    static char b[32];
    struct stat st;
    if (fstat(fd, &st) < 0) return rv(-1);
    snprintf(b, sizeof b, "%u:%u", st.st_uid, st.st_gid);
    return b;
}

static void fchown_pipe_to_self(void) {
    int p[2];
    must(pipe(p), "pipe");
    long r_ = fchown(p[0], 0, 0);
    result("%s owner=%s", rv(r_), fd_owner(p[0]));
}

static void fchown_pipe_to_other(void) {
    int p[2];
    must(pipe(p), "pipe");
    long r_ = fchown(p[0], 1000, 1000);
    result("%s owner=%s", rv(r_), fd_owner(p[1]));
}

static void fchown_pipe_unpriv(void) {
    int p[2];
    must(pipe(p), "pipe");
    DROP_OR_RETURN();
    result("root_pipe=%s", rv(fchown(p[0], 65534, 65534)));
    int q[2];
    must(pipe(q), "pipe");
    append("own_pipe=%s", rv(fchown(q[0], 65534, 65534)));
    append("owner=%s", fd_owner(q[0]));
    append("to_root=%s", rv(fchown(q[0], 0, 0)));
}

static void fchown_socket(void) {
    int s[2];
    must(socketpair(AF_UNIX, SOCK_STREAM, 0, s), "socketpair");
    long r_ = fchown(s[0], 1000, 1000);
    result("%s owner=%s", rv(r_), fd_owner(s[0]));
}

int main(int argc, char **argv) {
    compat_init(argc, argv);
    umask(0);

    CASE(chown_to_self);
    CASE(chown_to_other);
    CASE(chown_to_nobody);
    CASE(chown_group_only);
    CASE(chown_minus_one_both);
    CASE(chown_missing);
    CASE(chown_follows_symlink);
    CASE(lchown_symlink);
    CASE(lchown_symlink_to_self);
    CASE(fchown_fd);
    CASE(fchown_fd_to_self);
    CASE(fchown_opath_fd);
    CASE(fchown_bad_fd);
    CASE(fchownat_empty_path_opath);
    CASE(fchownat_empty_path_opath_self);
    CASE(fchownat_empty_path_dir);
    CASE(fchownat_empty_without_flag);
    CASE(fchownat_opath_dirfd_relative);
    CASE(fchownat_nofollow);
    CASE(fchownat_bad_flags);
    CASE(fchownat_file_dirfd);
    CASE(chown_clears_setuid);
    CASE(chown_clears_setgid_exec);
    CASE(chown_keeps_setgid_noexec);
    CASE(chown_minus_one_keeps_setuid);
    CASE(chown_dir_keeps_setgid);

    CASE(unpriv_chown_own_to_other);
    CASE(unpriv_chown_own_noop);
    CASE(unpriv_chown_own_group_member);
    CASE(unpriv_chown_own_group_nonmember);
    CASE(unpriv_chown_root_file);
    CASE(unpriv_chown_clears_setuid);
    CASE(unpriv_fchown_own_fd);
    CASE(unpriv_lchown_root_symlink);

    CASE(fchown_pipe_to_self);
    CASE(fchown_pipe_to_other);
    CASE(fchown_pipe_unpriv);
    CASE(fchown_socket);
    return 0;
}
