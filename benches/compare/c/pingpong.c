/*
 * pingpong: mirror of pirun's examples/pingpong.rs.
 *
 *   pingpong [--sizes 8,1024,65536,1048576] [--iters N] [--warmup W]
 *     rank 0 sends, rank 1 echoes; each iteration's round trip is timed.
 *     Per size, rank 0 prints
 *       pingpong size=<bytes> iters=<N> oneway_us=<median RTT/2, µs> mbps=<size/(median RTT/2), 10^6 B/s>
 *     Ranks 2..n-1 block in one MPI_Recv from rank 0 for the whole run; rank 0
 *     satisfies it at the end (so with -n 8 they wait the entire time).
 *
 *   pingpong --idle SECS
 *     rank 0 sleeps SECS s then sends 8 bytes; rank 1 sits in MPI_Recv and
 *     prints its own CPU use (getrusage RUSAGE_SELF, user+sys) over that wait:
 *       idle_recv secs=<SECS> cpu_percent=<100*cpu/wall>
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common.h"

#define TAG_PING 1
#define TAG_DONE 2
#define MAX_SIZES 64

static void usage(void)
{
    fprintf(stderr, "usage: pingpong [--sizes a,b,..] [--iters N] [--warmup W] | --idle SECS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void idle(int rank, double secs)
{
    char buf[8] = {0};
    if (rank == 0) {
        usleep((useconds_t)(secs * 1e6));
        MPI_Send(buf, 8, MPI_BYTE, 1, TAG_PING, MPI_COMM_WORLD);
    } else if (rank == 1) {
        double c0 = cpu_s(), t0 = now_s();
        MPI_Recv(buf, 8, MPI_BYTE, 0, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        double cpu = cpu_s() - c0, wall = now_s() - t0;
        printf("idle_recv secs=%g cpu_percent=%.1f\n", secs, 100.0 * cpu / wall);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    long sizes[MAX_SIZES] = {8, 1024, 65536, 1048576};
    int nsizes = 4;
    long iters = 1000, warmup = 100;
    double idle_secs = -1;
    int rank, size;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--sizes")) {
            char *s = argv[++i], *end;
            nsizes = 0;
            while (*s && nsizes < MAX_SIZES) {
                sizes[nsizes++] = strtol(s, &end, 10);
                if (end == s || sizes[nsizes - 1] < 0)
                    usage();
                s = (*end == ',') ? end + 1 : end;
            }
        } else if (!strcmp(argv[i], "--iters")) {
            iters = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--warmup")) {
            warmup = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--idle")) {
            idle_secs = atof(argv[++i]);
        } else {
            usage();
        }
    }
    if (size < 2 || iters < 1 || warmup < 0) {
        if (rank == 0)
            fprintf(stderr, "pingpong needs at least 2 ranks and --iters >= 1\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }

    if (idle_secs >= 0) {
        idle(rank, idle_secs);
        MPI_Finalize();
        return 0;
    }

    if (rank >= 2) {
        /* Bystander: blocked in a receive for the whole benchmark. */
        char dummy;
        MPI_Recv(&dummy, 1, MPI_BYTE, 0, TAG_DONE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Finalize();
        return 0;
    }

    long maxsize = 1;
    for (int s = 0; s < nsizes; s++)
        if (sizes[s] > maxsize)
            maxsize = sizes[s];
    char *buf = malloc((size_t)maxsize);
    double *rtt = malloc(sizeof(double) * (size_t)iters);
    memset(buf, 0xa5, (size_t)maxsize);

    for (int s = 0; s < nsizes; s++) {
        int n = (int)sizes[s];
        for (long i = -warmup; i < iters; i++) {
            if (rank == 0) {
                double t0 = now_s();
                MPI_Send(buf, n, MPI_BYTE, 1, TAG_PING, MPI_COMM_WORLD);
                MPI_Recv(buf, n, MPI_BYTE, 1, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (i >= 0)
                    rtt[i] = now_s() - t0;
            } else {
                MPI_Recv(buf, n, MPI_BYTE, 0, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(buf, n, MPI_BYTE, 0, TAG_PING, MPI_COMM_WORLD);
            }
        }
        if (rank == 0) {
            double oneway = median(rtt, (size_t)iters) / 2.0;
            printf("pingpong size=%d iters=%ld oneway_us=%.3f mbps=%.1f\n", n, iters,
                   oneway * 1e6, (double)n / oneway / 1e6);
            fflush(stdout);
        }
    }

    if (rank == 0) {
        char dummy = 0;
        for (int r = 2; r < size; r++)
            MPI_Send(&dummy, 1, MPI_BYTE, r, TAG_DONE, MPI_COMM_WORLD);
    }
    free(buf);
    free(rtt);
    MPI_Finalize();
    return 0;
}
