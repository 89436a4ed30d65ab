/* Identity-aware file access, one scenario per argv[1], in the writable directory argv[2].
 * Each check prints "name result" (result: OK or the errno's name, or a value). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[512];

static const char *at(const char *name) {
    static char buf[4][700];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void show(const char *name, long rc) {
    printf("%s %s\n", name, rc < 0 ? strerrorname_np(errno) : "OK");
    fflush(stdout);
}

static long open_close(const char *path, int flags, int mode) {
    int fd = open(path, flags, mode);
    if (fd >= 0) close(fd);
    return fd;
}

/* Root builds the tree the unprivileged checks run against. */
static void build(void) {
    umask(0);
    mkdir(at("rootdir"), 0755);
    close(open(at("rootdir/file"), O_CREAT | O_WRONLY, 0644));
    close(open(at("mode0"), O_CREAT | O_WRONLY, 0));
    mkdir(at("secret"), 0700);
    close(open(at("secret/file"), O_CREAT | O_WRONLY, 0644));
    mkdir(at("sticky"), 01777);
    close(open(at("sticky/roots"), O_CREAT | O_WRONLY, 0666));
    close(open(at("group"), O_CREAT | O_WRONLY, 0060));
    chown(at("group"), 0, 4242);
}

static void drop_to(uid_t id) {
    gid_t none[1];
    if (syscall(SYS_setgroups, 0, none) || setresgid(id, id, id) || setresuid(id, id, id)) {
        printf("drop %s\n", strerrorname_np(errno));
        exit(0);
    }
}

static unsigned long long cap_effective(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) return ~0ULL;
    return d[0].effective | ((unsigned long long)d[1].effective << 32);
}

/* A root process drops to 65534: every check is as 65534, without capabilities. */
static void dropped(void) {
    build();
    /* Root looks these up first: what it found must not serve the dropped process. */
    show("root_open_secret", open_close(at("secret/file"), O_RDONLY, 0));
    show("root_open_mode0", open_close(at("mode0"), O_RDWR, 0));
    pid_t root_child = fork();
    if (root_child == 0) {
        /* Out of the way of the output, and gone soon (the dropped parent may not kill it). */
        close(0);
        close(1);
        close(2);
        alarm(2);
        pause();
        _exit(0);
    }
    drop_to(65534);
    show("open_secret", open_close(at("secret/file"), O_RDONLY, 0));
    show("open_mode0_write", open_close(at("mode0"), O_WRONLY, 0));
    show("open_mode0_read", open_close(at("mode0"), O_RDONLY, 0));
    show("create_in_rootdir", open_close(at("rootdir/new"), O_CREAT | O_WRONLY, 0644));
    show("o_trunc", open_close(at("rootdir/file"), O_WRONLY | O_TRUNC, 0));
    show("access_w", access(at("rootdir/file"), W_OK));
    show("access_r", access(at("rootdir/file"), R_OK));
    show("mkdir", mkdir(at("rootdir/d"), 0755));
    show("unlink", unlink(at("rootdir/file")));
    show("rmdir", rmdir(at("secret")));
    show("rename", rename(at("rootdir/file"), at("rootdir/moved")));
    show("link", link(at("rootdir/file"), at("rootdir/hard")));
    show("symlink", symlink("x", at("rootdir/sym")));
    show("truncate", truncate(at("rootdir/file"), 0));
    show("chmod", chmod(at("rootdir/file"), 0777));
    show("chown", chown(at("rootdir/file"), 65534, 65534));
    show("utimes_now", utimensat(AT_FDCWD, at("rootdir/file"), NULL, 0));
    show("sticky_unlink", unlink(at("sticky/roots")));
    show("sticky_create", open_close(at("sticky/mine"), O_CREAT | O_WRONLY, 0600));
    show("group_read", open_close(at("group"), O_RDONLY, 0));
    printf("caps %llx\n", cap_effective());
    show("kill_root", kill(root_child, 0));
    printf("uid %d euid %d\n", getuid(), geteuid());
    fflush(stdout);
    /* An exec keeps the ids: the new image is checked as 65534 too. */
    char *argv[] = {"cat", (char *)at("mode0"), NULL};
    execvp("cat", argv);
}

static void *raw_drop(void *arg) {
    (void)arg;
    /* The raw call changes this thread only (libc's setresuid would change every thread). */
    long rc = syscall(SYS_setresuid, 65534, 65534, 65534);
    show("thread_setresuid", rc);
    show("thread_open_mode0", open_close(at("mode0"), O_RDWR, 0));
    printf("thread_euid %ld\n", syscall(SYS_geteuid));
    return NULL;
}

static void per_thread(void) {
    build();
    pthread_t t;
    pthread_create(&t, NULL, raw_drop, NULL);
    pthread_join(t, NULL);
    show("main_open_mode0", open_close(at("mode0"), O_RDWR, 0));
    printf("main_euid %ld\n", syscall(SYS_geteuid));
}

