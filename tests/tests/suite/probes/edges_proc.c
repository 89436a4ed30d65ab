/* Writes Linux allows in /proc that the guest's read-only procfs refused: another thread's
 * comm (pthread_setname_np), our own comm, /proc/self/mem; and what unlink, rmdir and rename
 * answer there and in /sys (the errnos of writable mounts, not EROFS). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void r(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

static volatile int stop;
static volatile pid_t worker_tid;
static void *worker(void *arg) {
    worker_tid = gettid();
    while (!stop) usleep(1000);
    return 0;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    while (!worker_tid) usleep(1000);
    int rc = pthread_setname_np(t, "worker");
    r("setname_np", rc ? (errno = rc, -1) : 0);
    char path[128], buf[32] = {0};
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", worker_tid);
    int fd = open(path, O_RDONLY);
    read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("comm=%s", buf);
    fd = open("/proc/self/comm", O_WRONLY | O_TRUNC);
    r("self_comm", write(fd, "renamed", 7));
    close(fd);
    static char target[8] = "before";
    fd = open("/proc/self/mem", O_RDWR);
    r("mem", pwrite(fd, "after", 6, (off_t)(unsigned long)target));
    close(fd);
    printf("target=%s\n", target);
    snprintf(path, sizeof path, "/proc/self/task/%d", worker_tid);
    r("rmdir_task", rmdir(path));
    r("unlink_task", unlink(path));
    r("rmdir_self", rmdir("/proc/self"));
    r("rmdir_comm", rmdir("/proc/self/comm"));
    r("unlink_version", unlink("/proc/version"));
    r("rmdir_version", rmdir("/proc/version"));
    r("unlink_sysctl", unlink("/proc/sys/kernel/hostname"));
    r("unlink_missing", unlink("/proc/self/missing"));
    r("rmdir_sys_dir", rmdir("/sys/kernel/mm"));
    r("unlink_sys_dir", unlink("/sys/kernel/mm"));
    r("rename_sys_onto_itself", rename("/sys/kernel/mm", "/sys/kernel/mm"));
    r("rename_proc_onto_itself", rename("/proc/self/comm", "/proc/self/comm"));
    r("rename_missing_onto_itself", rename("/sys/kernel/missing", "/sys/kernel/missing"));
    stop = 1;
    pthread_join(t, 0);
    return 0;
}
