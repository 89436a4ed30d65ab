/* Hostile-guest probes for the escape classes of issue 11. Each subcommand tries one attack end
 * to end and prints "<name> ESCAPED ..." if it got through, "<name> contained ..." otherwise. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void verdict(const char *name, int escaped, const char *detail) {
    printf("%s %s %s\n", name, escaped ? "ESCAPED" : "contained", detail);
    fflush(stdout);
}

/* A mount in the guest's own mount namespace: the sentry denies it; if it runs, the guest
 * got a call past its supervisor. */
static int try_mount(void) {
    return mount("none", "/mnt", "tmpfs", 0, "size=1m") == 0;
}

/* 1. A guest installs its own seccomp listener for mount and answers CONTINUE itself. */
static int send_fd(int sock, int fd) {
    char c = 'f';
    struct iovec iov = {&c, 1};
    char buf[CMSG_SPACE(sizeof(int))] = {0};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
                       .msg_controllen = sizeof buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    return sendmsg(sock, &m, 0);
}

static int recv_fd(int sock) {
    char c;
    struct iovec iov = {&c, 1};
    char buf[CMSG_SPACE(sizeof(int))] = {0};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
                       .msg_controllen = sizeof buf};
    if (recvmsg(sock, &m, 0) <= 0) return -1;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (!h) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

static void listener(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t child = fork();
    if (child == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mount, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {4, f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int l = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                        &prog);
        if (l < 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "seccomp(NEW_LISTENER): %s", strerror(errno));
            verdict("own-listener", 0, msg);
            send_fd(sv[1], sv[1]); /* tells the parent there is nothing to serve */
            _exit(0);
        }
        send_fd(sv[1], l);
        close(l);
        int ran = try_mount();
        verdict("own-listener", ran, ran ? "mount ran under the guest's own listener"
                                         : "mount still denied");
        _exit(0);
    }
    int l = recv_fd(sv[0]);
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    /* Serve one notification (if a listener was installed at all). */
    memset(&req, 0, sizeof req);
    if (l >= 0 && ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(l, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    waitpid(child, NULL, 0);
}

/* 2. A child the sentry would not auto-attach (CLONE_UNTRACED), traced by its guest parent,
 * which continues its seccomp stops. */
static void untraced(void) {
    pid_t child = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (child < 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "clone(CLONE_UNTRACED): %s", strerror(errno));
        verdict("untraced-child", 0, msg);
        return;
    }
    if (child == 0) {
        raise(SIGSTOP);
        int ran = try_mount();
        int shared = unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0;
        _exit(ran || shared ? 42 : 0);
    }
    int st;
    waitpid(child, &st, WUNTRACED);
    long seized = ptrace(PTRACE_SEIZE, child, 0, PTRACE_O_TRACESECCOMP);
    int seize_errno = errno;
    kill(child, SIGCONT);
    for (;;) {
        if (waitpid(child, &st, __WALL) < 0) break;
        if (WIFEXITED(st) || WIFSIGNALED(st)) break;
        if (seized == 0) ptrace(PTRACE_CONT, child, 0, 0);
    }
    char msg[96];
    snprintf(msg, sizeof msg, "seize %s; denied calls %s", seized == 0 ? "ok" : strerror(seize_errno),
             WIFEXITED(st) && WEXITSTATUS(st) == 42 ? "RAN" : "refused");
    verdict("untraced-child", WIFEXITED(st) && WEXITSTATUS(st) == 42, msg);
}

/* 3. The guest init (PID 1) and anything it holds: fds, memory, tracing. */
static void init_reach(void) {
    int escaped = 0;
    char msg[256] = "";
    if (ptrace(PTRACE_SEIZE, 1, 0, 0) == 0) {
        escaped = 1;
        strcat(msg, "ptrace(1) ok; ");
        ptrace(PTRACE_DETACH, 1, 0, 0);
    }
    int pidfd = syscall(SYS_pidfd_open, 1, 0);
    int taken = 0;
    for (int fd = 0; pidfd >= 0 && fd < 1100; fd++) {
        int got = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (got >= 0) { taken++; close(got); }
    }
    if (taken) {
        escaped = 1;
        sprintf(msg + strlen(msg), "pidfd_getfd took %d fds; ", taken);
    }
    char buf[16];
    struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
    if (syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0) >= 0 || errno == EFAULT) {
        escaped = 1;
        strcat(msg, "process_vm_readv(1) allowed; ");
    }
    int mem = open("/proc/1/mem", O_RDONLY);
    if (mem >= 0) { escaped = 1; strcat(msg, "/proc/1/mem opened; "); close(mem); }
    int env = open("/proc/1/environ", O_RDONLY);
    if (env >= 0 && read(env, buf, sizeof buf) > 0) { escaped = 1; strcat(msg, "/proc/1/environ read; "); }
    /* Listing init's fd numbers tells nothing; following one is what must fail. */
    int followed = 0;
    for (int fd = 0; fd < 1100; fd++) {
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/1/fd/%d", fd);
        int f = open(path, O_RDONLY);
        if (f >= 0) { followed++; close(f); }
        else if (readlink(path, target, sizeof target) >= 0) followed++;
    }
    if (followed) { escaped = 1; sprintf(msg + strlen(msg), "followed %d of /proc/1/fd; ", followed); }
    verdict("init-reach", escaped, escaped ? msg : "ptrace, pidfd_getfd, process_vm_readv, /proc/1 refused");
}

