/* Races a hostile guest runs against the sentry's record of its credentials. Each leaves a
 * thread that dropped its privileges trying root-only changes, which must fail as natively.
 * argv[1]:
 *   exec DIR      - the leader stays root and keeps making trapped calls. Thread A drops to uid
 *                   1000 and execs `argv[0] payload` with 200,000 arguments, so the kernel takes
 *                   long over the exec; meanwhile thread B keeps exec'ing DIR/garbage (an
 *                   executable the kernel refuses with ENOEXEC) and calling again. The payload
 *                   prints what its root-only changes got.
 *   signal N M DIR - N attempts, each in a new child: a thread loops on a trapped open while
 *                   another signals it at a random moment; the handler drops the uid (M=0) or
 *                   every capability (M=1, its data on a page the copy must fault in); then the
 *                   thread tries root-only changes. Prints "escalated K/N".
 *   payload       - (the exec's new image) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *dir;

static int payload(void) {
    char path[64];
    snprintf(path, sizeof path, "/etc/cred-race-%d", getpid());
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    int open_errno = errno;
    int chowned = chown("/etc/hostname", 1000, 1000);
    int chown_errno = errno;
    printf("payload euid=%d open=%s chown=%s\n", (int)geteuid(),
           fd >= 0 ? "OK" : strerrorname_np(open_errno),
           chowned == 0 ? "OK" : strerrorname_np(chown_errno));
    return 0;
}

/* ---- exec: a second thread's exec must not end the first one's ---- */

static atomic_int dropped_and_going, b_called;
static char **huge_argv;

static void *drop_and_exec(void *self) {
    /* Raw calls: only this thread changes (glibc would change every thread). */
    if (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresgid, 1000, 1000, 1000) ||
        syscall(SYS_setresuid, 1000, 1000, 1000)) {
        perror("drop");
        exit(1);
    }
    atomic_store(&dropped_and_going, 1);
    char *envp[] = {NULL};
    syscall(SYS_execve, (char *)self, huge_argv, envp);
    perror("exec payload");
    exit(2);
}

static void *exec_garbage(void *unused) {
    char garbage[256];
    snprintf(garbage, sizeof garbage, "%s/garbage", dir);
    char *argv[] = {"garbage", NULL}, *envp[] = {NULL};
    while (!atomic_load(&dropped_and_going))
        ;
    usleep(1000);
    for (;;) {
        syscall(SYS_execve, garbage, argv, envp);
        int fd = open("/tmp/b", O_CREAT | O_WRONLY, 0644);
        if (fd >= 0) close(fd);
        atomic_store(&b_called, 1);
    }
    return unused;
}

static int exec_race(const char *self) {
    const long n = 200000;
    huge_argv = calloc(n + 1, sizeof(char *));
    huge_argv[0] = (char *)self;
    huge_argv[1] = "payload";
    for (long i = 2; i < n; i++) huge_argv[i] = "";
    pthread_t a, b;
    pthread_create(&a, NULL, drop_and_exec, (void *)self);
    pthread_create(&b, NULL, exec_garbage, NULL);
    while (!atomic_load(&b_called))
        ;
    for (;;) {
        int fd = open("/tmp/leader", O_CREAT | O_WRONLY, 0644);
        if (fd >= 0) close(fd);
    }
}

/* ---- signal: a handler's set*id or capset must outlive the call it interrupted ---- */

static volatile sig_atomic_t dropped;
static int mode, victim;
static struct __user_cap_data_struct *no_caps;

static void drop_in_handler(int sig) {
    (void)sig;
    if (mode == 0) {
        syscall(SYS_setresuid, 1000, 1000, 1000);
    } else {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        syscall(SYS_capset, &h, no_caps);
    }
    dropped = 1;
}

static void *signal_soon(void *unused) {
    struct timespec t = {0, (rand() % 200) * 1000L};
    nanosleep(&t, NULL);
    syscall(SYS_tgkill, getpid(), victim, SIGUSR1);
    return unused;
}

static int attempt(int i) {
    srand(i * 7919 + getpid());
    victim = gettid();
    if (mode == 1) {
        /* All zero: no capability left. A private mapping of a file whose pages were dropped
         * from the cache, so capset's copy of it faults and the call takes longer. */
        char path[256];
        snprintf(path, sizeof path, "%s/zeros", dir);
        int fd = open(path, O_RDONLY);
        char *map = mmap(NULL, 4096 * 64, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) return 2;
        no_caps = (void *)(map + 4096 * 40);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    struct sigaction sa = {0};
    sa.sa_handler = drop_in_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, signal_soon, NULL);
    while (!dropped) {
        int fd = open("/etc/hostname", O_WRONLY);
        if (fd >= 0) close(fd);
    }
    pthread_join(t, NULL);
    char path[64];
    snprintf(path, sizeof path, "/etc/cred-race-%d-%d", mode, i);
    /* Uid 1000 may create nothing in /etc; uid 0 without capabilities may not give a file
     * away. */
    int fd = mode == 0 ? open(path, O_CREAT | O_WRONLY, 0644) : -1;
    int chowned = chown("/etc/hostname", 2000 + i, 2000 + i);
    return fd >= 0 || chowned == 0;
}

static int signal_race(int n) {
    int escalated = 0;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) _exit(attempt(i));
        int status;
        waitpid(p, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 1) escalated++;
    }
    printf("escalated %d/%d\n", escalated, n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "payload")) return payload();
    if (argc == 3 && !strcmp(argv[1], "exec")) {
        dir = argv[2];
        return exec_race(argv[0]);
    }
    if (argc == 5 && !strcmp(argv[1], "signal")) {
        mode = atoi(argv[3]);
        dir = argv[4];
        return signal_race(atoi(argv[2]));
    }
    fprintf(stderr, "usage: %s exec DIR | signal N MODE DIR\n", argv[0]);
    return 2;
}
