/* Refused calls report their argument errors first: io_uring_setup's parameters, mount's
 * filesystem type and mount point, umount2's flags and target. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/io_uring.h>

static void r(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

static long setup(unsigned entries, unsigned flags, unsigned resv) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = flags;
    p.resv[0] = resv;
    return syscall(SYS_io_uring_setup, entries, &p);
}

int main(void) {
    r("uring_resv", setup(4, 0, 1));
    r("uring_no_entries", setup(0, 0, 0));
    r("uring_bad_flags", setup(4, 1u << 30, 0));
    r("uring_too_many", setup(1 << 20, 0, 0));
    r("uring_fault", syscall(SYS_io_uring_setup, 4, (void *)8));
    r("mount_unknown_type", mount("none", "/tmp", "nosuchfs", 0, 0));
    r("mount_no_type", mount("none", "/tmp", NULL, 0, 0));
    r("mount_missing_target", mount("none", "/tmp/missing", "tmpfs", 0, 0));
    r("mount_nouser", mount("none", "/tmp", "tmpfs", MS_NOUSER, 0));
    r("umount_bad_flags", umount2("/tmp", 0x100));
    r("umount_missing", umount2("/tmp/missing", 0));
    return 0;
}