/* 4. What fds this process holds: every fd above 2 is listed. */
static void fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int self = dirfd(d);
    struct dirent *e;
    printf("fds");
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == self) continue;
        printf(" %d", fd);
    }
    printf("\n");
    closedir(d);
    char buf[64] = {0};
    if (read(3, buf, sizeof buf - 1) > 0) printf("fd3 says %s\n", buf);
    fflush(stdout);
}

/* 5. clone3 with flags a sibling thread flips to CLONE_NEWUSER after any check. */
static volatile uint64_t flags3;
static volatile int stop3;
static void *flip3(void *arg) {
    (void)arg;
    while (!stop3) flags3 = (flags3 ? 0 : CLONE_NEWUSER);
    return NULL;
}

static void clone3_race(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, flip3, NULL) != 0) { verdict("clone3", 1, "pthread_create failed"); return; }
    int ran = 0, enosys = 0, newns = 0;
    for (int i = 0; i < 2000; i++) {
        struct clone_args a;
        memset(&a, 0, sizeof a);
        a.flags = flags3;
        a.exit_signal = SIGCHLD;
        /* The sibling rewrites the flags in memory after the call is made. */
        volatile struct clone_args *va = &a;
        va->flags = flags3;
        long pid = syscall(SYS_clone3, &a, sizeof a);
        if (pid == 0) {
            char map[64] = {0};
            int f = open("/proc/self/uid_map", O_RDONLY);
            read(f, map, sizeof map - 1);
            /* A new user namespace starts with an empty map. */
            _exit(map[0] == 0 ? 7 : 0);
        }
        if (pid > 0) {
            int st;
            ran++;
            waitpid(pid, &st, 0);
            if (WIFEXITED(st) && WEXITSTATUS(st) == 7) newns++;
        } else if (errno == ENOSYS) {
            enosys++;
        }
    }
    stop3 = 1;
    pthread_join(t, NULL);
    char msg[96];
    snprintf(msg, sizeof msg, "%d ran, %d in a new user namespace, %d ENOSYS", ran, newns, enosys);
    verdict("clone3", newns > 0 || ran > 0, msg);
}

/* 6. Host Unix sockets: argv paths are the host's (stream, then datagram); every way of
 * reaching them must be refused, while sockets made inside keep working. */
