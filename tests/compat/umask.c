/* The file creation mask (compat item 4): the modes that open(O_CREAT), creat, mkdir, mknod
 * (FIFO), mkfifo, symlink, bind of a Unix socket and O_TMPFILE give under umask 0, 022 and 077,
 * for requested modes 0666 and 0635 (and set-id and sticky bits); a setgid directory's
 * inheritance; the umask a program starts with. */
#include "compat.h"

#include <sys/socket.h>
#include <sys/un.h>

static int counter;

/* A fresh name for one creation. */
static const char *name(const char *what) {
    static char b[64];
    snprintf(b, sizeof b, "%s-%d-%d", what, (int)getpid(), counter++);
    return b;
}

static const char *via_open(mode_t mode) {
    const char *n = name("open");
    int fd = open(n, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) return rv(-1);
    close(fd);
    return mode_of(n);
}

static const char *via_creat(mode_t mode) {
    const char *n = name("creat");
    int fd = creat(n, mode);
    if (fd < 0) return rv(-1);
    close(fd);
    return mode_of(n);
}

static const char *via_openat_tmpfile(mode_t mode) {
    static char b[64];
    int fd = open(".", O_WRONLY | O_TMPFILE, mode);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) return rv(-1);
    close(fd);
    snprintf(b, sizeof b, "%04o", st.st_mode & 07777);
    return b;
}

static const char *via_mkdir(mode_t mode) {
    const char *n = name("dir");
    if (mkdir(n, mode) < 0) return rv(-1);
    return mode_of(n);
}

static const char *via_mknod_fifo(mode_t mode) {
    static char b[64];
    const char *n = name("fifo");
    struct stat st;
    if (mknod(n, S_IFIFO | mode, 0) < 0) return rv(-1);
    if (lstat(n, &st) < 0) return rv(-1);
    snprintf(b, sizeof b, "%s%04o", S_ISFIFO(st.st_mode) ? "fifo:" : "notfifo:", st.st_mode & 07777);
    return b;
}

static const char *via_mknod_reg(mode_t mode) {
    const char *n = name("reg");
    if (mknod(n, S_IFREG | mode, 0) < 0) return rv(-1);
    return mode_of(n);
}

static const char *via_mkfifo(mode_t mode) {
    const char *n = name("mkfifo");
    if (mkfifo(n, mode) < 0) return rv(-1);
    return mode_of(n);
}

static const char *via_symlink(void) {
    const char *n = name("symlink");
    if (symlink("target", n) < 0) return rv(-1);
    return mode_of(n);
}

static const char *via_bind(void) {
    const char *n = name("sock");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) return rv(-1);
    snprintf(a.sun_path, sizeof a.sun_path, "%s", n);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return rv(-1);
    close(s);
    return mode_of(n);
}

/* Every creation under `mask` for `mode`. */
static void all_under(mode_t mask, mode_t mode) {
    umask(mask);
    result("open=%s", via_open(mode));
    append("creat=%s", via_creat(mode));
    append("tmpfile=%s", via_openat_tmpfile(mode));
    append("mkdir=%s", via_mkdir(mode));
    append("mknod=%s", via_mknod_fifo(mode));
    append("mknod_reg=%s", via_mknod_reg(mode));
    append("mkfifo=%s", via_mkfifo(mode));
    append("symlink=%s", via_symlink());
    append("bind=%s", via_bind());
}

static void umask0_mode0666(void) { all_under(0, 0666); }
static void umask0_mode0635(void) { all_under(0, 0635); }
static void umask0_mode0777(void) { all_under(0, 0777); }
static void umask022_mode0666(void) { all_under(022, 0666); }
static void umask022_mode0635(void) { all_under(022, 0635); }
static void umask022_mode0777(void) { all_under(022, 0777); }
static void umask077_mode0666(void) { all_under(077, 0666); }
static void umask027_mode0635(void) { all_under(027, 0635); }

static void umask0_setid_bits(void) {
    umask(0);
    result("open=%s", via_open(07777));
    append("mkdir=%s", via_mkdir(07777));
    append("mknod=%s", via_mknod_fifo(07777));
}

static void umask022_setid_bits(void) {
    umask(022);
    result("open=%s", via_open(07777));
    append("mkdir=%s", via_mkdir(07777));
}

static void umask_returns_previous(void) {
    mode_t a = umask(0123);
    mode_t b = umask(0777 | 07000);
    mode_t c = umask(022);
    result("after_0123=%04o after_7777=%04o", b, c);
    (void)a;
}

static void umask_initial(void) {
    mode_t m = umask(0);
    umask(m);
    result("%04o", m);
}

static void umask_in_proc_status(void) {
    umask(0057);
    result("Umask=%s", status_field("/proc/self/status", "Umask"));
}

static void umask_not_applied_to_chmod(void) {
    umask(077);
    const char *n = name("chmod");
    make_file(n, "x", 0600);
    umask(077);
    int r = chmod(n, 0757);
    result("%s mode=%s", rv(r), mode_of(n));
}

static void umask_existing_file_keeps_mode(void) {
    umask(0);
    const char *n = name("existing");
    make_file(n, "x", 0640);
    int fd = open(n, O_WRONLY | O_CREAT, 0777);
    result("%s mode=%s", rv(fd), mode_of(n));
}

static void setgid_dir_inheritance(void) {
    umask(0);
    make_dir("sgid", 02777);
    result("dir=%s", mode_of("sgid"));
    int fd = open("sgid/file", O_WRONLY | O_CREAT, 02755);
    append("file=%s", fd < 0 ? rv(-1) : mode_of("sgid/file"));
    append("sub=%s", mkdir("sgid/sub", 0755) < 0 ? rv(-1) : mode_of("sgid/sub"));
    append("fifo=%s", mknod("sgid/fifo", S_IFIFO | 0644, 0) < 0 ? rv(-1) : mode_of("sgid/fifo"));
}

static void setgid_dir_inheritance_umask022(void) {
    umask(022);
    make_dir("sgid22", 02777);
    append("sub=%s", mkdir("sgid22/sub", 0777) < 0 ? rv(-1) : mode_of("sgid22/sub"));
}

static void umask_is_per_process(void) {
    /* A child's umask does not change its parent's. */
    umask(022);
    pid_t pid = fork();
    if (pid == 0) {
        umask(0777);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    mode_t m = umask(022);
    result("%04o", m);
}

int main(int argc, char **argv) {
    compat_init(argc, argv);
    CASE_INLINE(umask_initial);
    CASE(umask0_mode0666);
    CASE(umask0_mode0635);
    CASE(umask0_mode0777);
    CASE(umask022_mode0666);
    CASE(umask022_mode0635);
    CASE(umask022_mode0777);
    CASE(umask077_mode0666);
    CASE(umask027_mode0635);
    CASE(umask0_setid_bits);
    CASE(umask022_setid_bits);
    CASE(umask_returns_previous);
    CASE(umask_in_proc_status);
    CASE(umask_not_applied_to_chmod);
    CASE(umask_existing_file_keeps_mode);
    CASE(setgid_dir_inheritance);
    CASE(setgid_dir_inheritance_umask022);
    CASE(umask_is_per_process);
    return 0;
}
