/* Signals as natively: a child stops itself and is continued; a SIGSEGV handler runs on an
 * alternate stack and makes trapped calls there; real-time signals and SIGTRAP reach handlers. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf back;
static char *alt;
static volatile int on_alt, opened, rt_seen, trap_seen, cont_seen;

static void on_segv(int sig) {
    char here;
    (void)sig;
    on_alt = &here >= alt && &here < alt + SIGSTKSZ;
    /* Trapped calls from the alternate stack: a path lookup and an fd handed in. */
    int fd = open("/etc/passwd", O_RDONLY);
    opened = fd >= 0 && getppid() >= 0;
    if (fd >= 0) close(fd);
    siglongjmp(back, 1);
}

static void on_rt(int sig) { rt_seen = sig; }
static void on_trap(int sig) { trap_seen = sig; }
static void on_cont(int sig) { cont_seen = sig; }

int main(void) {
    /* 1. stop and continue */
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        signal(SIGCONT, on_cont);
        raise(SIGSTOP);
        int fd = open("/etc/hostname", O_RDONLY);
        _exit(cont_seen == SIGCONT && fd >= 0 ? 0 : 3);
    }
    int status;
    if (waitpid(child, &status, WUNTRACED) != child || !WIFSTOPPED(status)) {
        printf("child did not stop: %#x\n", status);
        return 1;
    }
    printf("stopped by %d\n", WSTOPSIG(status));
    kill(child, SIGCONT);
    waitpid(child, &status, 0);
    printf("continued, exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* 2. SIGSEGV on an alternate stack */
    alt = malloc(SIGSTKSZ);
    stack_t ss = {.ss_sp = alt, .ss_size = SIGSTKSZ};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {.sa_handler = on_segv, .sa_flags = SA_ONSTACK};
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(back, 1) == 0) {
        *(volatile int *)8 = 1;
        printf("no fault\n");
        return 1;
    }
    printf("segv handled on_alt=%d opened=%d\n", on_alt, opened);

    /* 3. real-time signal and SIGTRAP */
    signal(SIGRTMIN + 2, on_rt);
    signal(SIGTRAP, on_trap);
    union sigval v = {.sival_int = 7};
    sigqueue(getpid(), SIGRTMIN + 2, v);
    raise(SIGTRAP);
    printf("rt=%d trap=%d\n", rt_seen == SIGRTMIN + 2, trap_seen == SIGTRAP);
    return 0;
}
