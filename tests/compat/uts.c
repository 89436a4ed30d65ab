/* Host and domain names (compat item 7): uname's fields against /proc/sys/kernel/{hostname,
 * domainname}, sethostname and setdomainname as root (seen by uname, gethostname and /proc) and
 * without CAP_SYS_ADMIN, argument errors, writes through /proc. The initial host name is the
 * sandbox's choice (rvisor's --hostname), so no case reports it, only that the views agree. */
#include "compat.h"

#include <sys/utsname.h>

/* Contents of a /proc/sys file without its newline. */
static const char *proc_value(const char *path) {
    static char b[128];
    char *s = slurp(path);
    if (!s) return rv(-1);
    snprintf(b, sizeof b, "%.100s", s);
    b[strcspn(b, "\n")] = 0;
    return b;
}

static void uname_fields(void) {
    struct utsname u;
    result("%s sysname=%s machine=%s", rv(uname(&u)), u.sysname, u.machine);
}

static void uname_hostname_matches_proc(void) {
    struct utsname u;
    uname(&u);
    char h[128];
    gethostname(h, sizeof h);
    const char *p = proc_value("/proc/sys/kernel/hostname");
    result("proc=%s gethostname=%s", strcmp(u.nodename, p) == 0 ? "same" : "differs",
           strcmp(u.nodename, h) == 0 ? "same" : "differs");
}

static void uname_domainname_matches_proc(void) {
    struct utsname u;
    uname(&u);
    const char *p = proc_value("/proc/sys/kernel/domainname");
    if (strcmp(u.domainname, p) == 0)
        result("proc=same");
    else
        result("proc=differs uname='%s' proc='%s'", u.domainname, p);
    char d[128];
    if (getdomainname(d, sizeof d) == 0) append("getdomainname=%s", strcmp(u.domainname, d) == 0 ? "same" : "differs");
}

static void uname_release_matches_proc(void) {
    struct utsname u;
    uname(&u);
    result("osrelease=%s", strcmp(u.release, proc_value("/proc/sys/kernel/osrelease")) == 0 ? "same" : "differs");
    append("ostype=%s", proc_value("/proc/sys/kernel/ostype"));
}

static void sethostname_root(void) {
    const char *n = "compat-host";
    result("%s", rv(sethostname(n, strlen(n))));
    struct utsname u;
    uname(&u);
    char h[128] = {0};
    gethostname(h, sizeof h);
    append("uname=%s gethostname=%s proc=%s", u.nodename, h, proc_value("/proc/sys/kernel/hostname"));
}

static void setdomainname_root(void) {
    const char *n = "compat.domain";
    result("%s", rv(setdomainname(n, strlen(n))));
    struct utsname u;
    uname(&u);
    append("uname=%s proc=%s", u.domainname, proc_value("/proc/sys/kernel/domainname"));
}

static void sethostname_limits(void) {
    char n[80];
    memset(n, 'h', sizeof n);
    result("len64=%s", rv(sethostname(n, 64)));
    append("len65=%s", rv(sethostname(n, 65)));
    append("negative=%s", RV(syscall(SYS_sethostname, n, -1)));
    append("zero=%s", rv(sethostname(n, 0)));
    struct utsname u;
    uname(&u);
    append("now_len=%zu", strlen(u.nodename));
    append("fault=%s", RV(syscall(SYS_sethostname, (char *)8, 4)));
}

static void setdomainname_limits(void) {
    char n[80];
    memset(n, 'd', sizeof n);
    result("len64=%s", rv(setdomainname(n, 64)));
    append("len65=%s", rv(setdomainname(n, 65)));
    append("negative=%s", RV(syscall(SYS_setdomainname, n, -1)));
}

static void gethostname_short_buffer(void) {
    const char *n = "compat-longer-name";
    sethostname(n, strlen(n));
    char h[4];
    result("%s", rv(gethostname(h, sizeof h)));
}

static void sethostname_unpriv(void) {
    DROP_OR_RETURN();
    CHECK(sethostname("x", 1));
}

static void setdomainname_unpriv(void) {
    DROP_OR_RETURN();
    CHECK(setdomainname("x", 1));
}

static void sethostname_without_sys_admin(void) {
    if (cap_drop_effective(CAP_SYS_ADMIN) < 0) {
        result("capset=%s", rv(-1));
        return;
    }
    result("host=%s", rv(sethostname("x", 1)));
    append("domain=%s", rv(setdomainname("x", 1)));
}

static void proc_hostname_write(void) {
    int fd = open("/proc/sys/kernel/hostname", O_WRONLY);
    result("open=%s", rv(fd));
    if (fd < 0) return;
    append("write=%s", rv(write(fd, "via-proc\n", 9)));
    struct utsname u;
    uname(&u);
    append("uname=%s", u.nodename);
}

static void proc_domainname_write(void) {
    int fd = open("/proc/sys/kernel/domainname", O_WRONLY);
    result("open=%s", rv(fd));
    if (fd < 0) return;
    append("write=%s", rv(write(fd, "via.proc\n", 9)));
    struct utsname u;
    uname(&u);
    append("uname=%s", u.domainname);
}

static void hostname_shared_with_child(void) {
    /* The name is the UTS namespace's: a child's change is seen by its parent. */
    pid_t pid = fork();
    if (pid == 0) {
        sethostname("from-child", 10);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    struct utsname u;
    uname(&u);
    result("%s", u.nodename);
}

int main(int argc, char **argv) {
    compat_init(argc, argv);
    CASE(uname_fields);
    CASE(uname_hostname_matches_proc);
    CASE(uname_domainname_matches_proc);
    CASE(uname_release_matches_proc);
    CASE(sethostname_root);
    CASE(setdomainname_root);
    CASE(sethostname_limits);
    CASE(setdomainname_limits);
    CASE(gethostname_short_buffer);
    CASE(sethostname_unpriv);
    CASE(setdomainname_unpriv);
    CASE(sethostname_without_sys_admin);
    CASE(proc_hostname_write);
    CASE(proc_domainname_write);
    CASE(hostname_shared_with_child);
    return 0;
}
