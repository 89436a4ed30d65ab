/* A SysV shared memory segment, to show two containers share an IPC namespace:
 * `shm create KEY TEXT` makes one holding TEXT (it outlives the process), `shm read KEY` prints
 * it, `shm remove KEY` removes it. busybox has no ipcs or ipcmk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
    int create = argc == 4 && strcmp(argv[1], "create") == 0;
    int remove = argc == 3 && strcmp(argv[1], "remove") == 0;
    if (!create && !remove && !(argc == 3 && strcmp(argv[1], "read") == 0)) {
        fprintf(stderr, "usage: shm create KEY TEXT | shm read KEY | shm remove KEY\n");
        return 2;
    }
    key_t key = (key_t)strtol(argv[2], NULL, 0);
    int id = shmget(key, 4096, create ? IPC_CREAT | IPC_EXCL | 0600 : 0);
    if (id < 0) {
        perror("shmget");
        return 1;
    }
    if (remove)
        return shmctl(id, IPC_RMID, NULL) == 0 ? 0 : 1;
    char *p = shmat(id, NULL, 0);
    if (p == (void *)-1) {
        perror("shmat");
        return 1;
    }
    if (create)
        strncpy(p, argv[3], 4095);
    else
        printf("%s\n", p);
    return 0;
}
