/* A send the sentry makes for the guest waits at most a second, whatever send timeout the
 * guest set: a full Unix datagram queue and an hour's SO_SNDTIMEO once held a worker (on ptrace,
 * the one tracer) for the hour. Linux would wait the hour; the sandbox ends the call with EINTR,
 * as a signal would, and goes on serving. Then: Linux AIO, which names fds in memory,
 * is refused on ptrace (io_setup ENOSYS), where one shared socket carries the guest's new fds. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

int main(void) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) < 0) return 2;
    char byte = 0;
    while (send(sp[0], &byte, 1, MSG_DONTWAIT) == 1) {}
    struct timeval hour = {3600, 0};
    setsockopt(sp[0], SOL_SOCKET, SO_SNDTIMEO, &hour, sizeof hour);
    struct iovec io = {&byte, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    long rc = sendmsg(sp[0], &m, 0);
    printf("full_queue_send=%s\n", rc < 0 ? strerrorname_np(errno) : "sent");
    aio_context_t ctx = 0;
    rc = syscall(SYS_io_setup, 8, &ctx);
    printf("io_setup=%s\n", rc < 0 ? strerrorname_np(errno) : "ok");
    return 0;
}
