/*
 * spinwait: what a spinning wait costs per small-message hop over loopback TCP.
 *
 * Two processes (fork) joined by one TCP connection over 127.0.0.1 (TCP_NODELAY, Reno)
 * play ping-pong with 48-byte frames (a 40-byte header and 8 bytes of payload, one
 * writev each, like pirun's 8-byte message). The receiver waits by spinning, the way
 * the flags say; the parent prints the median one-way time and the system calls it made
 * per round trip.
 *
 *   spinwait MODE YIELD CPU0 CPU1 [ITERS]
 *     MODE   epoll: each turn asks epoll_wait(0), then recv()s when it reports the socket
 *            recv:  each turn tries a non-blocking recv() on the socket
 *     YIELD  0: never sched_yield; N: yield every N-th turn
 *     CPU0/1 pin parent/child to these CPUs (-1: leave to the scheduler); 0 0 puts both
 *            on one core
 *     ITERS  timed round trips (default 100000, at most 10^7), after 1000 untimed ones
 *
 * Build: cc -O2 -o spinwait spinwait.c. Every loop is bounded by ITERS; a turn count
 * above 10^9 in one wait aborts (the peer is gone).
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int mode_recv, yield_every, ep;
static long n_epoll, n_recv, n_yield;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s) != 0)
        perror("sched_setaffinity");
}

/* Spins until one frame has arrived on fd. */
static void wait_frame(int fd, char *buf, size_t cap)
{
    for (unsigned long turn = 1;; turn++) {
        if (turn > 1000000000UL) {
            fprintf(stderr, "spinwait: no frame after 10^9 turns\n");
            exit(1);
        }
        int ready = 1;
        if (!mode_recv) {
            struct epoll_event ev[8];
            n_epoll++;
            ready = epoll_wait(ep, ev, 8, 0) > 0;
        }
        if (ready) {
            n_recv++;
            ssize_t r = recv(fd, buf, cap, MSG_DONTWAIT);
            if (r > 0)
                return;
            if (r == 0) {
                fprintf(stderr, "spinwait: peer closed\n");
                exit(1);
            }
        }
        if (yield_every && turn % yield_every == 0) {
            n_yield++;
            sched_yield();
        } else {
            __builtin_ia32_pause();
        }
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: spinwait epoll|recv YIELD CPU0 CPU1 [ITERS]\n");
        return 2;
    }
    mode_recv = !strcmp(argv[1], "recv");
    yield_every = atoi(argv[2]);
    int cpu0 = atoi(argv[3]), cpu1 = atoi(argv[4]);
    long iters = argc > 5 ? atol(argv[5]) : 100000;
    if (iters < 1 || iters > 10000000 || yield_every < 0) {
        fprintf(stderr, "spinwait: bad ITERS or YIELD\n");
        return 2;
    }
    const long warm = 1000;

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t al = sizeof a;
    if (bind(l, (void *)&a, sizeof a) || listen(l, 1) || getsockname(l, (void *)&a, &al)) {
        perror("listen");
        return 1;
    }
    int s0 = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s0, (void *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int s1 = accept(l, NULL, NULL);
    int one = 1;
    for (int i = 0; i < 2; i++) {
        int s = i ? s1 : s0;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
    }

    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    int fd = child == 0 ? s1 : s0;
    pin(child == 0 ? cpu1 : cpu0);
    ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);

    char hdr[40] = {0}, payload[8] = {0}, buf[4096];
    struct iovec iov[2] = {{hdr, sizeof hdr}, {payload, sizeof payload}};
    double *rtt = malloc(sizeof(double) * iters);
    if (!rtt)
        return 1;
    for (long i = 0; i < warm + iters; i++) {
        double t = now_ns();
        if (child) {
            writev(fd, iov, 2);
            wait_frame(fd, buf, sizeof buf);
        } else {
            wait_frame(fd, buf, sizeof buf);
            writev(fd, iov, 2);
        }
        if (i >= warm)
            rtt[i - warm] = now_ns() - t;
    }
    if (child) {
        qsort(rtt, iters, sizeof(double), cmp);
        double rts = (double)(warm + iters);
        printf("spinwait mode=%s yield=%d cpus=%d,%d oneway_us=%.2f per_rtt: epoll=%.1f "
               "recv=%.1f yield=%.1f\n",
               mode_recv ? "recv" : "epoll", yield_every, cpu0, cpu1, rtt[iters / 2] / 2000,
               n_epoll / rts, n_recv / rts, n_yield / rts);
        waitpid(child, NULL, 0);
    }
    return 0;
}
