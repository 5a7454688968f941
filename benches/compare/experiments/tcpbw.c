/*
 * tcpbw: where does loopback TCP ping-pong bandwidth go?
 *
 * Two processes (fork) joined by one TCP connection over 127.0.0.1 play ping-pong
 * with a framed message: a 16-byte header (length, tag) and a payload. Each knob is
 * one data-path choice a message-passing runtime has to make:
 *
 *   --size N        payload bytes (default 1048576)
 *   --iters N       timed round trips (default 500), --warmup N (default 50)
 *   --buf N         SO_SNDBUF = SO_RCVBUF = N before connect (0: kernel autotuning)
 *   --wait MODE     block: blocking sockets
 *                   spin:  non-blocking, retry at once on EAGAIN (busy poll)
 *                   poll:  non-blocking, poll() until ready on EAGAIN
 *                   hybrid: non-blocking, spin up to --spin-us µs, then poll()
 *   --spin-us N     spin budget for hybrid (default 50)
 *   --send MODE     writev: header+payload in one writev (default)
 *                   two: write(header) then write(payload)
 *                   copy: memcpy header+payload into one buffer, then write
 *   --wchunk N      at most N bytes per write/writev call (0: all that is left)
 *   --rchunk N      at most N bytes per read call (0: all that is left)
 *   --staging N     receiver reads into an N-byte staging buffer and memcpys out
 *                   (like a BufReader); 0: read header, then payload straight into
 *                   the user buffer (default)
 *   --nodelay 0|1   TCP_NODELAY (default 1)
 *   --pin 0|1       pin the two processes to CPUs 0 and 1 (default 0)
 *   --cc NAME       TCP congestion control for this socket (TCP_CONGESTION), e.g.
 *                   cubic, bbr, reno (default: the system's, net.ipv4.tcp_congestion_control)
 *   --rndv 0|1      rendezvous like Open MPI's ob1: the sender first sends a bare
 *                   header (RTS), the receiver answers with a 16-byte CTS, then the
 *                   sender writes header+payload (default 0: eager, payload at once)
 *
 * Prints one line:
 *   tcpbw size=.. oneway_us=<median RTT/2> mbps=<size/oneway, 10^6 B/s> ctxsw=<voluntary
 *   context switches per round trip, both sides> syscalls=<read+write calls per round trip>
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { W_BLOCK, W_SPIN, W_POLL, W_HYBRID };
enum { S_WRITEV, S_TWO, S_COPY };

static struct {
    size_t size, wchunk, rchunk, staging;
    long iters, warmup, spin_us;
    int buf, wait, send, nodelay, pin, rndv;
    const char *cc;
} o = {1 << 20, 0, 0, 0, 500, 50, 50, 0, W_BLOCK, S_WRITEV, 1, 0, 0, NULL};

static long nsys; /* read/write calls made by this process */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Wait until fd is ready for `ev` after an EAGAIN, the way --wait says. */
static void wait_ready(int fd, short ev)
{
    if (o.wait == W_SPIN)
        return;
    if (o.wait == W_HYBRID) {
        double end = now_s() + o.spin_us * 1e-6;
        while (now_s() < end) {
            struct pollfd p = {fd, ev, 0};
            if (poll(&p, 1, 0) > 0)
                return;
        }
    }
    struct pollfd p = {fd, ev, 0};
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
}

static void send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct iovec v[2];
        int k = 0;
        size_t left = o.wchunk ? o.wchunk : SIZE_MAX;
        for (int i = 0; i < n && left; i++, k++) {
            v[k] = iov[i];
            if (v[k].iov_len > left)
                v[k].iov_len = left;
            left -= v[k].iov_len;
        }
        ssize_t w = writev(fd, v, k);
        nsys++;
        if (w < 0) {
            if (errno == EAGAIN) {
                wait_ready(fd, POLLOUT);
                continue;
            }
            if (errno == EINTR)
                continue;
            die("writev");
        }
        while (n > 0 && (size_t)w >= iov[0].iov_len) {
            w -= iov[0].iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + w;
            iov[0].iov_len -= w;
        }
    }
}

