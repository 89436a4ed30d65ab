/* After a guest closes the fd an open gave it, the file must be closed as far as Linux can
 * tell: no writer left (a read lease is granted, exec of it works), no flock lock left.
 * Each mode repeats the sequence and counts the times it found the file still held.
 * Usage: last_close lease|flock|exec N DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[4096];

static void die(const char *what) {
    printf("%s: %s\n", what, strerror(errno));
    exit(2);
}

/* Written through one fd, closed, then a read lease: EAGAIN while a writer is left. */
static int lease_once(void) {
    int w = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w < 0 || write(w, "x", 1) != 1) die("write");
    close(w);
    int r = open(path, O_RDONLY);
    if (r < 0) die("open");
    int held = 0;
    if (fcntl(r, F_SETLEASE, F_RDLCK) < 0) {
        if (errno != EAGAIN) die("F_SETLEASE");
        held = 1;
    } else if (fcntl(r, F_SETLEASE, F_UNLCK) < 0) {
        die("F_UNLCK");
    }
    close(r);
    return held;
}

/* Locked through one open, closed, then locked again through another: the first lock went
 * with its open file description unless someone else still holds that. */
static int flock_once(void) {
    int a = open(path, O_RDONLY | O_CREAT, 0644);
    if (a < 0 || flock(a, LOCK_EX) < 0) die("flock");
    close(a);
    int b = open(path, O_RDONLY);
    if (b < 0) die("open");
    int held = 0;
    if (flock(b, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) die("flock again");
        held = 1;
    }
    close(b);
    return held;
}

/* A copy of this program, written and closed, then run at once by the same process: ETXTBSY
 * while a writer is left. */
static int exec_once(void) {
    pid_t pid = fork();
    if (pid == 0) {
        int src = open("/proc/self/exe", O_RDONLY);
        int dst = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (src < 0 || dst < 0) _exit(4);
        char buf[65536];
        ssize_t n;
        while ((n = read(src, buf, sizeof buf)) > 0)
            if (write(dst, buf, n) != n) _exit(4);
        close(src);
        close(dst);
        execl(path, "last_close", "true", (char *)NULL);
        _exit(errno == ETXTBSY ? 3 : 4);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3)) {
        printf("child: status %d\n", st);
        exit(2);
    }
    return WEXITSTATUS(st) == 3;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "true") == 0) return 0;
    if (argc != 4) {
        fprintf(stderr, "usage: last_close lease|flock|exec N DIR\n");
        return 2;
    }
    int (*once)(void) = strcmp(argv[1], "lease") == 0   ? lease_once
                        : strcmp(argv[1], "flock") == 0 ? flock_once
                        : strcmp(argv[1], "exec") == 0  ? exec_once
                                                        : NULL;
    if (!once) return 2;
    int n = atoi(argv[2]);
    snprintf(path, sizeof path, "%s/%s", argv[3], argv[1]);
    int held = 0;
    for (int i = 0; i < n; i++) held += once();
    printf("%s held=%d of %d\n", argv[1], held, n);
    return 0;
}
