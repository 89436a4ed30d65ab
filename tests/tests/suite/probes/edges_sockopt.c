/* SO_RCVBUFFORCE and SO_SNDBUFFORCE (a size under the host's rmem_max/wmem_max), their argument
 * errors, and an option of another level with the same number, which stays native. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
static void r(const char *what, long rc) { printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok"); }
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0), v = 65536, got; socklen_t l = sizeof got;
    r("rcvbufforce", setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v));
    getsockopt(s, SOL_SOCKET, SO_RCVBUF, &got, &l);
    printf("rcvbuf=%d\n", got);
    r("sndbufforce", setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v));
    getsockopt(s, SOL_SOCKET, SO_SNDBUF, &got, &l);
    printf("sndbuf=%d\n", got);
    r("short_len", setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &v, 2));
    r("fault", setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, (void *)8, 4));
    r("badfd", setsockopt(99, SOL_SOCKET, SO_RCVBUFFORCE, &v, 4));
    r("notsock", setsockopt(0, SOL_SOCKET, SO_RCVBUFFORCE, &v, 4));
    unsigned char ttl = 3;
    r("ip_multicast_ttl", setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, 1));
    return 0;
}