static int unix_addr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strncpy(a->sun_path, path, sizeof a->sun_path - 1);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static void host_sockets(const char *stream_path, const char *dgram_path) {
    struct sockaddr_un a;
    char msg[256] = "";
    int escaped = 0;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (void *)&a, unix_addr(&a, stream_path)) == 0) { escaped = 1; strcat(msg, "connect; "); }
    close(s);
    /* Through a symlink planted inside the sandbox. */
    unlink("/tmp/planted.sock");
    symlink(stream_path, "/tmp/planted.sock");
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (void *)&a, unix_addr(&a, "/tmp/planted.sock")) == 0) { escaped = 1; strcat(msg, "symlink connect; "); }
    close(s);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    int len = unix_addr(&a, dgram_path);
    if (sendto(d, "x", 1, 0, (void *)&a, len) == 1) { escaped = 1; strcat(msg, "sendto; "); }
    if (connect(d, (void *)&a, len) == 0) { escaped = 1; strcat(msg, "dgram connect; "); }
    struct iovec iov = {"y", 1};
    struct msghdr m = {.msg_name = &a, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    if (sendmsg(d, &m, 0) == 1) { escaped = 1; strcat(msg, "sendmsg; "); }
    struct mmsghdr mm = {.msg_hdr = m};
    if (sendmmsg(d, &mm, 1, 0) == 1) { escaped = 1; strcat(msg, "sendmmsg; "); }
    /* The address where a 32-bit guard on the pointer would not see it. */
    void *high = mmap((void *)0x100000000UL, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (high == (void *)0x100000000UL) {
        memcpy(high, &a, sizeof a);
        if (sendto(d, "z", 1, 0, high, len) == 1) { escaped = 1; strcat(msg, "sendto from 0x100000000; "); }
    }
    close(d);
    verdict("host-sockets", escaped, escaped ? msg : "connect, sendto, sendmsg, sendmmsg refused");
}

/* 7. The fd-table race behind sendmsg: the sentry lets a sendmsg on a stream socket run natively
 * (it cannot address a path); a sibling thread dup2s a Unix datagram socket over that fd number
 * between the check and the kernel's call, so the message's host address would be used. */
static volatile int swap_stop;
static int swap_fd = 50, swap_stream, swap_dgram;
static void *swapper(void *arg) {
    (void)arg;
    while (!swap_stop) {
        dup2(swap_dgram, swap_fd);
        dup2(swap_stream, swap_fd);
    }
    return NULL;
}

static void fd_swap(const char *dgram_path) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    swap_stream = sv[0];
    swap_dgram = socket(AF_UNIX, SOCK_DGRAM, 0);
    dup2(swap_stream, swap_fd);
    struct sockaddr_un a;
    int len = unix_addr(&a, dgram_path);
    struct iovec iov = {"r", 1};
    struct msghdr m = {.msg_name = &a, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    pthread_t t;
    pthread_create(&t, NULL, swapper, NULL);
    int sent = 0, tries = 20000;
    for (int i = 0; i < tries; i++)
        if (sendmsg(swap_fd, &m, MSG_DONTWAIT) == 1) sent++;
    swap_stop = 1;
    pthread_join(t, NULL);
    /* Successes on the stream socket go to our own peer; the host counts what reached it. */
    char msg[64];
    snprintf(msg, sizeof msg, "%d sendmsg calls, %d accepted", tries, sent);
    verdict("fd-swap", 0, msg);
}

/* 8. A thread keeps a datagram queue (or a listen backlog) full, retrying every send or connect,
 * while another thread needs trapped calls served: the sentry, which makes those sends itself,
 * must never wait on the guest's peer for long, or the guest deadlocks it. */
static volatile int dl_stop;
static struct sockaddr_un dl_addr;
static int dl_len, dl_mode;
static void *dl_fill(void *arg) {
    (void)arg;
    int tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    char b[100] = {0};
    struct iovec iov = {b, sizeof b};
    struct msghdr m = {.msg_name = &dl_addr, .msg_namelen = dl_len, .msg_iov = &iov, .msg_iovlen = 1};
    while (!dl_stop) {
        if (dl_mode == 2) {
            int c = socket(AF_UNIX, SOCK_STREAM, 0);
            if (connect(c, (void *)&dl_addr, dl_len) < 0) close(c); /* kept: fills the backlog */
        } else if (dl_mode == 1) {
            sendmsg(tx, &m, 0);
        } else {
            sendto(tx, b, sizeof b, 0, (void *)&dl_addr, dl_len);
        }
    }
    return NULL;
}

static void deadlock(const char *mode) {
    dl_mode = !strcmp(mode, "connect") ? 2 : !strcmp(mode, "sendmsg") ? 1 : 0;
    dl_len = unix_addr(&dl_addr, "/tmp/deadlock.sock");
    unlink(dl_addr.sun_path);
    int rx = socket(AF_UNIX, dl_mode == 2 ? SOCK_STREAM : SOCK_DGRAM, 0);
    bind(rx, (void *)&dl_addr, dl_len);
    if (dl_mode == 2) listen(rx, 1);
    pthread_t t;
    pthread_create(&t, NULL, dl_fill, NULL);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 20; i++) {
        struct utsname u;
        uname(&u); /* trapped: needs the sentry */
    }
    printf("deadlock-free %s\n", mode);
    fflush(stdout);
    _exit(0);
}

/* 9. A TCP connect to a loopback listener whose backlog is full waits for SYN retries (minutes):
 * it must not hold the sentry while the guest's other threads need it. */
static void tcp_backlog(void) {
    struct sockaddr_in t = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t tl = sizeof t;
    bind(l, (void *)&t, sizeof t);
    getsockname(l, (void *)&t, &tl);
    listen(l, 0);
    for (int i = 0; i < 4; i++) { /* fill the backlog */
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(s, (void *)&t, sizeof t);
    }
    pid_t p = fork();
    if (p == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        connect(s, (void *)&t, sizeof t); /* blocks in SYN retries */
        _exit(0);
    }
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 20; i++) {
        struct utsname u;
        uname(&u);
    }
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    printf("tcp-backlog served\n");
    fflush(stdout);
}

