/* Extended attributes (compat item 5): user.* set/get/list/remove on files and directories, the
 * l* variants on symlinks (user.* on a symlink is refused), the f* variants, flags, unknown
 * namespaces, trusted.* (CAP_SYS_ADMIN), sizes, and files whose mode denies the caller. */
#include "compat.h"

#include <sys/xattr.h>

static void fresh(const char *name, mode_t mode) { make_file(name, "x\n", mode); }

/* The names listxattr returns in the user. and trusted. namespaces (others, such as
 * security.*, depend on the host's LSMs), in order, comma-separated. */
static const char *names_of(ssize_t n, const char *buf) {
    static char out[1024];
    out[0] = 0;
    if (n < 0) return rv(-1);
    for (const char *p = buf; p < buf + n; p += strlen(p) + 1) {
        if (strncmp(p, "user.", 5) != 0 && strncmp(p, "trusted.", 8) != 0) continue;
        if (out[0]) strcat(out, ",");
        strncat(out, p, sizeof out - strlen(out) - 2);
    }
    return out[0] ? out : "(none)";
}

static const char *value_of(ssize_t n, const char *buf) {
    static char out[256];
    if (n < 0) return rv(-1);
    snprintf(out, sizeof out, "%zd:%.*s", n, (int)(n > 64 ? 64 : n), buf);
    return out;
}

static void user_set_get(void) {
    fresh("f_sg", 0644);
    char buf[64];
    result("set=%s", rv(setxattr("f_sg", "user.a", "one", 3, 0)));
    ssize_t n = getxattr("f_sg", "user.a", buf, sizeof buf);
    append("get=%s", value_of(n, buf));
}

static void user_get_size_query(void) {
    fresh("f_size", 0644);
    setxattr("f_size", "user.a", "12345", 5, 0);
    result("size=%zd", getxattr("f_size", "user.a", NULL, 0));
    char small[2];
    append("small=%s", RV(getxattr("f_size", "user.a", small, sizeof small)));
}

static void user_get_missing(void) {
    fresh("f_missing", 0644);
    char buf[8];
    CHECK(getxattr("f_missing", "user.nope", buf, sizeof buf));
}

static void user_list(void) {
    fresh("f_list", 0644);
    setxattr("f_list", "user.b", "2", 1, 0);
    setxattr("f_list", "user.a", "1", 1, 0);
    setxattr("f_list", "user.c", "", 0, 0);
    char buf[1024];
    ssize_t n = listxattr("f_list", buf, sizeof buf);
    /* The order is the filesystem's: report it sorted. */
    char *names[16];
    int k = 0;
    for (char *p = buf; n > 0 && p < buf + n && k < 16; p += strlen(p) + 1)
        if (strncmp(p, "user.", 5) == 0) names[k++] = p;
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    result("n=%d", k);
    for (int i = 0; i < k; i++) append("%s", names[i]);
    char one[1];
    append("small=%s", RV(listxattr("f_list", one, 1)));
    ssize_t q = listxattr("f_list", NULL, 0);
    append("query_matches=%s", q == n ? "yes" : "no");
}

static void user_empty_value(void) {
    fresh("f_empty", 0644);
    char buf[8];
    result("set=%s", rv(setxattr("f_empty", "user.e", "", 0, 0)));
    append("get=%s", value_of(getxattr("f_empty", "user.e", buf, sizeof buf), buf));
}

static void user_create_flag(void) {
    fresh("f_create", 0644);
    result("first=%s", rv(setxattr("f_create", "user.a", "1", 1, XATTR_CREATE)));
    append("again=%s", rv(setxattr("f_create", "user.a", "2", 1, XATTR_CREATE)));
}

static void user_replace_flag(void) {
    fresh("f_replace", 0644);
    result("missing=%s", rv(setxattr("f_replace", "user.a", "1", 1, XATTR_REPLACE)));
    setxattr("f_replace", "user.a", "1", 1, 0);
    append("present=%s", rv(setxattr("f_replace", "user.a", "22", 2, XATTR_REPLACE)));
    char buf[8];
    append("get=%s", value_of(getxattr("f_replace", "user.a", buf, sizeof buf), buf));
}

