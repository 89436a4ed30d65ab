/* The guest sees no fd it did not open, and cannot reach one by number: listing, closing,
 * using, duplicating from or over, and closing ranges. Fds handed in keep working after. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 1021

static const char *err(long rc) { return rc < 0 ? strerrorname_np(errno) : "ok"; }

int main(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    printf("listed:");
    while ((e = readdir(d))) if (e->d_name[0] != '.') printf(" %s", e->d_name);
    printf("\n");
    closedir(d);
    printf("getfd=%s\n", err(fcntl(FD, F_GETFD)));
    printf("write=%s\n", err(write(FD, "x", 1)));
    printf("close=%s\n", err(close(FD)));
    int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    printf("pidfd_getfd=%s\n", err(syscall(SYS_pidfd_getfd, pidfd, FD, 0)));
    close(pidfd);
    printf("dup2=%s\n", err(dup2(1, FD)));
    printf("close_range=%s\n", err(syscall(SYS_close_range, 3, ~0U, 0)));
    int fd = open("/etc/passwd", O_RDONLY);
    char c;
    printf("open_after=%d read=%zd\n", fd, read(fd, &c, 1));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        execl("/bin/sh", "sh", "-c", "exec 3</etc/hostname && read x <&3 && echo exec_open=ok", NULL);
        _exit(127);
    }
    int status;
    waitpid(child, &status, 0);
    return 0;
}
