/* Many threads making trapped calls at once: ids, paths and fds handed in all stay right. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREADS 64
#define ROUNDS 100

static void *work(void *arg) {
    long bad = 0;
    pid_t parent = getppid();
    for (int i = 0; i < ROUNDS; i++) {
        struct stat st;
        int fd = open("/etc/passwd", O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) bad++;
        char c;
        if (fd >= 0 && read(fd, &c, 1) != 1) bad++;
        if (fd >= 0) close(fd);
        if (getppid() != parent || stat("/etc", &st) != 0 || !S_ISDIR(st.st_mode)) bad++;
    }
    (void)arg;
    return (void *)bad;
}

int main(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, NULL);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    printf("threads=%d bad=%ld\n", THREADS, bad);
    return bad != 0;
}