static void invalid_flags(void) {
    fresh("f_flags", 0644);
    result("both=%s", rv(setxattr("f_flags", "user.a", "1", 1, XATTR_CREATE | XATTR_REPLACE)));
    append("four=%s", rv(setxattr("f_flags", "user.a", "1", 1, 4)));
    append("high=%s", rv(setxattr("f_flags", "user.a", "1", 1, 0x100)));
}

static void remove_user(void) {
    fresh("f_remove", 0644);
    setxattr("f_remove", "user.a", "1", 1, 0);
    result("remove=%s", rv(removexattr("f_remove", "user.a")));
    char buf[8];
    append("get=%s", RV(getxattr("f_remove", "user.a", buf, sizeof buf)));
    append("again=%s", rv(removexattr("f_remove", "user.a")));
}

static void fd_variants(void) {
    fresh("f_fd", 0644);
    int fd = open("f_fd", O_RDONLY);
    char buf[256];
    result("fset=%s", rv(fsetxattr(fd, "user.f", "fd", 2, 0)));
    append("fget=%s", value_of(fgetxattr(fd, "user.f", buf, sizeof buf), buf));
    append("flist=%s", names_of(flistxattr(fd, buf, sizeof buf), buf));
    append("fremove=%s", rv(fremovexattr(fd, "user.f")));
    append("fremove_again=%s", rv(fremovexattr(fd, "user.f")));
    append("get=%s", RV(getxattr("f_fd", "user.f", buf, sizeof buf)));
}

static void fd_variants_opath(void) {
    fresh("f_opath", 0644);
    int fd = open("f_opath", O_PATH);
    char buf[64];
    result("fset=%s", rv(fsetxattr(fd, "user.f", "fd", 2, 0)));
    append("fget=%s", RV(fgetxattr(fd, "user.f", buf, sizeof buf)));
    append("flist=%s", RV(flistxattr(fd, buf, sizeof buf)));
    append("fremove=%s", rv(fremovexattr(fd, "user.f")));
}

static void fd_variants_readonly_fd(void) {
    /* An fd open for reading suffices to set (the check is on the inode). */
    fresh("f_rofd", 0644);
    int fd = open("f_rofd", O_RDONLY);
    CHECK(fsetxattr(fd, "user.r", "1", 1, 0));
}

static void dir_user(void) {
    make_dir("d_user", 0755);
    char buf[256];
    result("set=%s", rv(setxattr("d_user", "user.d", "dir", 3, 0)));
    append("get=%s", value_of(getxattr("d_user", "user.d", buf, sizeof buf), buf));
    append("list=%s", names_of(listxattr("d_user", buf, sizeof buf), buf));
    append("remove=%s", rv(removexattr("d_user", "user.d")));
}

static void symlink_follow(void) {
    fresh("s_target", 0644);
    must(symlink("s_target", "s_link"), "symlink");
    char buf[64];
    result("set=%s", rv(setxattr("s_link", "user.t", "via", 3, 0)));
    append("target=%s", value_of(getxattr("s_target", "user.t", buf, sizeof buf), buf));
}

static void symlink_lsetxattr_user(void) {
    fresh("ls_target", 0644);
    must(symlink("ls_target", "ls_link"), "symlink");
    CHECK(lsetxattr("ls_link", "user.l", "1", 1, 0));
}

static void symlink_lgetxattr_user(void) {
    must(symlink("nowhere", "lg_link"), "symlink");
    char buf[8];
    CHECK(lgetxattr("lg_link", "user.l", buf, sizeof buf));
}

static void symlink_llistxattr(void) {
    must(symlink("nowhere", "ll_link"), "symlink");
    char buf[256];
    result("%s", names_of(llistxattr("ll_link", buf, sizeof buf), buf));
}

static void symlink_lremovexattr_user(void) {
    must(symlink("nowhere", "lr_link"), "symlink");
    CHECK(lremovexattr("lr_link", "user.l"));
}

static void symlink_dangling_follow(void) {
    must(symlink("nowhere", "dangling"), "symlink");
    CHECK(setxattr("dangling", "user.x", "1", 1, 0));
}

static void symlink_ltrusted(void) {
    must(symlink("nowhere", "lt_link"), "symlink");
    result("set=%s", rv(lsetxattr("lt_link", "trusted.l", "1", 1, 0)));
    char buf[8];
    append("get=%s", value_of(lgetxattr("lt_link", "trusted.l", buf, sizeof buf), buf));
    append("remove=%s", rv(lremovexattr("lt_link", "trusted.l")));
}

