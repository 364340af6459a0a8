/*
 * stream_ceiling.c - the bandwidth ceiling of moving a message between two cores
 * through a shared buffer: the bare two-copy pipeline that shmpi's ring streaming
 * (and Open MPI's vader FIFO) implements, with no runtime around it.
 *
 * Two processes (fork) over one MAP_SHARED mapping, pinned to cpu 0 and cpu 1.
 * The sender copies each message from its private source buffer (one buffer,
 * reused, as osu_bw does) into the next free slot of a ring of SLOTS slots of CHUNK
 * bytes and publishes the slot with a release store of its sequence number; the
 * receiver waits for it, copies it into its private destination buffer (one, reused)
 * and hands the slot back with a release store. Messages follow one another with no
 * acknowledgement, so this is the upper bound of osu_bw's windows of 64.
 *
 * Reported: GB/s (1e9 bytes of message per second) for messages of 64 KiB to 4 MiB,
 * for chunks of 16, 64 and 128 KiB with a 1 MiB ring (shmpi's default ring, its
 * first and largest streaming chunks), median/min/max of RUNS runs.
 *
 * Second figure: both cores memcpy a private buffer of 4 or 8 MiB at the same time
 * (200 copies each, average per copy): the memory traffic of a large 2-rank
 * allreduce before any exchange, in which each rank reads its input and writes its
 * result (a 1 Mi-double allreduce has 32 MiB of such buffers, the size of the L3).
 *
 * Usage: stream_ceiling [runs (default 7)]
 * Build: gcc -O2 -o stream_ceiling perf/probes/stream_ceiling.c
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING (1u << 20)
#define MAX_SLOTS 64

struct ctl {
    _Alignas(128) uint64_t ready[MAX_SLOTS * 16]; /* slot i at [i * 16]: own line */
    _Alignas(128) uint64_t freed[MAX_SLOTS * 16];
    _Alignas(128) uint64_t start;
};

static struct ctl *ctl;
static char *ring;
static int RUNS = 7;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        perror("sched_setaffinity");
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One side of the stream: moves `msgs` messages of `size` bytes through the ring in
 * chunks of `chunk`. Sequence numbers count chunks from 1; chunk `seq` uses slot
 * (seq - 1) % slots. The sender waits until the slot's previous use is freed, copies
 * its private buffer in and publishes `ready`; the receiver waits for `ready`,
 * copies out into its private buffer and publishes `freed`. */
static void side(int sending, size_t size, size_t chunk, long msgs)
{
    unsigned slots = RING / chunk;
    char *buf = aligned_alloc(4096, size);
    memset(buf, sending ? 7 : 0, size);
    uint64_t *wait_on = sending ? ctl->freed : ctl->ready;
    uint64_t *publish = sending ? ctl->ready : ctl->freed;
    uint64_t seq = 0;
    for (long m = 0; m < msgs; m++) {
        for (size_t off = 0; off < size; off += chunk) {
            size_t len = size - off < chunk ? size - off : chunk;
            seq++;
            unsigned s = (seq - 1) % slots;
            uint64_t want = sending ? (seq > slots ? seq - slots : 0) : seq;
            while (__atomic_load_n(&wait_on[s * 16], __ATOMIC_ACQUIRE) < want)
                __builtin_ia32_pause();
            char *slot = ring + (size_t)s * chunk;
            if (sending)
                memcpy(slot, buf + off, len);
            else
                memcpy(buf + off, slot, len);
            __atomic_store_n(&publish[s * 16], seq, __ATOMIC_RELEASE);
        }
    }
    if (!sending && buf[size - 1] != 7) {
        fprintf(stderr, "stream_ceiling: bad data\n");
        exit(1);
    }
    free(buf);
}

