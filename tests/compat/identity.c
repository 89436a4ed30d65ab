/* Identity and discretionary access control (compat items 1 and 2): file access after a process
 * changed its ids, sticky directories, capabilities across set*id and capset, per-thread
 * credentials, supplementary groups, /proc views of the ids, setuid executables, and the
 * identity calls' own rules (kill, setpriority, setrlimit, clone(CLONE_PARENT)).
 *
 * Set-up (as the program's initial root): `root0` mode 0 owned by root; `rootdir` 0755 with
 * `f` (0644) and `sub/`; `sticky` 01777 with root's `rootfile`; `grp` 0070 group 4242; `suidbin`
 * (a copy of this program, 04755) in the scratch directory and in `nosuid/` (a nosuid mount). */
#include "compat.h"

#include <pthread.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

static const char *self_path;
static const char *grp_setup = "ok";
static const char *nosuid_setup = "ok";

/* --- file access after a change of identity ------------------------------------------------- */

static void drop_ids(void) {
    const char *why = drop_to(65534, 65534);
    if (why) {
        result("%s", why);
        return;
    }
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    result("ok uid=%u,%u,%u gid=%u,%u,%u groups=%d", r, e, s, gr, ge, gs, getgroups(0, NULL));
}

static void dropped_open_w_mode0(void) {
    DROP_OR_RETURN();
    CHECK(open("root0", O_WRONLY));
}

static void dropped_open_r_mode0(void) {
    DROP_OR_RETURN();
    CHECK(open("root0", O_RDONLY));
}

static void dropped_create_in_rootdir(void) {
    DROP_OR_RETURN();
    CHECK(open("rootdir/new", O_WRONLY | O_CREAT, 0644));
}

static void dropped_access_w(void) {
    DROP_OR_RETURN();
    CHECK(access("rootdir/f", W_OK));
}

static void dropped_access_r(void) {
    DROP_OR_RETURN();
    CHECK(access("rootdir/f", R_OK));
}

static void dropped_faccessat_eaccess_w(void) {
    DROP_OR_RETURN();
    CHECK(faccessat(AT_FDCWD, "root0", W_OK, AT_EACCESS));
}

static void dropped_mkdir(void) {
    DROP_OR_RETURN();
    CHECK(mkdir("rootdir/d", 0755));
}

static void dropped_link(void) {
    DROP_OR_RETURN();
    CHECK(link("rootdir/f", "rootdir/l"));
}

static void dropped_rename(void) {
    DROP_OR_RETURN();
    CHECK(rename("rootdir/f_rename", "rootdir/g"));
}

static void dropped_unlink(void) {
    DROP_OR_RETURN();
    CHECK(unlink("rootdir/f_unlink"));
}

static void dropped_rmdir(void) {
    DROP_OR_RETURN();
    CHECK(rmdir("rootdir/sub"));
}

static void dropped_symlink(void) {
    DROP_OR_RETURN();
    CHECK(symlink("f", "rootdir/s"));
}

static void dropped_truncate(void) {
    DROP_OR_RETURN();
    CHECK(truncate("rootdir/f_truncate", 0));
}

static void dropped_open_trunc(void) {
    DROP_OR_RETURN();
    CHECK(open("rootdir/f_otrunc", O_WRONLY | O_TRUNC));
}

static void dropped_chmod(void) {
    DROP_OR_RETURN();
    CHECK(chmod("rootdir/f_chmod", 0777));
}

static void dropped_chown(void) {
    DROP_OR_RETURN();
    CHECK(chown("rootdir/f_chown", 65534, 65534));
}

static void dropped_utimens_now(void) {
    DROP_OR_RETURN();
    CHECK(utimensat(AT_FDCWD, "rootdir/f_utimes", NULL, 0));
}

static void dropped_utimens_explicit(void) {
    DROP_OR_RETURN();
    struct timespec ts[2] = {{1000, 0}, {1000, 0}};
    CHECK(utimensat(AT_FDCWD, "rootdir/f_utimes", ts, 0));
}