/* 10. A send timeout of the guest's own is honoured: EAGAIN once it passes, as in Linux. */
static void sndtimeo(void) {
    struct sockaddr_un a;
    int len = unix_addr(&a, "/tmp/sndtimeo.sock");
    unlink(a.sun_path);
    int rx = socket(AF_UNIX, SOCK_DGRAM, 0), tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(rx, (void *)&a, len);
    char b[100] = {0};
    while (sendto(tx, b, sizeof b, MSG_DONTWAIT, (void *)&a, len) >= 0) {
    }
    struct timeval tv = {0, 200 * 1000};
    setsockopt(tx, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    long r = sendto(tx, b, sizeof b, 0, (void *)&a, len);
    printf("sndtimeo %ld %s\n", r, strerrorname_np(errno));
    fflush(stdout);
}

static void *accept_one(void *arg) {
    int l = *(int *)arg, c = accept(l, NULL, NULL);
    if (c < 0) return NULL;
    char b[8] = {0};
    read(c, b, sizeof b - 1);
    write(c, "pong", 4);
    close(c);
    return NULL;
}

static void inside_sockets(void) {
    struct sockaddr_un a;
    int ok = 1;
    char msg[256] = "";
    unlink("/tmp/srv.sock");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (void *)&a, unix_addr(&a, "/tmp/srv.sock")) || listen(l, 4)) { ok = 0; strcat(msg, "bind; "); }
    /* A connect that fails must end in a report, not in an accept that waits forever. */
    struct timeval tv = {10, 0};
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_t t;
    pthread_create(&t, NULL, accept_one, &l);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    char b[8] = {0};
    if (connect(c, (void *)&a, unix_addr(&a, "/tmp/srv.sock")) || write(c, "ping", 4) != 4 ||
        read(c, b, 4) != 4 || strcmp(b, "pong")) { ok = 0; strcat(msg, "stream; "); }
    pthread_join(t, NULL);
    close(c);
    /* Relative to the working directory, and through a symlink made inside. */
    chdir("/tmp");
    unlink("/tmp/rel.sock");
    symlink("/tmp/srv.sock", "/tmp/rel.sock");
    pthread_create(&t, NULL, accept_one, &l);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (void *)&a, unix_addr(&a, "rel.sock")) || write(c, "ping", 4) != 4 ||
        read(c, b, 4) != 4) { ok = 0; strcat(msg, "relative+symlink; "); }
    pthread_join(t, NULL);
    close(c);
    close(l);
    unlink("/tmp/d.sock");
    int d = socket(AF_UNIX, SOCK_DGRAM, 0), e = socket(AF_UNIX, SOCK_DGRAM, 0);
    int len = unix_addr(&a, "/tmp/d.sock");
    bind(d, (void *)&a, len);
    struct iovec iov = {"m", 1};
    struct msghdr m = {.msg_name = &a, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    if (sendto(e, "s", 1, 0, (void *)&a, len) != 1 || sendmsg(e, &m, 0) != 1) { ok = 0; strcat(msg, "dgram; "); }
    char got[4] = {0};
    if (recv(d, got, 1, 0) != 1 || recv(d, got + 1, 1, 0) != 1 || strcmp(got, "sm")) { ok = 0; strcat(msg, "dgram recv; "); }
    /* Abstract sockets live in the sandbox's own network namespace. */
    int ab = socket(AF_UNIX, SOCK_DGRAM, 0), ac = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un aa = {.sun_family = AF_UNIX};
    memcpy(aa.sun_path, "\0rvisor-test-abstract", 21);
    int alen = offsetof(struct sockaddr_un, sun_path) + 21;
    if (bind(ab, (void *)&aa, alen) || connect(ac, (void *)&aa, alen) || send(ac, "a", 1, 0) != 1 ||
        recv(ab, got, 1, 0) != 1) { ok = 0; strcat(msg, "abstract; "); }
    printf("inside-sockets %s %s\n", ok ? "work" : "BROKEN", msg);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *what = argv[1];
    if (!strcmp(what, "listener")) listener();
    else if (!strcmp(what, "untraced")) untraced();
    else if (!strcmp(what, "init")) init_reach();
    else if (!strcmp(what, "fds")) fds();
    else if (!strcmp(what, "clone3")) clone3_race();
    else if (!strcmp(what, "host-sockets") && argc == 4) host_sockets(argv[2], argv[3]);
    else if (!strcmp(what, "inside-sockets")) inside_sockets();
    else if (!strcmp(what, "deadlock") && argc == 3) deadlock(argv[2]);
    else if (!strcmp(what, "tcp-backlog")) tcp_backlog();
    else if (!strcmp(what, "sndtimeo")) sndtimeo();
    else if (!strcmp(what, "fd-swap") && argc == 3) fd_swap(argv[2]);
    else return 2;
    return 0;
}