/* One run: GB/s seen by the receiver. */
static double run(size_t size, size_t chunk, long msgs)
{
    memset(ctl, 0, sizeof *ctl);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        pin(0);
        __atomic_store_n(&ctl->start, 1, __ATOMIC_RELEASE);
        side(1, size, chunk, msgs);
        _exit(0);
    }
    pin(1);
    while (__atomic_load_n(&ctl->start, __ATOMIC_ACQUIRE) != 1) sched_yield();
    double t0 = now_ns();
    side(0, size, chunk, msgs);
    double t1 = now_ns();
    int st;
    waitpid(pid, &st, 0);
    return (double)size * msgs / (t1 - t0);
}

/* Both cpus copy `size` bytes between private buffers at once; returns the slower
 * cpu's average us per copy. */
static double dual_copy(size_t size)
{
    double *avg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (int p = 0; p < 2; p++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            exit(1);
        }
        if (pid == 0) {
            pin(p);
            char *a = aligned_alloc(4096, size), *b = aligned_alloc(4096, size);
            memset(a, 1, size);
            memset(b, 2, size);
            __atomic_add_fetch(&ctl->start, 1, __ATOMIC_ACQ_REL);
            while (__atomic_load_n(&ctl->start, __ATOMIC_ACQUIRE) < 2) __builtin_ia32_pause();
            double t0 = now_ns();
            for (int i = 0; i < 200; i++) {
                memcpy(b, a, size);
                __asm__ volatile("" : : "r"(b) : "memory");
            }
            avg[p] = (now_ns() - t0) / 200 / 1e3;
            _exit(b[size - 1] == 1 ? 0 : 1);
        }
    }
    int st, bad = 0;
    while (wait(&st) > 0) bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    if (bad) {
        fprintf(stderr, "stream_ceiling: copy failed\n");
        exit(1);
    }
    double r = avg[0] > avg[1] ? avg[0] : avg[1];
    munmap(avg, 4096);
    return r;
}

int main(int argc, char **argv)
{
    if (argc > 1) RUNS = atoi(argv[1]);
    if (RUNS < 1) RUNS = 1;
    if (RUNS > 64) RUNS = 64;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "stream_ceiling: needs 2 cpus\n");
        return 1;
    }
    ctl = mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ring = mmap(NULL, RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ctl == MAP_FAILED || ring == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(ring, 0, RING);
    printf("# stream_ceiling: two-copy stream cpu0 -> cpu1 through a %u KiB ring, "
           "%d runs per figure (median/min/max), GB/s of message\n",
           RING >> 10, RUNS);
    size_t chunks[] = {16 << 10, 64 << 10, 128 << 10};
    size_t sizes[] = {64 << 10, 256 << 10, 1 << 20, 4 << 20};
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < 4; i++) {
            size_t size = sizes[i], chunk = chunks[c];
            long msgs = (long)((2UL << 30) / size); /* 2 GiB per run */
            double v[64];
            run(size, chunk, msgs / 8); /* warm-up */
            for (int r = 0; r < RUNS; r++) v[r] = run(size, chunk, msgs);
            qsort(v, RUNS, sizeof(double), cmp_double);
            printf("chunk %4zu KiB  size %5zu KiB   median %7.2f  min %7.2f  max %7.2f GB/s\n",
                   chunk >> 10, size >> 10, v[RUNS / 2], v[0], v[RUNS - 1]);
            fflush(stdout);
        }
    }
    printf("# both cpus copying a private buffer at once (the memory traffic of a large "
           "2-rank allreduce before any exchange), us per copy, the slower cpu\n");
    size_t dsizes[] = {4 << 20, 8 << 20};
    for (int i = 0; i < 2; i++) {
        double v[64];
        for (int r = 0; r < RUNS; r++) {
            ctl->start = 0;
            v[r] = dual_copy(dsizes[i]);
        }
        qsort(v, RUNS, sizeof(double), cmp_double);
        printf("dual copy  size %5zu KiB   median %7.1f  min %7.1f  max %7.1f us\n",
               dsizes[i] >> 10, v[RUNS / 2], v[0], v[RUNS - 1]);
    }
    return 0;
}