static void dropped_creat_in_sticky(void) {
    DROP_OR_RETURN();
    int fd = open("sticky/mine", O_WRONLY | O_CREAT | O_EXCL, 0644);
    result("create=%s owner=%s", rv(fd), owner_of("sticky/mine"));
    append("unlink_own=%s", rv(unlink("sticky/mine")));
}

static void sticky_unlink_other(void) {
    DROP_OR_RETURN();
    CHECK(unlink("sticky/rootfile1"));
}

static void sticky_rename_other(void) {
    DROP_OR_RETURN();
    CHECK(rename("sticky/rootfile2", "sticky/moved"));
}

static void sticky_rename_over_other(void) {
    DROP_OR_RETURN();
    int fd = open("sticky/mine2", O_WRONLY | O_CREAT | O_EXCL, 0644);
    result("create=%s over=%s", rv(fd), rv(rename("sticky/mine2", "sticky/rootfile3")));
}

static void sticky_root_unlinks_other(void) {
    /* Root (CAP_FOWNER) may remove another user's file from a sticky directory. */
    must(open("sticky/byroot", O_WRONLY | O_CREAT, 0644), "sticky/byroot");
    int r = chown("sticky/byroot", 65534, 65534);
    result("chown=%s unlink=%s", rv(r), rv(unlink("sticky/byroot")));
}

/* access() and faccessat without AT_EACCESS check the real ids; open the effective (fs) ids. */
static void access_uses_real_ids(void) {
    if (setresuid(65534, 0, 0) < 0) {
        result("setresuid=%s", rv(-1));
        return;
    }
    result("real_nobody: access=%s", rv(access("root0", R_OK)));
    append("eaccess=%s", rv(faccessat(AT_FDCWD, "root0", R_OK, AT_EACCESS)));
    append("open=%s", rv(open("root0", O_RDONLY)));
    if (setresuid(0, 65534, 0) < 0) {
        append("swap=%s", rv(-1));
        return;
    }
    append("effective_nobody: access=%s", rv(access("root0", R_OK)));
    append("eaccess=%s", rv(faccessat(AT_FDCWD, "root0", R_OK, AT_EACCESS)));
    append("open=%s", rv(open("root0", O_RDONLY)));
}

/* A new file belongs to the creator's effective (fs) uid and gid. */
static void created_owner_follows_effective_ids(void) {
    if (setresgid(-1, 2000, -1) < 0 || setresuid(-1, 1000, -1) < 0) {
        result("change=%s", rv(-1));
        return;
    }
    int fd = open("open777/by-euid", O_WRONLY | O_CREAT | O_EXCL, 0644);
    result("%s owner=%s", rv(fd), owner_of("open777/by-euid"));
    append("mkdir=%s", rv(mkdir("open777/dir-by-euid", 0755)));
    append("owner=%s", owner_of("open777/dir-by-euid"));
}

static void created_owner_follows_fsids(void) {
    setfsgid(4242);
    setfsuid(1000);
    int fd = open("open777/by-fsid", O_WRONLY | O_CREAT | O_EXCL, 0644);
    result("%s owner=%s", rv(fd), owner_of("open777/by-fsid"));
    append("symlink=%s", rv(symlink("x", "open777/link-by-fsid")));
    append("owner=%s", owner_of("open777/link-by-fsid"));
}

static void created_group_in_setgid_dir(void) {
    /* A setgid directory passes its group on, whatever the creator's gid. */
    if (strcmp(grp_setup, "ok") != 0) {
        result("setup=%s", grp_setup);
        return;
    }
    DROP_OR_RETURN();
    int fd = open("sgid4242/f", O_WRONLY | O_CREAT | O_EXCL, 0644);
    result("%s owner=%s", rv(fd), owner_of("sgid4242/f"));
    append("mkdir=%s", rv(mkdir("sgid4242/d", 0755)));
    append("owner=%s mode=%s", owner_of("sgid4242/d"), mode_of("sgid4242/d"));
}

/* --- capabilities ---------------------------------------------------------------------------- */

static void caps_initial(void) { result("%s", caps_now()); }

static void caps_after_setresuid(void) {
    if (setresuid(65534, 65534, 65534) < 0) {
        result("setresuid=%s", rv(-1));
        return;
    }
    result("%s", caps_now());
}

