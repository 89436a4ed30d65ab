/* Host and domain names: uname against what the guest's kernel serves in /proc/sys/kernel,
 * before and after sethostname/setdomainname (refused without privilege). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static void proc_name(const char *what, char *out, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/proc/sys/kernel/%s", what);
    int fd = open(path, O_RDONLY);
    ssize_t len = read(fd, out, n - 1);
    close(fd);
    out[len > 0 ? len - 1 : 0] = 0; /* drop the newline */
}

static void show(void) {
    struct utsname u;
    char host[80], domain[80];
    uname(&u);
    proc_name("hostname", host, sizeof host);
    proc_name("domainname", domain, sizeof domain);
    printf("uname=%s,%s proc=%s,%s\n", u.nodename, u.domainname, host, domain);
}

int main(void) {
    show();
    int rc = sethostname("inner", 5);
    printf("sethostname=%s\n", rc < 0 ? strerrorname_np(errno) : "ok");
    rc = setdomainname("dom", 3);
    printf("setdomainname=%s\n", rc < 0 ? strerrorname_np(errno) : "ok");
    show();
    return 0;
}