static void fifo_user(void) {
    must(mkfifo("fifo", 0644), "mkfifo");
    char buf[8];
    result("set=%s", rv(setxattr("fifo", "user.p", "1", 1, 0)));
    append("get=%s", RV(getxattr("fifo", "user.p", buf, sizeof buf)));
}

static void devnull_user(void) {
    char buf[8];
    result("set=%s", rv(setxattr("/dev/null", "user.p", "1", 1, 0)));
    append("get=%s", RV(getxattr("/dev/null", "user.p", buf, sizeof buf)));
}

static void trusted_namespace(void) {
    fresh("f_trusted", 0644);
    char buf[256];
    result("set=%s", rv(setxattr("f_trusted", "trusted.t", "tv", 2, 0)));
    append("get=%s", value_of(getxattr("f_trusted", "trusted.t", buf, sizeof buf), buf));
    append("list=%s", names_of(listxattr("f_trusted", buf, sizeof buf), buf));
    append("remove=%s", rv(removexattr("f_trusted", "trusted.t")));
}

static void trusted_without_sys_admin(void) {
    fresh("f_trusted2", 0644);
    setxattr("f_trusted2", "trusted.t", "tv", 2, 0);
    setxattr("f_trusted2", "user.u", "uv", 2, 0);
    if (cap_drop_effective(CAP_SYS_ADMIN) < 0) {
        result("capset=%s", rv(-1));
        return;
    }
    char buf[256];
    result("set=%s", rv(setxattr("f_trusted2", "trusted.n", "1", 1, 0)));
    append("get=%s", RV(getxattr("f_trusted2", "trusted.t", buf, sizeof buf)));
    append("list=%s", names_of(listxattr("f_trusted2", buf, sizeof buf), buf));
    append("remove=%s", rv(removexattr("f_trusted2", "trusted.t")));
}

static void unknown_prefix(void) {
    fresh("f_prefix", 0644);
    char buf[8];
    result("set=%s", rv(setxattr("f_prefix", "foo.bar", "1", 1, 0)));
    append("get=%s", RV(getxattr("f_prefix", "foo.bar", buf, sizeof buf)));
    append("remove=%s", rv(removexattr("f_prefix", "foo.bar")));
    append("noprefix=%s", rv(setxattr("f_prefix", "bar", "1", 1, 0)));
    append("user_only=%s", rv(setxattr("f_prefix", "user.", "1", 1, 0)));
}

static void system_unknown(void) {
    fresh("f_system", 0644);
    CHECK(setxattr("f_system", "system.nonsense", "1", 1, 0));
}

static void name_limits(void) {
    fresh("f_names", 0644);
    char name[300];
    memset(name, 'n', sizeof name);
    memcpy(name, "user.", 5);
    name[255] = 0;
    result("len255=%s", rv(setxattr("f_names", name, "1", 1, 0)));
    name[255] = 'n';
    name[256] = 0;
    append("len256=%s", rv(setxattr("f_names", name, "1", 1, 0)));
    append("empty=%s", rv(setxattr("f_names", "", "1", 1, 0)));
}

static void value_limits(void) {
    fresh("f_values", 0644);
    static char big[65537];
    memset(big, 'v', sizeof big);
    result("64k+1=%s", rv(setxattr("f_values", "user.big", big, 65537, 0)));
}

static void missing_file(void) {
    char buf[8];
    result("set=%s", rv(setxattr("nofile", "user.a", "1", 1, 0)));
    append("get=%s", RV(getxattr("nofile", "user.a", buf, sizeof buf)));
    append("list=%s", RV(listxattr("nofile", buf, sizeof buf)));
    append("remove=%s", rv(removexattr("nofile", "user.a")));
}

static void mode_0400_as_root(void) {
    fresh("f_0400", 0400);
    char buf[8];
    result("set=%s", rv(setxattr("f_0400", "user.a", "1", 1, 0)));
    append("get=%s", value_of(getxattr("f_0400", "user.a", buf, sizeof buf), buf));
    append("remove=%s", rv(removexattr("f_0400", "user.a")));
}

static void mode_0200_as_root(void) {
    fresh("f_0200", 0200);
    char buf[8];
    result("set=%s", rv(setxattr("f_0200", "user.a", "1", 1, 0)));
    append("get=%s", value_of(getxattr("f_0200", "user.a", buf, sizeof buf), buf));
    append("list=%s", names_of(listxattr("f_0200", buf, sizeof buf), buf));
}

