/* An exec from a non-leader thread while the leader makes trapped calls (the exec hands the
 * leader's tid to the exec'ing thread). argv[1]:
 *   plain  - the thread execs `argv[0] done`, which prints "done".
 *   drop   - the thread first drops to 65534 (raw calls: that thread only) while the root leader
 *            keeps opening argv[2]; the new image tries to read argv[2] and prints the result. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char **args;
static int drop;

static void *execer(void *unused) {
    (void)unused;
    if (drop && (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresgid, 65534, 65534, 65534) ||
                 syscall(SYS_setresuid, 65534, 65534, 65534))) {
        perror("drop");
        _exit(2);
    }
    usleep(1000);
    char *argv[] = {args[0], "done", args[2], NULL};
    execv("/proc/self/exe", argv);
    perror("execv");
    _exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    if (!strcmp(argv[1], "done")) {
        int fd = open(argv[2], O_RDONLY);
        printf("done euid=%d open=%s\n", geteuid(), fd < 0 ? strerrorname_np(errno) : "OK");
        return 0;
    }
    args = argv;
    drop = !strcmp(argv[1], "drop");
    pthread_t t;
    pthread_create(&t, NULL, execer, NULL);
    for (;;) {
        struct stat st;
        stat(argv[2], &st);
        int fd = open(argv[2], O_RDONLY);
        if (fd >= 0) close(fd);
    }
}