static void caps_euid_roundtrip(void) {
    if (setresuid(-1, 65534, -1) < 0) {
        result("seteuid=%s", rv(-1));
        return;
    }
    result("dropped: %s", caps_now());
    append("back=%s", rv(setresuid(-1, 0, -1)));
    append("then: %s", caps_now());
}

static void caps_saved_root_back(void) {
    if (setresuid(1000, 1000, 0) < 0) {
        result("setresuid=%s", rv(-1));
        return;
    }
    result("mid: %s", caps_now());
    append("back=%s", rv(setresuid(0, 0, 0)));
    append("then: %s", caps_now());
}

static void caps_dropped_kill_root(void) {
    DROP_OR_RETURN();
    CHECK(kill(getppid(), 0));
}

static void capset_no_dac_override_open_mode0(void) {
    int r = cap_drop_effective(CAP_DAC_OVERRIDE);
    if (r < 0) {
        result("capset=%s", rv(-1));
        return;
    }
    result("wr=%s", rv(open("root0", O_WRONLY)));
    append("rd=%s", rv(open("root0", O_RDONLY)));
    cap_drop_effective(CAP_DAC_READ_SEARCH);
    append("rd_no_read_search=%s", rv(open("root0", O_RDONLY)));
}

static void capset_no_fowner_chmod_other(void) {
    /* A file of another owner: chmod needs CAP_FOWNER. */
    must(open("fowner-target", O_WRONLY | O_CREAT, 0644), "fowner-target");
    if (chown("fowner-target", 65534, 65534) < 0) {
        result("chown=%s", rv(-1));
        return;
    }
    cap_drop_effective(CAP_FOWNER);
    CHECK(chmod("fowner-target", 0600));
}

static void capset_raise_beyond_permitted(void) {
    /* After dropping CAP_KILL from the permitted set, adding it back to effective is refused. */
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    must(syscall(SYS_capget, &h, d), "capget");
    d[0].permitted &= ~(1U << CAP_KILL);
    d[0].effective &= ~(1U << CAP_KILL);
    result("drop=%s", RV(syscall(SYS_capset, &h, d)));
    d[0].effective |= 1U << CAP_KILL;
    append("raise=%s", RV(syscall(SYS_capset, &h, d)));
}

static void setfsuid_drops_fs_caps(void) {
    int prev = setfsuid(1234);
    int now = setfsuid(-1);
    result("prev=%d now=%d open=%s", prev, now, rv(open("root0", O_RDONLY)));
    append("%s", caps_now());
}

/* --- credentials are per thread --------------------------------------------------------------- */

static char thread_report[256];

static void *thread_setresuid(void *arg) {
    (void)arg;
    long r = syscall(SYS_setresuid, 65534, 65534, 65534);
    snprintf(thread_report, sizeof thread_report, "thread_setresuid=%s thread_uid=%ld thread_open=%s",
             rv(r), syscall(SYS_getuid), rv(open("root0", O_RDONLY)));
    return NULL;
}

static void thread_credentials(void) {
    pthread_t t;
    pthread_create(&t, NULL, thread_setresuid, NULL);
    pthread_join(t, NULL);
    result("%s main_uid=%ld main_open=%s", thread_report, syscall(SYS_getuid),
           rv(open("root0", O_RDONLY)));
}

/* --- groups ------------------------------------------------------------------------------------ */

static void suppl_group_access(void) {
    gid_t g = 4242;
    if (strcmp(grp_setup, "ok") != 0) {
        result("setup=%s", grp_setup);
        return;
    }
    if (setgroups(1, &g) < 0) {
        result("setgroups=%s", rv(-1));
        return;
    }
    if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) {
        result("drop=%s", rv(-1));
        return;
    }
    result("read=%s write=%s", rv(open("grp", O_RDONLY)), rv(open("grp", O_WRONLY)));
}

static void no_group_access(void) {
    if (strcmp(grp_setup, "ok") != 0) {
        result("setup=%s", grp_setup);
        return;
    }
    DROP_OR_RETURN();
    CHECK(open("grp", O_RDONLY));
}

