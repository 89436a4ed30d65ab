/* The guest sees no fd it did not open, and cannot reach one by number: listing, closing,
 * using, duplicating from or over, passing it in SCM_RIGHTS, and closing ranges. Fds handed in
 * keep working after. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 1021

static const char *err(long rc) { return rc < 0 ? strerrorname_np(errno) : "ok"; }

/* Sends `fd` over a socket pair in SCM_RIGHTS; whether it arrived. */
static const char *pass(int fd) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) return "socketpair";
    char byte = 0, control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec io = {&byte, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = sizeof control};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    const char *r = err(sendmsg(sp[0], &m, 0));
    if (strcmp(r, "ok") == 0) {
        m.msg_controllen = sizeof control;
        r = recvmsg(sp[1], &m, MSG_CMSG_CLOEXEC) == 1 && CMSG_FIRSTHDR(&m) ? "ok" : "lost";
        if (CMSG_FIRSTHDR(&m)) {
            int got;
            memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof got);
            close(got);
        }
    }
    close(sp[0]);
    close(sp[1]);
    return r;
}

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
    printf("pass=%s pass_own=%s\n", pass(FD), pass(0));
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
