/*
 * coll_floor.c - the least time an allgather or alltoall of B bytes per rank can take
 * on this machine: the copies every rank must make, timed with nothing else, along the
 * two paths a runtime without a kernel module has between private buffers:
 *
 *   cma   each rank copies its own block into its receive buffer (memcpy) and reads
 *         every other rank's block from that rank's memory (process_vm_readv): the
 *         single-copy path of shmpi, Open MPI's `vader` with CMA, and MPICH;
 *   shm   each rank copies what it sends into its region of a shared segment (its
 *         block for an allgather, the n-1 blocks for the others for an alltoall), and
 *         after a barrier copies its own block and every other rank's from the segment
 *         (memcpy): the two-copy path.
 *
 * N processes run at once, each pinned to CPU i % ncpu; each reads the peers' buffers
 * at the address of its own (allocated before the fork, written after it).
 *
 * Usage: coll_floor [-a] [-b] [-i] [-z] N BYTES [BYTES...]
 *   -a  alltoall: rank j's block for this rank differs from its block for the others
 *       (cma reads the same amount; shm copies n-1 blocks in instead of one)
 *   -b  a barrier after each call (waiting with sched_yield), so that every process
 *       must run for every call, as in a real collective; without it each process
 *       loops on its own, caches warm, and the figure is lower still (shm always has
 *       its barrier between the copies in and out)
 *   -i  in place: no block of its own to copy (mpi4py's demo/osu_allgather.py)
 *   -z  the send buffers are never written, so all their pages are the kernel's zero
 *       page, as in mpi4py's demo/osu_*.py, whose buffers are fresh mmaps
 * Prints µs per call for each path, the median of 7 runs (min-max); a run is about
 * 256 MiB read per process, timed from the start to the last process's end.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 7
#define MAXN 64

struct ctl {
    volatile int go;
    volatile int ready;
    volatile int done;
    volatile long arrived; /* arrivals at the barriers so far */
    volatile int pids[MAXN];
    volatile double end[MAXN];
    volatile double start;
};

static int alltoall, barrier, in_place, zero;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The k-th barrier of n processes (k from 1). */
static void barrier_wait(struct ctl *c, long k, int n)
{
    __sync_fetch_and_add(&c->arrived, 1);
    while (c->arrived < k * n) sched_yield();
}

/* One run of `iters` calls on each of n processes along `shm` or cma; µs per call. */
static double run(int n, size_t bytes, long iters, int shm)
{
    struct ctl *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    /* Private: every rank's send buffer holds a block for each rank. */
    size_t sbytes = bytes * n;
    char *send = mmap(NULL, sbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *recv = mmap(NULL, sbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* Shared: each rank's region holds what it sends (n blocks at most). */
    char *seg = shm ? mmap(NULL, sbytes * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0) : NULL;
    if (c == MAP_FAILED || send == MAP_FAILED || recv == MAP_FAILED || seg == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < n; i++) {
        if (fork() == 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(i % ncpu, &set);
            sched_setaffinity(0, sizeof set, &set);
            if (!zero) memset(send, i + 1, sbytes);
            memset(recv, 0, sbytes);
            c->pids[i] = getpid();
            __sync_fetch_and_add(&c->ready, 1);
            while (!c->go) sched_yield();
            char *region = seg ? seg + (size_t)i * sbytes : NULL;
            long k = 0;
            for (long it = 0; it < iters; it++) {
                /* This rank's block for rank j: block j of send (alltoall) or block 0. */
#define BLOCK(j) (send + (alltoall ? (size_t)(j) * bytes : 0))
                if (shm) {
                    if (alltoall) {
                        for (int j = 0; j < n; j++)
                            if (j != i) memcpy(region + (size_t)j * bytes, BLOCK(j), bytes);
                    } else {
                        memcpy(region, send, bytes);
                    }
                    barrier_wait(c, ++k, n);
                }
                for (int j = 0; j < n; j++) {
                    char *out = recv + (size_t)j * bytes;
                    if (j == i) {
                        if (!in_place) memcpy(out, BLOCK(i), bytes);
                    } else if (shm) {
                        memcpy(out, seg + (size_t)j * sbytes + (alltoall ? (size_t)i * bytes : 0), bytes);
                    } else {
                        struct iovec l = {out, bytes}, r = {BLOCK(i), bytes};
                        if (process_vm_readv(c->pids[j], &l, 1, &r, 1, 0) != (ssize_t)bytes) {
                            perror("process_vm_readv");
                            _exit(1);
                        }
                    }
                }
#undef BLOCK
                __asm__ volatile("" ::: "memory");
                /* No rank may write its buffers again while another still reads them. */
                if (barrier || shm) barrier_wait(c, ++k, n);
            }
            for (int j = 0; j < n; j++)
                if (j != i && recv[(size_t)j * bytes] != (zero ? 0 : j + 1)) {
                    fprintf(stderr, "check failed\n");
                    _exit(1);
                }
            c->end[i] = now_us();
            /* The others may still read this process's buffer. */
            __sync_fetch_and_add(&c->done, 1);
            while (c->done < n) sched_yield();
            _exit(0);
        }
    }
    while (c->ready < n) sched_yield();
    c->start = now_us();
    c->go = 1;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st;
        wait(&st);
        bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    if (bad) exit(1);
    double last = 0;
    for (int i = 0; i < n; i++)
        if (c->end[i] > last) last = c->end[i];
    double per = (last - c->start) / iters;
    munmap(c, sizeof *c);
    munmap(send, sbytes);
    munmap(recv, sbytes);
    if (seg) munmap(seg, sbytes * n);
    return per;
}

int main(int argc, char **argv)
{
    for (; argc > 1 && argv[1][0] == '-'; argv++, argc--) {
        const char *f = argv[1];
        if (strcmp(f, "-a") == 0)
            alltoall = 1;
        else if (strcmp(f, "-b") == 0)
            barrier = 1;
        else if (strcmp(f, "-i") == 0)
            in_place = 1;
        else if (strcmp(f, "-z") == 0)
            zero = 1;
        else
            argc = 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: coll_floor [-a] [-b] [-i] [-z] N BYTES [BYTES...]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    if (n < 2 || n > MAXN) {
        fprintf(stderr, "N: 2 to %d\n", MAXN);
        return 2;
    }
    printf("# coll_floor %s%s%s%s: %d processes on %ld cpus, µs per call (median of %d runs, min-max)\n",
           alltoall ? "alltoall" : "allgather", barrier ? " -b" : "", in_place ? " -i" : "",
           zero ? " -z" : "", n, sysconf(_SC_NPROCESSORS_ONLN), RUNS);
    for (int a = 2; a < argc; a++) {
        size_t bytes = strtoull(argv[a], NULL, 0);
        if (bytes == 0) {
            fprintf(stderr, "BYTES: a positive number, not %s\n", argv[a]);
            return 2;
        }
        /* about 256 MiB read per process and run, at least 20 calls */
        long iters = (long)((256UL << 20) / (bytes * n));
        if (iters < 20) iters = 20;
        for (int shm = 0; shm < 2; shm++) {
            double v[RUNS];
            run(n, bytes, iters / 10 + 1, shm); /* warm-up */
            for (int r = 0; r < RUNS; r++) v[r] = run(n, bytes, iters, shm);
            qsort(v, RUNS, sizeof v[0], cmp);
            printf("%8zu B  %s  %10.2f  (%.2f-%.2f)\n", bytes, shm ? "shm" : "cma", v[RUNS / 2], v[0],
                   v[RUNS - 1]);
            fflush(stdout);
        }
    }
    return 0;
}