static void egid_group_access(void) {
    if (strcmp(grp_setup, "ok") != 0) {
        result("setup=%s", grp_setup);
        return;
    }
    const char *why = drop_to(65534, 4242);
    if (why) {
        result("drop=%s", why);
        return;
    }
    CHECK(open("grp", O_RDONLY));
}

static void getgroups_initial(void) {
    gid_t g[64];
    int n = getgroups(64, g);
    result("n=%d", n);
}

static void setgroups_then_getgroups(void) {
    gid_t g[3] = {3002, 3000, 3001}, out[8];
    int r = setgroups(3, g);
    if (r < 0) {
        result("setgroups=%s", rv(-1));
        return;
    }
    int n = getgroups(8, out);
    result("n=%d", n);
    for (int i = 0; i < n; i++) append("%u", out[i]);
    append("small=%s", rv(getgroups(1, out)));
}

/* --- /proc views of the ids ----------------------------------------------------------------- */

static void proc_status_initial(void) {
    result("Uid=%s", status_field("/proc/self/status", "Uid"));
    append("Gid=%s", status_field("/proc/self/status", "Gid"));
    append("Groups=%s", status_field("/proc/self/status", "Groups"));
}

static void proc_status_after_change(void) {
    gid_t g[2] = {3000, 3001};
    if (setgroups(2, g) < 0 || setresgid(2000, 2001, 2002) < 0 || setresuid(1000, 1001, 1002) < 0) {
        result("change=%s", rv(-1));
        return;
    }
    result("Uid=%s", status_field("/proc/self/status", "Uid"));
    append("Gid=%s", status_field("/proc/self/status", "Gid"));
    append("Groups=%s", status_field("/proc/self/status", "Groups"));
}

static void proc_status_thread_after_change(void) {
    /* The change made by glibc's setresuid reaches every thread: /proc/self/task/<tid>/status. */
    if (setresuid(1000, 1001, 1002) < 0) {
        result("change=%s", rv(-1));
        return;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", syscall(SYS_gettid));
    result("Uid=%s", status_field(path, "Uid"));
}

static void proc_pid_owner_after_drop(void) {
    result("before=%s", owner_of("/proc/self/"));
    DROP_OR_RETURN();
    append("after=%s status=%s", owner_of("/proc/self/"), owner_of("/proc/self/status"));
    prctl(PR_SET_DUMPABLE, 1);
    append("dumpable=%s", owner_of("/proc/self/"));
}

/* A root process that waits (a pipe's EOF) while the case reads its /proc files. */
static pid_t spawn_waiter(int drop, int dumpable, int *release) {
    int ready[2], hold[2];
    char c;
    must(pipe(ready), "pipe");
    must(pipe(hold), "pipe");
    pid_t pid = fork();
    must(pid, "fork");
    if (pid == 0) {
        close(ready[0]);
        close(hold[1]);
        if (drop && drop_to(65534, 65534)) _exit(1);
        if (dumpable) prctl(PR_SET_DUMPABLE, 1);
        if (write(ready[1], "r", 1) != 1) _exit(1);
        while (read(hold[0], &c, 1) > 0) {
        }
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    if (read(ready[0], &c, 1) != 1) {
        close(hold[1]);
        return -1;
    }
    close(ready[0]);
    *release = hold[1];
    return pid;
}

static void proc_files_of(pid_t pid) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/mem", pid);
    result("mem=%s", rv(open(p, O_RDONLY)));
    snprintf(p, sizeof p, "/proc/%d/auxv", pid);
    append("auxv=%s", rv(open(p, O_RDONLY)));
    snprintf(p, sizeof p, "/proc/%d/environ", pid);
    append("environ=%s", rv(open(p, O_RDONLY)));
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    append("status=%s", rv(open(p, O_RDONLY)));
}

static void proc_mem_of_root_process(void) {
    int release;
    pid_t pid = spawn_waiter(0, 0, &release);
    if (pid < 0) {
        result("spawn=failed");
        return;
    }
    const char *why = drop_to(65534, 65534);
    if (why) {
        result("drop=%s", why);
    } else {
        proc_files_of(pid);
    }
    close(release);
}

static void proc_mem_same_user_nondumpable(void) {
    int release;
    pid_t pid = spawn_waiter(1, 0, &release);
    if (pid < 0) {
        result("spawn=failed");
        return;
    }
    const char *why = drop_to(65534, 65534);
    if (why) {
        result("drop=%s", why);
    } else {
        proc_files_of(pid);
    }
    close(release);
}

static void proc_mem_same_user_dumpable(void) {
    int release;
    pid_t pid = spawn_waiter(1, 1, &release);
    if (pid < 0) {
        result("spawn=failed");
        return;
    }
    const char *why = drop_to(65534, 65534);
    if (why) {
        result("drop=%s", why);
    } else {
        proc_files_of(pid);
    }
    close(release);
}

/* --- setuid executables ------------------------------------------------------------------------ */

/* Runs `bin --whoami` as nobody (optionally with no_new_privs) and returns what it printed. */
static void exec_setuid(const char *bin, int nnp) {
    int p[2];
    must(pipe(p), "pipe");
    pid_t pid = fork();
    must(pid, "fork");
    if (pid == 0) {
        close(p[0]);
        const char *why = drop_to(65534, 65534);
        if (why) {
            dprintf(p[1], "drop=%s", why);
            _exit(0);
        }
        if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
            dprintf(p[1], "nnp=%s", rv(-1));
            _exit(0);
        }
        dup2(p[1], 1);
        execl(bin, bin, "--whoami", (char *)NULL);
        dprintf(p[1], "exec=%s", rv(-1));
        _exit(0);
    }
    close(p[1]);
    char buf[256];
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    waitpid(pid, NULL, 0);
    result("%s", buf[0] ? buf : "nothing");
}