/* The owner without CAP_DAC_OVERRIDE: the file's own mode bits decide. */
static void mode_0400_owner_no_override(void) {
    fresh("f_0400o", 0400);
    setxattr("f_0400o", "user.a", "1", 1, 0);
    if (cap_drop_effective(CAP_DAC_OVERRIDE) < 0) {
        result("capset=%s", rv(-1));
        return;
    }
    char buf[8];
    result("set=%s", rv(setxattr("f_0400o", "user.b", "1", 1, 0)));
    append("get=%s", value_of(getxattr("f_0400o", "user.a", buf, sizeof buf), buf));
    append("remove=%s", rv(removexattr("f_0400o", "user.a")));
}

static void mode_0200_owner_no_override(void) {
    fresh("f_0200o", 0200);
    setxattr("f_0200o", "user.a", "1", 1, 0);
    if (cap_drop_effective(CAP_DAC_OVERRIDE) < 0 || cap_drop_effective(CAP_DAC_READ_SEARCH) < 0) {
        result("capset=%s", rv(-1));
        return;
    }
    char buf[64];
    result("set=%s", rv(setxattr("f_0200o", "user.b", "1", 1, 0)));
    append("get=%s", RV(getxattr("f_0200o", "user.a", buf, sizeof buf)));
    append("list=%s", names_of(listxattr("f_0200o", buf, sizeof buf), buf));
}

static void other_user_file(void) {
    fresh("f_others", 0644);
    setxattr("f_others", "user.a", "1", 1, 0);
    DROP_OR_RETURN();
    char buf[64];
    result("set=%s", rv(setxattr("f_others", "user.b", "1", 1, 0)));
    append("get=%s", value_of(getxattr("f_others", "user.a", buf, sizeof buf), buf));
    append("remove=%s", rv(removexattr("f_others", "user.a")));
}

static void other_user_0600_file(void) {
    fresh("f_others600", 0600);
    setxattr("f_others600", "user.a", "1", 1, 0);
    DROP_OR_RETURN();
    char buf[64];
    result("get=%s", RV(getxattr("f_others600", "user.a", buf, sizeof buf)));
    append("list=%s", names_of(listxattr("f_others600", buf, sizeof buf), buf));
}

static void sticky_dir_other_user(void) {
    /* user.* on a sticky directory of another owner: only the owner (or CAP_FOWNER) may. */
    make_dir("d_sticky", 01777);
    DROP_OR_RETURN();
    CHECK(setxattr("d_sticky", "user.s", "1", 1, 0));
}

int main(int argc, char **argv) {
    compat_init(argc, argv);
    umask(0);
    {
        /* The scratch filesystem must take user xattrs, natively and in the sandbox. */
        fresh("probe", 0644);
        if (setxattr("probe", "user.probe", "1", 1, 0) < 0)
            printf("NOTE user xattrs unsupported here: %s\n", strerror(errno));
    }
    CASE(user_set_get);
    CASE(user_get_size_query);
    CASE(user_get_missing);
    CASE(user_list);
    CASE(user_empty_value);
    CASE(user_create_flag);
    CASE(user_replace_flag);
    CASE(invalid_flags);
    CASE(remove_user);
    CASE(fd_variants);
    CASE(fd_variants_opath);
    CASE(fd_variants_readonly_fd);
    CASE(dir_user);
    CASE(symlink_follow);
    CASE(symlink_lsetxattr_user);
    CASE(symlink_lgetxattr_user);
    CASE(symlink_llistxattr);
    CASE(symlink_lremovexattr_user);
    CASE(symlink_dangling_follow);
    CASE(symlink_ltrusted);
    CASE(fifo_user);
    CASE(devnull_user);
    CASE(trusted_namespace);
    CASE(trusted_without_sys_admin);
    CASE(unknown_prefix);
    CASE(system_unknown);
    CASE(name_limits);
    CASE(value_limits);
    CASE(missing_file);
    CASE(mode_0400_as_root);
    CASE(mode_0200_as_root);
    CASE(mode_0400_owner_no_override);
    CASE(mode_0200_owner_no_override);
    CASE(other_user_file);
    CASE(other_user_0600_file);
    CASE(sticky_dir_other_user);
    return 0;
}