static size_t read_some(int fd, char *p, size_t want)
{
    for (;;) {
        if (o.rchunk && want > o.rchunk)
            want = o.rchunk;
        ssize_t r = read(fd, p, want);
        nsys++;
        if (r > 0)
            return (size_t)r;
        if (r == 0) {
            fprintf(stderr, "peer closed\n");
            exit(1);
        }
        if (errno == EAGAIN)
            wait_ready(fd, POLLIN);
        else if (errno != EINTR)
            die("read");
    }
}

static void recv_exact(int fd, char *p, size_t n)
{
    while (n) {
        size_t r = read_some(fd, p, n);
        p += r, n -= r;
    }
}

struct hdr {
    uint64_t len, tag;
};

static char *stage;

static size_t st_lo, st_hi; /* unread bytes in stage[st_lo..st_hi) */

/* Receive n bytes, through the staging buffer if there is one. */
static void take(int fd, char *dst, size_t n)
{
    if (!o.staging) {
        recv_exact(fd, dst, n);
        return;
    }
    while (n) {
        if (st_lo == st_hi) {
            st_lo = 0;
            st_hi = read_some(fd, stage, o.staging);
        }
        size_t k = st_hi - st_lo < n ? st_hi - st_lo : n;
        memcpy(dst, stage + st_lo, k);
        st_lo += k, dst += k, n -= k;
    }
}

static char *sendbuf;

static void take(int fd, char *dst, size_t n);

static void send_msg(int fd, char *payload, uint64_t tag)
{
    struct hdr h = {o.size, tag};
    if (o.rndv) { /* RTS, wait for CTS */
        struct hdr rts = {0, tag}, cts;
        struct iovec v = {&rts, sizeof rts};
        send_all(fd, &v, 1);
        take(fd, (char *)&cts, sizeof cts);
    }
    if (o.send == S_WRITEV) {
        struct iovec v[2] = {{&h, sizeof h}, {payload, o.size}};
        send_all(fd, v, 2);
    } else if (o.send == S_TWO) {
        struct iovec a = {&h, sizeof h}, b = {payload, o.size};
        send_all(fd, &a, 1);
        send_all(fd, &b, 1);
    } else {
        memcpy(sendbuf, &h, sizeof h);
        memcpy(sendbuf + sizeof h, payload, o.size);
        struct iovec v = {sendbuf, sizeof h + o.size};
        send_all(fd, &v, 1);
    }
}

static void recv_msg(int fd, char *payload)
{
    struct hdr h;
    if (o.rndv) { /* RTS in, CTS out */
        take(fd, (char *)&h, sizeof h);
        struct iovec v = {&h, sizeof h};
        send_all(fd, &v, 1);
    }
    take(fd, (char *)&h, sizeof h);
    if (h.len != o.size) {
        fprintf(stderr, "bad frame length %llu\n", (unsigned long long)h.len);
        exit(1);
    }
    take(fd, payload, h.len);
}

static void setup(int fd)
{
    if (o.buf) {
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.buf, sizeof o.buf) ||
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.buf, sizeof o.buf))
            die("SO_SNDBUF/SO_RCVBUF");
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &o.nodelay, sizeof o.nodelay))
        die("TCP_NODELAY");
    if (o.cc && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, o.cc, strlen(o.cc)))
        die("TCP_CONGESTION");
}

static void nonblock(int fd)
{
    if (o.wait != W_BLOCK) {
        int on = 1;
        if (ioctl(fd, FIONBIO, &on))
            die("FIONBIO");
    }
}

