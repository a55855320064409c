/* pingpong.c: the C baseline of bench/compare.lua — the same loops as the Lua
 * benchmarks, written directly against the socket API.
 *
 *   pingpong pair N       N 1-byte round trips over an AF_UNIX socketpair
 *   pingpong tcp N        N 1-byte round trips over TCP on 127.0.0.1 (TCP_NODELAY)
 *   pingpong bulk-pair N  N transfers of 64 KiB over a non-blocking socketpair
 *   pingpong bulk-tcp N   N transfers of 64 KiB over non-blocking TCP on 127.0.0.1
 *
 * Both ends live in this one process (as in the Lua benchmarks): a round trip is
 * send(a) recv(b) send(b) recv(a). Prints "<mode> <N> <cpu seconds>", where the
 * time is CLOCK_PROCESS_CPUTIME_ID around the loop (what Lua's os.clock reads).
 * Every received byte count and value is checked; exit status 1 on any failure.
 * Built by bench/compare.lua with `cc -O2`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BULK (64 * 1024)

static void die(const char *what) {
    perror(what);
    exit(1);
}

static double cpu_now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) die("clock_gettime");
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
}

static void make_pair(int fds[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) die("socketpair");
}

static void make_tcp(int fds[2]) {
    int one = 1;
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    if (lst < 0) die("socket");
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lst, (struct sockaddr *)&sa, sizeof sa) != 0) die("bind");
    if (listen(lst, 1) != 0) die("listen");
    if (getsockname(lst, (struct sockaddr *)&sa, &len) != 0) die("getsockname");
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0) die("socket");
    if (connect(fds[0], (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    fds[1] = accept(lst, NULL, NULL);
    if (fds[1] < 0) die("accept");
    close(lst);
    if (setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die("setsockopt");
}

static void pingpong(int a, int b, long n) {
    char c;
    for (long i = 0; i < n; i++) {
        if (send(a, "x", 1, MSG_NOSIGNAL) != 1) die("send a");
        if (recv(b, &c, 1, 0) != 1 || c != 'x') die("recv b");
        if (send(b, "y", 1, MSG_NOSIGNAL) != 1) die("send b");
        if (recv(a, &c, 1, 0) != 1 || c != 'y') die("recv a");
    }
}

static void bulk(int a, int b, long n) {
    static char out[BULK], in[BULK];
    for (int i = 0; i < BULK; i++) out[i] = (char)('a' + i % 26);
    nonblock(a);
    nonblock(b);
    for (long i = 0; i < n; i++) {
        size_t sent = 0, got = 0;
        while (got < BULK) {
            if (sent < BULK) {
                ssize_t k = send(a, out + sent, BULK - sent, MSG_NOSIGNAL);
                if (k > 0)
                    sent += (size_t)k;
                else if (k < 0 && errno != EAGAIN && errno != EINTR)
                    die("send");
            }
            for (;;) {
                ssize_t k = recv(b, in, sizeof in, 0);
                if (k > 0) {
                    if (in[0] != out[got % BULK]) {
                        fprintf(stderr, "bulk: wrong byte at %zu\n", got);
                        exit(1);
                    }
                    got += (size_t)k;
                } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
                    break;
                } else {
                    die("recv");
                }
            }
        }
        if (got != BULK) {
            fprintf(stderr, "bulk: got %zu bytes\n", got);
            exit(1);
        }
    }
}

int main(int argc, char **argv) {
    int fds[2];
    long n;
    double t0, t1;
    const char *mode;
    if (argc != 3) {
        fprintf(stderr, "usage: pingpong pair|tcp|bulk-pair|bulk-tcp N\n");
        return 2;
    }
    mode = argv[1];
    n = atol(argv[2]);
    if (strcmp(mode, "pair") == 0 || strcmp(mode, "bulk-pair") == 0)
        make_pair(fds);
    else if (strcmp(mode, "tcp") == 0 || strcmp(mode, "bulk-tcp") == 0)
        make_tcp(fds);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    t0 = cpu_now();
    if (strncmp(mode, "bulk", 4) == 0)
        bulk(fds[0], fds[1], n);
    else
        pingpong(fds[0], fds[1], n);
    t1 = cpu_now();
    close(fds[0]);
    close(fds[1]);
    printf("%s %ld %.9f\n", mode, n, t1 - t0);
    return 0;
}
