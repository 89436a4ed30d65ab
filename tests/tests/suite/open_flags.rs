//! Fds the gofer opens behave as the kernel's own: the same probe natively and in the sandbox
//! prints the same thing.

use super::prelude::*;

const FLAGS: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what, long rc) {
    printf("%s: %s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

static void content(const char *path) {
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("%s = \"%s\"\n", path, buf);
}

int main(void) {
    int fd = open("f", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    write(fd, "ab", 2);
    close(fd);
    fd = open("f", O_WRONLY | O_APPEND);
    write(fd, "cd", 2);
    close(fd);
    content("f");
    /* Two opens are two descriptions: offsets are not shared. */
    int a = open("f", O_RDONLY), b = open("f", O_RDONLY);
    char x[2] = {0}, y[2] = {0};
    read(a, x, 1); read(b, y, 1);
    printf("independent offsets: %s\n", x[0] == y[0] ? "yes" : "no");
    close(a); close(b);
    show("O_EXCL on existing", open("f", O_CREAT | O_EXCL | O_WRONLY, 0644));
    show("O_DIRECTORY on file", open("f", O_RDONLY | O_DIRECTORY));
    symlink("f", "l");
    show("O_NOFOLLOW on symlink", open("l", O_RDONLY | O_NOFOLLOW));
    fd = open("f", O_WRONLY | O_TRUNC);
    close(fd);
    content("f");
    fd = open(".", O_TMPFILE | O_RDWR, 0600);
    show("O_TMPFILE", fd);
    write(fd, "tmp", 3);
    show("linkat AT_EMPTY_PATH", linkat(fd, "", AT_FDCWD, "named", AT_EMPTY_PATH));
    close(fd);
    content("named");
    fd = open("f", O_PATH);
    struct stat st;
    show("O_PATH fstat", fstat(fd, &st));
    show("O_PATH read", read(fd, x, 1));
    close(fd);
    fd = open("f", O_RDONLY | O_CLOEXEC);
    printf("O_CLOEXEC: %d\n", fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    fd = open("f", O_RDONLY);
    printf("no O_CLOEXEC: %d\n", fcntl(fd, F_GETFD) & FD_CLOEXEC);
    printf("O_NONBLOCK not added: %d\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    close(fd);
    mkfifo("fifo", 0600);
    fd = open("fifo", O_RDONLY | O_NONBLOCK);
    show("fifo O_NONBLOCK", fd);
    close(fd);
    show("unlink", unlink("f"));
    show("open after unlink", open("f", O_RDONLY));
    show("rename", rename("named", "renamed"));
    content("renamed");
    mkdir("d", 0700);
    show("rmdir", rmdir("d"));
    show("stat after rmdir", stat("d", &st));
    /* inotify: a watch set through the gofer's handle sees a file made through the gofer. */
    int in = inotify_init1(IN_CLOEXEC);
    show("inotify_add_watch", inotify_add_watch(in, ".", IN_CREATE));
    close(open("watched", O_CREAT | O_WRONLY, 0600));
    char ev[4096];
    ssize_t n = read(in, ev, sizeof ev);
    struct inotify_event *e = (struct inotify_event *)ev;
    printf("inotify event: %s\n", n > 0 && (e->mask & IN_CREATE) ? e->name : "none");
    /* chdir through the gofer, then a relative open. */
    mkdir("sub", 0755);
    show("chdir", chdir("sub"));
    close(open("inner", O_CREAT | O_WRONLY, 0600));
    show("chdir ..", chdir(".."));
    show("stat sub/inner", stat("sub/inner", &st));
    show("chdir to a file", chdir("renamed"));
    return 0;
}
"#;

#[test]
fn injected_fds_behave_as_native_ones() {
    let probe = compile_c("flags", FLAGS);
    let native_dir = scratch("flags-native");
    let native = std::process::Command::new(&probe)
        .current_dir(&native_dir)
        .output()
        .unwrap();
    assert!(native.status.success());
    let o = run_for(
        &mut rvisor_do([
            "--cwd".as_ref(),
            "/tmp".as_ref(),
            "--".as_ref(),
            probe.as_os_str(),
        ]),
        60,
    );
    let inside = ok(&o);
    assert_eq!(inside, String::from_utf8_lossy(&native.stdout));
    assert!(inside.contains("independent offsets: yes"), "{inside}");
}