/* A root that drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH is held to the mode bits. */
static void no_override(void) {
    build();
    show("before", open_close(at("mode0"), O_RDONLY, 0));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    show("capset", syscall(SYS_capset, &h, d));
    show("dropped", open_close(at("mode0"), O_RDONLY, 0));
    show("dropped_again", open_close(at("mode0"), O_RDONLY, 0));
    show("owner_still", open_close(at("rootdir/file"), O_RDWR, 0));
    d[0].effective = d[0].permitted;
    show("capset_back", syscall(SYS_capset, &h, d));
    show("restored", open_close(at("mode0"), O_RDONLY, 0));
}

/* Supplementary groups grant group access. */
static void groups(void) {
    build();
    gid_t g[1] = {4242};
    if (syscall(SYS_setgroups, 1, g) || setresgid(65534, 65534, 65534) ||
        setresuid(65534, 65534, 65534)) {
        printf("drop %s\n", strerrorname_np(errno));
        return;
    }
    show("member_read", open_close(at("group"), O_RDONLY, 0));
    show("member_write", open_close(at("group"), O_WRONLY, 0));
}

static void modes(void) {
    struct stat st;
    const mode_t masks[] = {0, 022};
    for (int i = 0; i < 2; i++) {
        umask(masks[i]);
        char name[64];
        snprintf(name, sizeof name, "f%o", masks[i]);
        close(open(at(name), O_CREAT | O_WRONLY, 0666));
        stat(at(name), &st);
        printf("open_umask%o %o\n", masks[i], st.st_mode & 07777);
        snprintf(name, sizeof name, "odd%o", masks[i]);
        close(open(at(name), O_CREAT | O_WRONLY, 0635));
        stat(at(name), &st);
        printf("open635_umask%o %o\n", masks[i], st.st_mode & 07777);
        snprintf(name, sizeof name, "d%o", masks[i]);
        mkdir(at(name), 0777);
        stat(at(name), &st);
        printf("mkdir_umask%o %o\n", masks[i], st.st_mode & 07777);
        snprintf(name, sizeof name, "dodd%o", masks[i]);
        mkdir(at(name), 0635);
        stat(at(name), &st);
        printf("mkdir635_umask%o %o\n", masks[i], st.st_mode & 07777);
        snprintf(name, sizeof name, "p%o", masks[i]);
        mknod(at(name), S_IFIFO | 0666, 0);
        stat(at(name), &st);
        printf("fifo_umask%o %o\n", masks[i], st.st_mode & 07777);
    }
}

/* Owners: chown as root to any id, fchown of a pipe. */
static void owners(void) {
    struct stat st;
    close(open(at("owned"), O_CREAT | O_WRONLY, 0644));
    show("chown_other", chown(at("owned"), 4321, 5432));
    stat(at("owned"), &st);
    printf("owner %d:%d\n", st.st_uid, st.st_gid);
    int fd = open(at("owned"), O_PATH);
    show("fchownat_empty_path", fchownat(fd, "", 1234, 1234, AT_EMPTY_PATH));
    stat(at("owned"), &st);
    printf("owner %d:%d\n", st.st_uid, st.st_gid);
    show("lchown_self", lchown(at("owned"), 0, 0));
    int p[2];
    pipe(p);
    show("fchown_pipe", fchown(p[0], 0, 0));
}

/* access(2) checks the real ids (a real root with its permitted capabilities); open, the
 * effective ones. */
static void real_access(void) {
    build();
    if (setresuid(0, 65534, 0)) {
        printf("drop %s\n", strerrorname_np(errno));
        return;
    }
    show("access_real_root", access(at("mode0"), R_OK));
    show("eaccess_nobody", faccessat(AT_FDCWD, at("mode0"), R_OK, AT_EACCESS));
    show("open_nobody", open_close(at("mode0"), O_RDONLY, 0));
}

/* A directory's search permission taken away through an fd (fchmod runs natively) holds for
 * lookups made before it. */
static void search_revoked(void) {
    build();
    mkdir(at("d"), 0755);
    close(open(at("d/f"), O_CREAT | O_WRONLY, 0644));
    int ready[2], done[2];
    pipe(ready);
    pipe(done);
    pid_t child = fork();
    if (child == 0) {
        drop_to(65534);
        show("before", open_close(at("d/f"), O_RDONLY, 0));
        write(ready[1], "x", 1);
        char c;
        read(done[0], &c, 1);
        show("after_fchmod", open_close(at("d/f"), O_RDONLY, 0));
        _exit(0);
    }
    char c;
    read(ready[0], &c, 1);
    int dfd = open(at("d"), O_RDONLY | O_DIRECTORY);
    show("fchmod", fchmod(dfd, 0700));
    write(done[1], "x", 1);
    waitpid(child, NULL, 0);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    snprintf(dir, sizeof dir, "%s", argv[2]);
    if (!strcmp(argv[1], "dropped")) dropped();
    else if (!strcmp(argv[1], "per_thread")) per_thread();
    else if (!strcmp(argv[1], "no_override")) no_override();
    else if (!strcmp(argv[1], "groups")) groups();
    else if (!strcmp(argv[1], "modes")) modes();
    else if (!strcmp(argv[1], "owners")) owners();
    else if (!strcmp(argv[1], "real_access")) real_access();
    else if (!strcmp(argv[1], "revoke")) search_revoked();
    else return 2;
    return 0;
}
