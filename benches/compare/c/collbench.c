/*
 * collbench: mirror of pirun's benches/src/bin/collbench.rs (measuring code in
 * benches/coll.rs; read its header for the method).
 *
 *   collbench [--ops barrier,bcast,reduce,allreduce,gather,scatter,allgather,alltoall]
 *             [--sizes 8,1024,65536,1048576] [--iters N] [--warmup W]
 *             [--time-limit SECS] [--batch B]
 *
 * Per operation and size (bytes per rank; the barrier once, as size=0), rank 0 prints
 *   coll op=<op> size=<bytes> n=<ranks> iters=<N> median_us=<..> min_us=<..> max_us=<..>
 * the slowest rank's time per call of each batch of B back-to-back calls (default B =
 * ceil(N/20), lowered so that a batch of warm-up-speed calls takes at most a tenth of the
 * time share); median, min and max over the batches. Between batches, outside the timed
 * region, a dissemination max-exchange over MPI_Sendrecv (the same as the Rust side, not
 * the library's MPI_Allreduce) synchronises the ranks and gives all of them the same
 * maximum time and elapsed time (the time limit's decision). After the timed calls one
 * more call with poisoned outputs is checked on every rank; a wrong result prints
 *   coll_error op=<op> size=<bytes> n=<ranks> wrong result on rank R
 * instead, and the exit status is 1.
 *
 * Reductions: MPI_SUM of size/8 (at least 1) doubles. Gather/scatter/allgather: size bytes
 * per rank. Alltoall: size bytes per destination (a rank sends n*size). Root: rank 0.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define MAX_SIZES 64
#define SEP_TAG 0x5e9
#define DEFAULT_ITERS 1000
#define MIN_ITERS 3

enum op { BARRIER, BCAST, REDUCE, ALLREDUCE, GATHER, SCATTER, ALLGATHER, ALLTOALL, NOPS };
static const char *op_names[NOPS] = {"barrier", "bcast",  "reduce",    "allreduce",
                                     "gather",  "scatter", "allgather", "alltoall"};

static int rank, nranks;
static long iters_arg = -1, warmup_arg = -1, batch_arg = -1;
static double time_limit = 4.0;
static int nsizes = 4;

static void usage(void)
{
    if (rank == 0)
        fprintf(stderr, "usage: collbench [--ops a,b,..] [--sizes a,b,..] [--iters N] "
                        "[--warmup W] [--time-limit SECS] [--batch B]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static long iters_for(long size)
{
    long n = iters_arg > 0 ? iters_arg : DEFAULT_ITERS;
    long scaled = n * 8192 / (size > 8192 ? size : 8192);
    long floor = n / 50 > MIN_ITERS ? n / 50 : MIN_ITERS;
    if (scaled < floor)
        scaled = floor;
    return scaled < n ? scaled : n;
}

static long warmup_for(long size)
{
    long w = iters_for(size) / 10;
    return warmup_arg >= 0 ? warmup_arg : (w > 2 ? w : 2);
}

static long batch_for(long size)
{
    long b = batch_arg > 0 ? batch_arg : (iters_for(size) + 19) / 20;
    return b > 1 ? b : 1;
}

static uint8_t pat(long r, long j, long k)
{
    return (uint8_t)(((r * 31) ^ (j * 7)) + k);
}

static double val(long r, long i)
{
    return (double)((r + 1) * (i % 7 + 1));
}

/* Element-wise max of v[2] over all ranks: dissemination over MPI_Sendrecv. */
static void separator(double v[2])
{
    for (int dist = 1; dist < nranks; dist *= 2) {
        double got[2];
        MPI_Sendrecv(v, 2, MPI_DOUBLE, (rank + dist) % nranks, SEP_TAG, got, 2, MPI_DOUBLE,
                     (rank + nranks - dist) % nranks, SEP_TAG, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        if (got[0] > v[0])
            v[0] = got[0];
        if (got[1] > v[1])
            v[1] = got[1];
    }
}

struct bufs {
    uint8_t *send, *recv;
    double *fsend, *frecv;
    long size, count;
};

static uint8_t *fill(long blocks, long size, long r)
{
    uint8_t *b = malloc((size_t)(blocks * size) + 1);
    for (long x = 0; x < blocks * size; x++)
        b[x] = pat(r, x / size, x % size);
    return b;
}

static void setup(struct bufs *b, int op, long size)
{
    memset(b, 0, sizeof *b);
    b->size = size;
    b->count = size / 8 > 0 ? size / 8 : 1;
    switch (op) {
    case BCAST:
        b->send = rank == 0 ? fill(1, size, 0) : calloc((size_t)size + 1, 1);
        break;
    case REDUCE:
    case ALLREDUCE:
        b->fsend = malloc(sizeof(double) * (size_t)b->count);
        b->frecv = calloc((size_t)b->count, sizeof(double));
        for (long i = 0; i < b->count; i++)
            b->fsend[i] = val(rank, i);
        break;
    case GATHER:
        b->send = fill(1, size, rank);
        b->recv = calloc((size_t)(rank == 0 ? nranks * size : 0) + 1, 1);
        break;
    case SCATTER:
        b->send = rank == 0 ? fill(nranks, size, 0) : NULL;
        b->recv = calloc((size_t)size + 1, 1);
        break;
    case ALLGATHER:
        b->send = fill(1, size, rank);
        b->recv = calloc((size_t)(nranks * size) + 1, 1);
        break;
    case ALLTOALL:
        b->send = fill(nranks, size, rank);
        b->recv = calloc((size_t)(nranks * size) + 1, 1);
        break;
    }
}

static void teardown(struct bufs *b)
{
    free(b->send);
    free(b->recv);
    free(b->fsend);
    free(b->frecv);
}

static void call(struct bufs *b, int op)
{
    int s = (int)b->size, c = (int)b->count;
    switch (op) {
    case BARRIER:
        MPI_Barrier(MPI_COMM_WORLD);
        break;
    case BCAST:
        MPI_Bcast(b->send, s, MPI_BYTE, 0, MPI_COMM_WORLD);
        break;
    case REDUCE:
        MPI_Reduce(b->fsend, rank == 0 ? b->frecv : NULL, c, MPI_DOUBLE, MPI_SUM, 0,
                   MPI_COMM_WORLD);
        break;
    case ALLREDUCE:
        MPI_Allreduce(b->fsend, b->frecv, c, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        break;
    case GATHER:
        MPI_Gather(b->send, s, MPI_BYTE, b->recv, s, MPI_BYTE, 0, MPI_COMM_WORLD);
        break;
    case SCATTER:
        MPI_Scatter(b->send, s, MPI_BYTE, b->recv, s, MPI_BYTE, 0, MPI_COMM_WORLD);
        break;
    case ALLGATHER:
        MPI_Allgather(b->send, s, MPI_BYTE, b->recv, s, MPI_BYTE, MPI_COMM_WORLD);
        break;
    case ALLTOALL:
        MPI_Alltoall(b->send, s, MPI_BYTE, b->recv, s, MPI_BYTE, MPI_COMM_WORLD);
        break;
    }
}

static void poison(struct bufs *b, int op)
{
    if (op == BCAST && rank != 0)
        memset(b->send, 0xEE, (size_t)b->size);
    if (op == GATHER)
        memset(b->recv, 0xEE, (size_t)(rank == 0 ? nranks * b->size : 0));
    if (op == SCATTER)
        memset(b->recv, 0xEE, (size_t)b->size);
    if (op == ALLGATHER || op == ALLTOALL)
        memset(b->recv, 0xEE, (size_t)(nranks * b->size));
    if (op == REDUCE || op == ALLREDUCE)
        for (long i = 0; i < b->count; i++)
            b->frecv[i] = -1.0;
}

/* Blocks of `size` bytes in buf; block i must come from rank src(i), block j(i). */
static int blocks_ok(const uint8_t *buf, long nblocks, long size, int op)
{
    for (long i = 0; i < nblocks; i++) {
        long r = 0, j = 0;
        if (op == GATHER || op == ALLGATHER)
            r = i;
        else if (op == SCATTER)
            j = rank;
        else if (op == ALLTOALL)
            r = i, j = rank;
        for (long k = 0; k < size; k++)
            if (buf[i * size + k] != pat(r, j, k))
                return 0;
    }
    return 1;
}

static int check(struct bufs *b, int op)
{
    double ranks = (double)nranks * (nranks + 1) / 2;
    switch (op) {
    case BCAST:
        return blocks_ok(b->send, 1, b->size, op);
    case REDUCE:
    case ALLREDUCE:
        if (op == REDUCE && rank != 0)
            return 1;
        for (long i = 0; i < b->count; i++)
            if (b->frecv[i] != ranks * (double)(i % 7 + 1))
                return 0;
        return 1;
    case GATHER:
        return rank != 0 || blocks_ok(b->recv, nranks, b->size, op);
    case SCATTER:
        return blocks_ok(b->recv, 1, b->size, op);
    case ALLGATHER:
    case ALLTOALL:
        return blocks_ok(b->recv, nranks, b->size, op);
    }
    return 1;
}

/* Returns 0 if the check failed. */
static int measure(int op, long size)
{
    long iters = iters_for(size), warmup = warmup_for(size), batch = batch_for(size);
    double slot = time_limit / nsizes;
    double *times = malloc(sizeof(double) * (size_t)(iters + 2));
    long ntimes = 0, done = 0;
    struct bufs b;
    setup(&b, op, size);

    double v[2] = {0, 0}, fastest = -1;
    separator(v);
    double start = now_s();
    for (long i = 0; i < warmup; i++) {
        double t0 = now_s();
        call(&b, op);
        double t1 = now_s();
        v[0] = t1 - t0;
        v[1] = t1 - start;
        separator(v);
        if (fastest < 0 || v[0] < fastest)
            fastest = v[0];
        if (v[1] > slot / 2)
            break;
    }
    /* A batch takes at most a tenth of the time share (when calls collapse to ms). */
    if (fastest > 0 && (double)batch > slot / 10 / fastest) {
        batch = (long)(slot / 10 / fastest);
        if (batch < 1)
            batch = 1;
    }
    while (done < iters) {
        long k = iters - done < batch ? iters - done : batch;
        double t0 = now_s();
        for (long i = 0; i < k; i++)
            call(&b, op);
        double t1 = now_s();
        v[0] = (t1 - t0) / (double)k;
        v[1] = t1 - start;
        separator(v);
        times[ntimes++] = v[0] * 1e6;
        done += k;
        if (v[1] > slot && done >= (iters < MIN_ITERS ? iters : MIN_ITERS))
            break;
    }

    poison(&b, op);
    call(&b, op);
    v[0] = check(&b, op) ? 0.0 : (double)(rank + 1);
    v[1] = 0;
    separator(v);
    teardown(&b);
    if (v[0] != 0.0) {
        if (rank == 0) {
            printf("coll_error op=%s size=%ld n=%d wrong result on rank %d\n", op_names[op],
                   size, nranks, (int)v[0] - 1);
            fflush(stdout);
        }
        free(times);
        return 0;
    }
    double lo = times[0], hi = times[0];
    for (long i = 1; i < ntimes; i++) {
        if (times[i] < lo)
            lo = times[i];
        if (times[i] > hi)
            hi = times[i];
    }
    if (rank == 0) {
        printf("coll op=%s size=%ld n=%d iters=%ld median_us=%.3f min_us=%.3f max_us=%.3f\n",
               op_names[op], size, nranks, done, median(times, (size_t)ntimes), lo, hi);
        fflush(stdout);
    }
    free(times);
    return 1;
}

int main(int argc, char **argv)
{
    long sizes[MAX_SIZES] = {8, 1024, 65536, 1048576};
    int ops[NOPS], nops = NOPS, failed = 0;
    for (int i = 0; i < NOPS; i++)
        ops[i] = i;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        char *a = argv[i], *s = argv[++i], *end;
        if (!strcmp(a, "--sizes")) {
            nsizes = 0;
            while (*s && nsizes < MAX_SIZES) {
                sizes[nsizes++] = strtol(s, &end, 10);
                if (end == s || sizes[nsizes - 1] < 0)
                    usage();
                s = (*end == ',') ? end + 1 : end;
            }
        } else if (!strcmp(a, "--ops")) {
            nops = 0;
            for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
                int k = 0;
                while (k < NOPS && strcmp(tok, op_names[k]))
                    k++;
                if (k == NOPS || nops == NOPS)
                    usage();
                ops[nops++] = k;
            }
        } else if (!strcmp(a, "--iters")) {
            iters_arg = atol(s);
        } else if (!strcmp(a, "--warmup")) {
            warmup_arg = atol(s);
        } else if (!strcmp(a, "--time-limit")) {
            time_limit = atof(s);
        } else if (!strcmp(a, "--batch")) {
            batch_arg = atol(s);
        } else {
            usage();
        }
    }
    if (nsizes < 1 || iters_arg == 0 || batch_arg == 0 || !(time_limit > 0))
        usage();

    for (int o = 0; o < nops; o++) {
        if (ops[o] == BARRIER) {
            failed += !measure(BARRIER, 0);
            continue;
        }
        for (int s = 0; s < nsizes; s++)
            failed += !measure(ops[o], sizes[s]);
    }
    MPI_Finalize();
    return failed ? 1 : 0;
}
