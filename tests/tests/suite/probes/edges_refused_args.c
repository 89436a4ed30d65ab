/* More refused calls that report their argument errors first: chroot, pivot_root, setns,
 * umount2 of what is no mount, swapoff, acct, reboot, bpf, perf_event_open, userfaultfd and
 * io_uring_enter/register. Run from a scratch directory (argv[1]). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <unistd.h>

static void r(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) < 0) return 2;
    close(open("file", O_WRONLY | O_CREAT, 0644));
    mkdir("dir", 0755);
    r("chroot_missing", chroot("missing"));
    r("chroot_file", chroot("file"));
    r("pivot_root_missing", syscall(SYS_pivot_root, "missing", "missing"));
    r("setns_bad_fd", setns(9999, 0));
    int d = open(".", O_RDONLY);
    r("setns_not_ns", setns(d, 0));
    int ns = open("/proc/self/ns/uts", O_RDONLY);
    r("setns_wrong_type", setns(ns, CLONE_NEWNET));
    r("umount_not_mount", umount2("dir", 0));
    r("umount_expire_force", umount2("dir", MNT_EXPIRE | MNT_FORCE));
    r("swapoff_missing", swapoff("missing"));
    r("acct_missing", acct("missing"));
    r("reboot_bad_magic", syscall(SYS_reboot, 1, 2, 0, NULL));
    r("bpf_bad_command", syscall(SYS_bpf, 9999, NULL, 0));
    r("perf_fault", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    r("userfaultfd_bad_flags", syscall(SYS_userfaultfd, 0x80000000));
    r("uring_enter_bad_fd", syscall(SYS_io_uring_enter, 9999, 0, 0, 0, NULL, 0));
    r("uring_register_bad_fd", syscall(SYS_io_uring_register, 9999, 0, NULL, 0));
    r("uring_enter_not_ring", syscall(SYS_io_uring_enter, d, 0, 0, 0, NULL, 0));
    return 0;
}