static void setuid_exec_gains_euid(void) { exec_setuid("./suidbin", 0); }

static void setuid_exec_on_nosuid_mount(void) {
    if (strcmp(nosuid_setup, "ok") != 0) {
        result("setup=%s", nosuid_setup);
        return;
    }
    exec_setuid("./nosuid/suidbin", 0);
}

static void setuid_exec_with_no_new_privs(void) { exec_setuid("./suidbin", 1); }

static void no_new_privs_initial(void) { result("nnp=%d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)); }

/* --- identity calls (item 2) ----------------------------------------------------------------- */

static void ids_initial(void) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    result("uid=%u,%u,%u gid=%u,%u,%u", r, e, s, gr, ge, gs);
}

static void setresuid_root_to_any(void) {
    int r = setresuid(1000, 1001, 1002);
    uid_t a, b, c;
    getresuid(&a, &b, &c);
    result("%s now=%u,%u,%u", rv(r), a, b, c);
}

static void setresgid_root_to_any(void) {
    int r = setresgid(2000, 2001, 2002);
    gid_t a, b, c;
    getresgid(&a, &b, &c);
    result("%s now=%u,%u,%u", rv(r), a, b, c);
}

static void setresuid_to_own_ids(void) { CHECK(setresuid(0, 0, 0)); }

static void unpriv_setresuid_other(void) {
    DROP_OR_RETURN();
    result("other=%s", rv(setresuid(1000, -1, -1)));
    append("same=%s", rv(setresuid(65534, 65534, 65534)));
    append("unchanged=%s", rv(setresuid(-1, -1, -1)));
    append("setuid0=%s", rv(setuid(0)));
}

static void unpriv_setresgid_other(void) {
    DROP_OR_RETURN();
    result("other=%s", rv(setresgid(1000, -1, -1)));
    append("setgroups=%s", rv(setgroups(0, NULL)));
}

static void unpriv_swap_real_effective(void) {
    /* setreuid may swap real and effective (the saved id follows the new effective). */
    if (setresuid(65534, 1000, 1000) < 0) {
        result("setup=%s", rv(-1));
        return;
    }
    int r = setreuid(1000, 65534);
    uid_t a, b, c;
    getresuid(&a, &b, &c);
    result("%s now=%u,%u,%u", rv(r), a, b, c);
}

static void setuid_root_sets_all(void) {
    int r = setuid(1000);
    uid_t a, b, c;
    getresuid(&a, &b, &c);
    result("%s now=%u,%u,%u back=%s", rv(r), a, b, c, rv(setuid(0)));
}

static void seteuid_root_keeps_saved(void) {
    int r = seteuid(1000);
    uid_t a, b, c;
    getresuid(&a, &b, &c);
    result("%s now=%u,%u,%u back=%s", rv(r), a, b, c, rv(seteuid(0)));
}

static void setpriority_lower_unpriv(void) {
    DROP_OR_RETURN();
    result("up=%s", rv(setpriority(PRIO_PROCESS, 0, 15)));
    append("down=%s", rv(setpriority(PRIO_PROCESS, 0, 14)));
    errno = 0;
    int p = getpriority(PRIO_PROCESS, 0);
    append("now=%d", p);
}

static void setpriority_lower_root(void) {
    result("up=%s", rv(setpriority(PRIO_PROCESS, 0, 15)));
    append("down=%s", rv(setpriority(PRIO_PROCESS, 0, 14)));
    errno = 0;
    int p = getpriority(PRIO_PROCESS, 0);
    append("now=%d", p);
}

static void setrlimit_raise_hard_unpriv(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    DROP_OR_RETURN();
    rl.rlim_max += 1;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl));
}

