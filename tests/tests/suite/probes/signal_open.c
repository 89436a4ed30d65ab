/* One thread creates files with O_CREAT|O_EXCL, each under a new name, while another sends it
 * a handled SA_RESTART signal without pause. Natively every open succeeds once and leaves one
 * fd, which is closed. A restarted open that the sandbox had half done would fail with EEXIST
 * (the first attempt created the file) or leave an fd behind (installed, never returned).
 * Usage: signal_open DIR N */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile pid_t opener;
static volatile int stop;

static void on_signal(int sig) { (void)sig; }

static void *hammer(void *arg) {
    (void)arg;
    while (!opener) {}
    while (!stop) syscall(SYS_tgkill, getpid(), opener, SIGUSR1);
    return NULL;
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[2]);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    int before = open_fds();
    pthread_t t;
    pthread_create(&t, NULL, hammer, NULL);
    opener = syscall(SYS_gettid);
    int failed = 0, last = 0;
    char path[4096];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%d", argv[1], i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            failed++;
            last = errno;
        } else {
            close(fd);
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("failed=%d (last errno %d) left=%d\n", failed, last, open_fds() - before);
    return 0;
}