static void pin(int cpu)
{
    if (!o.pin)
        return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

static long vcsw(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t num(const char *s)
{
    return strtoull(s, NULL, 0);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--size")) o.size = num(v);
        else if (!strcmp(k, "--iters")) o.iters = num(v);
        else if (!strcmp(k, "--warmup")) o.warmup = num(v);
        else if (!strcmp(k, "--buf")) o.buf = (int)num(v);
        else if (!strcmp(k, "--spin-us")) o.spin_us = num(v);
        else if (!strcmp(k, "--wchunk")) o.wchunk = num(v);
        else if (!strcmp(k, "--rchunk")) o.rchunk = num(v);
        else if (!strcmp(k, "--staging")) o.staging = num(v);
        else if (!strcmp(k, "--nodelay")) o.nodelay = (int)num(v);
        else if (!strcmp(k, "--pin")) o.pin = (int)num(v);
        else if (!strcmp(k, "--rndv")) o.rndv = (int)num(v);
        else if (!strcmp(k, "--cc")) o.cc = v;
        else if (!strcmp(k, "--wait"))
            o.wait = !strcmp(v, "block") ? W_BLOCK : !strcmp(v, "spin") ? W_SPIN
                   : !strcmp(v, "poll") ? W_POLL : !strcmp(v, "hybrid") ? W_HYBRID : -1;
        else if (!strcmp(k, "--send"))
            o.send = !strcmp(v, "writev") ? S_WRITEV : !strcmp(v, "two") ? S_TWO
                   : !strcmp(v, "copy") ? S_COPY : -1;
        else {
            fprintf(stderr, "unknown option %s (see the comment at the top of tcpbw.c)\n", k);
            return 2;
        }
    }
    if (o.wait < 0 || o.send < 0 || o.iters < 1) {
        fprintf(stderr, "bad option value\n");
        return 2;
    }

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    setup(ls); /* buffer sizes must be set before listen/connect (window scale) */
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &al))
        die("listen");

    char *payload = malloc(o.size ? o.size : 1);
    memset(payload, 0x5a, o.size);
    sendbuf = malloc(o.size + sizeof(struct hdr));
    stage = o.staging ? malloc(o.staging) : NULL;
    int pipefd[2];
    if (pipe(pipefd))
        die("pipe");

    pid_t child = fork();
    if (child == 0) { /* echo side */
        pin(1);
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            die("accept");
        setup(fd);
        nonblock(fd);
        long c0 = vcsw(), s0 = 0;
        for (long i = 0; i < o.warmup + o.iters; i++) {
            if (i == o.warmup)
                c0 = vcsw(), s0 = nsys;
            recv_msg(fd, payload);
            send_msg(fd, payload, 1);
        }
        long counts[2] = {vcsw() - c0, nsys - s0};
        if (write(pipefd[1], counts, sizeof counts) != sizeof counts)
            die("pipe write");
        _exit(0);
    }

    pin(0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setup(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a))
        die("connect");
    nonblock(fd);
    double *rtt = malloc(sizeof(double) * o.iters);
    long c0 = 0, s0 = 0;
    for (long i = -o.warmup; i < o.iters; i++) {
        if (i == 0)
            c0 = vcsw(), s0 = nsys;
        double t0 = now_s();
        send_msg(fd, payload, 0);
        recv_msg(fd, payload);
        if (i >= 0)
            rtt[i] = now_s() - t0;
    }
    long mine[2] = {vcsw() - c0, nsys - s0}, theirs[2];
    if (read(pipefd[0], theirs, sizeof theirs) != sizeof theirs)
        die("pipe read");
    waitpid(child, NULL, 0);

    qsort(rtt, o.iters, sizeof *rtt, cmpd);
    double oneway = rtt[o.iters / 2] / 2;
    int sb = 0, rb = 0;
    socklen_t l = sizeof sb;
    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, &l);
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, &l);
    char cc[32] = "?";
    l = sizeof cc - 1;
    getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, &l);
    printf("tcpbw size=%zu oneway_us=%.3f mbps=%.1f ctxsw=%.1f syscalls=%.1f sndbuf=%d rcvbuf=%d cc=%s\n",
           o.size, oneway * 1e6, o.size / oneway / 1e6,
           (double)(mine[0] + theirs[0]) / o.iters, (double)(mine[1] + theirs[1]) / o.iters, sb, rb, cc);
    return 0;
}