static void setrlimit_lower_hard_unpriv(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    DROP_OR_RETURN();
    rl.rlim_max -= 1;
    if (rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
    result("lower=%s", rv(setrlimit(RLIMIT_NOFILE, &rl)));
    rl.rlim_max += 1;
    append("raise_back=%s", rv(setrlimit(RLIMIT_NOFILE, &rl)));
}

static void setrlimit_cur_above_max(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max + 1;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl));
}

static void kill_root_from_other_uid_via_real(void) {
    /* kill checks the sender's real or effective uid against the target's real or saved uid. */
    if (setresuid(65534, 65534, 0) < 0) {
        result("setresuid=%s", rv(-1));
        return;
    }
    CHECK(kill(getppid(), 0));
}

static void clone_parent_from_init(void) {
    /* From a pid namespace's init, CLONE_PARENT is refused (EINVAL): the program is that init
     * when run natively in a fresh pid namespace. */
    long r = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    result("%s", rv(r));
}

static void clone_parent_from_child(void) {
    /* From an ordinary process it works; the child becomes the caller's sibling. */
    long r = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    result("%s waitable_by_caller=%s", rv(r), r > 0 ? rv(waitpid(r, NULL, WNOHANG)) : "n/a");
}

static void sigcont_same_session_other_uid(void) {
    /* A child that drops to nobody can SIGCONT its root parent (same session), not SIGUSR2 it
     * (which the parent ignores, so a wrong success does no harm). */
    DROP_OR_RETURN();
    result("cont=%s", rv(kill(getppid(), SIGCONT)));
    append("usr2=%s", rv(kill(getppid(), SIGUSR2)));
}

static void copy_self(const char *to) {
    int in = open(self_path, O_RDONLY);
    must(in, self_path);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    must(out, to);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) must(write(out, buf, n), to);
    close(in);
    close(out);
    must(chown(to, 0, 0), to);
    must(chmod(to, 04755), to);
}

