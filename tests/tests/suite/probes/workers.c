/* Several sentry workers serving at once: threads whose trapped calls overlap each get their own
 * answer (a reply meant for another thread would show as a wrong tid), and callers killed in the
 * middle of their calls leave the others served. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define CALLS 20000
#define CHILDREN 4
#define KILLED 2

static pid_t parent;

static void *work(void *arg) {
    long bad = 0;
    long tid = syscall(SYS_gettid);
    for (int i = 0; i < CALLS; i++) {
        if (syscall(SYS_gettid) != tid || getppid() != parent) bad++;
    }
    (void)arg;
    return (void *)bad;
}

/* Calls until killed, or CALLS times; exits 0 if every answer was right. */
static void child(int forever) {
    pid_t me = getpid();
    pid_t up = getppid();
    long bad = 0;
    for (int i = 0; forever || i < CALLS; i++) {
        if (getppid() != up || syscall(SYS_gettid) != me) bad++;
    }
    _exit(bad != 0);
}

int main(void) {
    parent = getppid();
    pid_t kids[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        kids[i] = fork();
        if (kids[i] == 0) child(i < KILLED);
    }
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, NULL);
    /* The looping children are in or near a trapped call at any moment. */
    usleep(20000);
    for (int i = 0; i < KILLED; i++) kill(kids[i], SIGKILL);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    int killed = 0, ok = 0;
    for (int i = 0; i < CHILDREN; i++) {
        int status;
        if (waitpid(kids[i], &status, 0) != kids[i]) continue;
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) killed++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
    }
    /* And after the kills, every thread of a fresh round is still answered. */
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    printf("threads=%d bad=%ld killed=%d children_ok=%d\n", THREADS, bad, killed, ok);
    return 0;
}
