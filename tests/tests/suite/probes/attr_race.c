/* A guest that holds a host directory, received over the socket handed in as fd 3, and races
 * the sentry's reading of a path: one thread keeps rewriting a path buffer between a file of the
 * guest's own /dev/shm (or an empty path) and a name beneath the received directory, while the
 * other changes attributes through that buffer. The host checks afterwards that nothing beneath
 * its directory changed.
 *
 * Usage: attr_race N   (N calls per kind). Prints "<kind> ok=<successes> of N" per kind, and
 * "shm mode=<octal>" (the benign file, to show the calls really ran).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static char buf[128];
static char benign[64], evil[64];
static atomic_int stop;

static void *flip(void *arg) {
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* Byte by byte with plain stores: the sentry may read any mix, and does not care. */
        strcpy(buf, evil);
        strcpy(buf, benign);
    }
    return NULL;
}

static int receive_dir(void) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.space,
        .msg_controllen = sizeof control.space,
    };
    if (recvmsg(3, &msg, 0) != 1) {
        perror("recvmsg");
        exit(1);
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) {
        fprintf(stderr, "no fd received\n");
        exit(1);
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static int call(const char *kind, int dir) {
    struct timespec times[2] = {{1, 0}, {1, 0}};
    if (!strcmp(kind, "chmod"))
        return syscall(SYS_fchmodat, AT_FDCWD, buf, 04777);
    if (!strcmp(kind, "chown"))
        return syscall(SYS_fchownat, AT_FDCWD, buf, 1234, 1234, 0);
    if (!strcmp(kind, "lchown"))
        return syscall(SYS_fchownat, AT_FDCWD, buf, 1234, 1234, AT_SYMLINK_NOFOLLOW);
    if (!strcmp(kind, "utimes"))
        return syscall(SYS_utimensat, AT_FDCWD, buf, times, 0);
    if (!strcmp(kind, "setxattr"))
        return syscall(SYS_setxattr, buf, "user.rvisor", "x", 1, 0);
    if (!strcmp(kind, "removexattr"))
        return syscall(SYS_removexattr, buf, "user.kept");
    if (!strcmp(kind, "empty-chown"))
        return syscall(SYS_fchownat, dir, buf, 1234, 1234, AT_EMPTY_PATH);
    if (!strcmp(kind, "empty-utimes"))
        return syscall(SYS_utimensat, dir, buf, times, AT_EMPTY_PATH);
    fprintf(stderr, "unknown kind %s\n", kind);
    exit(2);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int dir = receive_dir();
    int shm = open("/dev/shm/benign", O_CREAT | O_WRONLY, 0644);
    if (shm < 0) {
        perror("/dev/shm/benign");
        return 1;
    }
    close(shm);
    if (setxattr("/dev/shm/benign", "user.kept", "1", 1, 0) != 0 && errno != ENOTSUP)
        perror("setxattr /dev/shm/benign");
    const char *kinds[] = {"chmod", "chown", "lchown", "utimes", "setxattr", "removexattr",
                           "empty-chown", "empty-utimes"};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        const char *kind = kinds[k];
        int empty = !strncmp(kind, "empty-", 6);
        snprintf(benign, sizeof benign, "%s", empty ? "" : "/dev/shm/benign");
        snprintf(evil, sizeof evil, empty ? "target" : "/proc/self/fd/%d/target", dir);
        strcpy(buf, benign);
        atomic_store(&stop, 0);
        pthread_t t;
        pthread_create(&t, NULL, flip, NULL);
        int ok = 0;
        for (int i = 0; i < n; i++)
            if (call(kind, dir) == 0)
                ok++;
        atomic_store(&stop, 1);
        pthread_join(t, NULL);
        printf("%s ok=%d of %d\n", kind, ok, n);
    }
    struct stat st;
    if (stat("/dev/shm/benign", &st) == 0)
        printf("shm mode=%o\n", st.st_mode & 07777);
    return 0;
}