static void setup(void) {
    umask(0);
    make_file("root0", "secret\n", 0);
    make_dir("rootdir", 0755);
    make_file("rootdir/f", "data\n", 0644);
    const char *copies[] = {"rename", "unlink", "truncate", "otrunc", "chmod", "chown", "utimes"};
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        char p[64];
        snprintf(p, sizeof p, "rootdir/f_%s", copies[i]);
        make_file(p, "data\n", 0644);
    }
    make_dir("rootdir/sub", 0755);
    make_dir("sticky", 01777);
    make_file("sticky/rootfile1", "root's\n", 0644);
    make_file("sticky/rootfile2", "root's\n", 0644);
    make_file("sticky/rootfile3", "root's\n", 0644);
    make_file("grp", "group\n", 070);
    if (chown("grp", 0, 4242) < 0) grp_setup = strdup(rv(-1));
    make_dir("open777", 0777);
    make_dir("sgid4242", 02777);
    if (chown("sgid4242", 0, 4242) < 0 || chmod("sgid4242", 02777) < 0) grp_setup = strdup(rv(-1));
    copy_self("suidbin");
    make_dir("nosuid", 0755);
    struct statvfs sv;
    must(statvfs("nosuid", &sv), "statvfs");
    if (!(sv.f_flag & ST_NOSUID)) {
        /* Natively: a nosuid bind mount of our own (we are root in a fresh mount namespace). */
        if (mount("nosuid", "nosuid", NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, "nosuid", NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL) < 0)
            nosuid_setup = strdup(rv(-1));
    }
    copy_self("nosuid/suidbin");
    if (statvfs("nosuid", &sv) == 0 && !(sv.f_flag & ST_NOSUID) && strcmp(nosuid_setup, "ok") == 0)
        nosuid_setup = "not-nosuid";
    umask(022);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--whoami") == 0) {
        uid_t r, e, s;
        getresuid(&r, &e, &s);
        printf("r=%u e=%u s=%u secure=%lu", r, e, s, getauxval(AT_SECURE));
        return 0;
    }
    self_path = argv[0];
    signal(SIGUSR2, SIG_IGN);
    compat_init(argc, argv);
    setup();

    CASE_INLINE(ids_initial);
    CASE_INLINE(no_new_privs_initial);
    CASE_INLINE(clone_parent_from_init);
    CASE(clone_parent_from_child);

    CASE(drop_ids);
    CASE(dropped_open_w_mode0);
    CASE(dropped_open_r_mode0);
    CASE(dropped_create_in_rootdir);
    CASE(dropped_access_w);
    CASE(dropped_access_r);
    CASE(dropped_faccessat_eaccess_w);
    CASE(dropped_mkdir);
    CASE(dropped_link);
    CASE(dropped_rename);
    CASE(dropped_unlink);
    CASE(dropped_rmdir);
    CASE(dropped_symlink);
    CASE(dropped_truncate);
    CASE(dropped_open_trunc);
    CASE(dropped_chmod);
    CASE(dropped_chown);
    CASE(dropped_utimens_now);
    CASE(dropped_utimens_explicit);
    CASE(dropped_creat_in_sticky);
    CASE(sticky_unlink_other);
    CASE(sticky_rename_other);
    CASE(sticky_rename_over_other);
    CASE(sticky_root_unlinks_other);
    CASE(access_uses_real_ids);
    CASE(created_owner_follows_effective_ids);
    CASE(created_owner_follows_fsids);
    CASE(created_group_in_setgid_dir);

    CASE(caps_initial);
    CASE(caps_after_setresuid);
    CASE(caps_euid_roundtrip);
    CASE(caps_saved_root_back);
    CASE(caps_dropped_kill_root);
    CASE(capset_no_dac_override_open_mode0);
    CASE(capset_no_fowner_chmod_other);
    CASE(capset_raise_beyond_permitted);
    CASE(setfsuid_drops_fs_caps);
    CASE(thread_credentials);

    CASE(suppl_group_access);
    CASE(no_group_access);
    CASE(egid_group_access);
    CASE(getgroups_initial);
    CASE(setgroups_then_getgroups);

    CASE(proc_status_initial);
    CASE(proc_status_after_change);
    CASE(proc_status_thread_after_change);
    CASE(proc_pid_owner_after_drop);
    CASE(proc_mem_of_root_process);
    CASE(proc_mem_same_user_nondumpable);
    CASE(proc_mem_same_user_dumpable);

    CASE(setuid_exec_gains_euid);
    CASE(setuid_exec_on_nosuid_mount);
    CASE(setuid_exec_with_no_new_privs);

    CASE(setresuid_root_to_any);
    CASE(setresgid_root_to_any);
    CASE(setresuid_to_own_ids);
    CASE(unpriv_setresuid_other);
    CASE(unpriv_setresgid_other);
    CASE(unpriv_swap_real_effective);
    CASE(setuid_root_sets_all);
    CASE(seteuid_root_keeps_saved);
    CASE(setpriority_lower_unpriv);
    CASE(setpriority_lower_root);
    CASE(setrlimit_raise_hard_unpriv);
    CASE(setrlimit_lower_hard_unpriv);
    CASE(setrlimit_cur_above_max);
    CASE(kill_root_from_other_uid_via_real);
    CASE(sigcont_same_session_other_uid);
    return 0;
}
