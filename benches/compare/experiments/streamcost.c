/*
 * streamcost: what one message costs its sender over loopback TCP vs a Unix stream socket.
 *
 *   cc -O2 -o streamcost streamcost.c
 *   ./streamcost tcp|unix SIZE COUNT [SNDBUF]
 *
 * The parent (pinned to CPU 0) writes COUNT messages of SIZE bytes back to back to a
 * child (pinned to CPU 1) that reads them with 256 KiB reads and answers one byte at the
 * end. Prints the time per message and the rate. TCP gets TCP_NODELAY and Reno, as
 * pirun's sockets; SNDBUF, if given, is set on the sending socket (SO_SNDBUF).
 * Loopback and abstract Unix names only; every loop is bounded by COUNT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* The child: connect, read until `total` bytes came, answer one byte. */
static void reader(int domain, const struct sockaddr *a, socklen_t len, long total)
{
    pin(1);
    int c = socket(domain, SOCK_STREAM, 0);
    if (c < 0 || connect(c, a, len) != 0)
        die("connect");
    char *buf = malloc(256 << 10);
    for (long got = 0; got < total;) {
        long r = read(c, buf, 256 << 10);
        if (r <= 0)
            die("read");
        got += r;
    }
    if (write(c, "k", 1) != 1)
        die("answer");
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: streamcost tcp|unix SIZE COUNT [SNDBUF]\n");
        return 2;
    }
    int is_unix = strcmp(argv[1], "unix") == 0;
    long size = atol(argv[2]), count = atol(argv[3]);
    int sndbuf = argc > 4 ? atoi(argv[4]) : 0;
    int ls;
    if (is_unix) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "streamcost-%d", getpid());
        socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1);
        ls = socket(AF_UNIX, SOCK_STREAM, 0);
        if (ls < 0 || bind(ls, (void *)&a, len) != 0 || listen(ls, 1) != 0)
            die("unix listen");
        if (fork() == 0)
            reader(AF_UNIX, (void *)&a, len, size * count);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        ls = socket(AF_INET, SOCK_STREAM, 0);
        if (ls < 0 || bind(ls, (void *)&a, len) != 0 || getsockname(ls, (void *)&a, &len) != 0 ||
            listen(ls, 1) != 0)
            die("tcp listen");
        if (fork() == 0)
            reader(AF_INET, (void *)&a, len, size * count);
    }
    pin(0);
    int fd = accept(ls, NULL, NULL);
    if (fd < 0)
        die("accept");
    if (sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (!is_unix) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
    }
    char *msg = calloc(1, size);
    double t0 = now_ns();
    for (long i = 0; i < count; i++)
        for (long off = 0; off < size;) {
            long w = write(fd, msg + off, size - off);
            if (w < 0)
                die("write");
            off += w;
        }
    char k;
    if (read(fd, &k, 1) != 1)
        die("the reader's answer");
    double t1 = now_ns();
    wait(NULL);
    printf("%s size=%ld ns_per_msg=%.0f MB_per_s=%.0f\n", argv[1], size, (t1 - t0) / count,
           size * count / ((t1 - t0) / 1e3));
    return 0;
}
