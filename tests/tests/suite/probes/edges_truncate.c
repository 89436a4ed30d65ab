/* truncate(2), which the gofer makes: inotify sees only IN_MODIFY (no open and close of its
 * own), and RLIMIT_FSIZE holds: growing past the limit is EFBIG and raises SIGXFSZ (caught
 * here: the handler counts; then ignored; then left to kill), shrinking and growing within the
 * limit are fine. argv[1]: a directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t caught;
static void on_xfsz(int sig) { caught++; }

static void r(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
    char f[256];
    snprintf(f, sizeof f, "%s/big", argv[1]);
    /* Made without an open, so no open or close event of its making can arrive late. */
    mknod(f, S_IFREG | 0644, 0);
    int in = inotify_init1(0);
    inotify_add_watch(in, f, IN_ALL_EVENTS);
    r("truncate", truncate(f, 100));
    char ev[4096] __attribute__((aligned(8)));
    ssize_t n = read(in, ev, sizeof ev);
    printf("events:");
    for (char *p = ev; p < ev + n; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len)
        printf(" %x", ((struct inotify_event *)p)->mask);
    printf("\n");
    close(in);
    struct rlimit rl = {1000, RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &rl);
    signal(SIGXFSZ, on_xfsz);
    r("grow_past", truncate(f, 5000));
    /* A signal that follows the reply may come a moment later: wait for it, never forever. */
    for (int i = 0; i < 5000 && !caught; i++) usleep(1000);
    printf("caught=%d\n", caught);
    r("grow_within", truncate(f, 1000));
    r("shrink", truncate(f, 10));
    struct stat st;
    stat(f, &st);
    printf("size=%ld\n", (long)st.st_size);
    signal(SIGXFSZ, SIG_IGN);
    r("grow_past_ignored", truncate(f, 5000));
    fflush(stdout);
    pid_t p = fork();
    if (!p) {
        signal(SIGXFSZ, SIG_DFL);
        truncate(f, 5000);
        _exit(0);
    }
    int status;
    waitpid(p, &status, 0);
    printf("default_action=%s\n", WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ ? "killed" : "survived");
    return 0;
}
