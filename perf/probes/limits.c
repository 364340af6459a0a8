/*
 * (Copied unchanged below this note from /work/shared/anchors/limits.c, the reference
 * measurements of this machine; compare.sh builds it to record `limits c2c` before
 * every run.)
 *
 * limits.c - physical floors for a shared-memory message-passing runtime.
 *
 *  (a) cache-line ping-pong between two processes (fork) over a MAP_SHARED
 *      anonymous mapping, each pinned to a different core; reported as
 *      one-way latency in ns.  Two variants:
 *        1 line : both sides write the same counter (turn-taking),
 *        2 lines: each side owns a line (like SPSC ring head/tail).
 *  (b) single-core memcpy bandwidth at 4 KiB, 64 KiB, 1 MiB, 16 MiB, 256 MiB.
 *  (c) futex wake + wait between two processes on a shared word (no
 *      FUTEX_PRIVATE_FLAG), the waiter always sleeping in FUTEX_WAIT;
 *      one-way ns, on different cores and on the same core; plus the cost of
 *      a FUTEX_WAKE with nobody waiting.
 *  (d) sched_yield cost with nothing else runnable, and a same-core
 *      ping-pong where the waiting process spins on sched_yield (the
 *      hand-off cost an oversubscribed, yielding runtime pays).
 *
 * Every figure is the median of RUNS runs (min and max shown too).
 * Usage: limits [runs (default 7)]
 *        limits c2c   - only a quick (a) 1-line figure, one number in ns; the
 *                       run-all.sh script records it before every MPI run,
 *                       because on a VM it changes with where the host puts
 *                       the two vCPUs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static void report(const char *name, double *v, int n, const char *unit)
{
    qsort(v, n, sizeof(double), cmp_double);
    printf("%-44s median %10.2f  min %10.2f  max %10.2f  %s\n", name, v[n / 2], v[0], v[n - 1],
           unit);
    fflush(stdout);
}

static long futex(volatile uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

/* Shared page layout: separate 64-byte lines. */
struct shared {
    volatile uint64_t line_a __attribute__((aligned(64)));
    volatile uint64_t line_b __attribute__((aligned(64)));
    volatile uint32_t fword __attribute__((aligned(64)));
    volatile uint64_t start __attribute__((aligned(64)));
};

static struct shared *shm;

/* kinds of two-process ping-pong */
enum { PP_ONE_LINE, PP_TWO_LINES, PP_FUTEX, PP_YIELD };

static void side_a(int kind, long rounds)
{
    for (long i = 0; i < rounds; i++) {
        uint64_t ping = 2 * i + 1, pong = 2 * i + 2;
        switch (kind) {
        case PP_ONE_LINE:
            __atomic_store_n(&shm->line_a, ping, __ATOMIC_RELEASE);
            while (__atomic_load_n(&shm->line_a, __ATOMIC_ACQUIRE) != pong) {
            }
            break;
        case PP_TWO_LINES:
            __atomic_store_n(&shm->line_a, ping, __ATOMIC_RELEASE);
            while (__atomic_load_n(&shm->line_b, __ATOMIC_ACQUIRE) != pong) {
            }
            break;
        case PP_FUTEX:
            __atomic_store_n(&shm->fword, (uint32_t)ping, __ATOMIC_SEQ_CST);
            futex(&shm->fword, FUTEX_WAKE, 1);
            while (__atomic_load_n(&shm->fword, __ATOMIC_SEQ_CST) != (uint32_t)pong)
                futex(&shm->fword, FUTEX_WAIT, (uint32_t)ping);
            break;
        case PP_YIELD:
            __atomic_store_n(&shm->line_a, ping, __ATOMIC_RELEASE);
            while (__atomic_load_n(&shm->line_a, __ATOMIC_ACQUIRE) != pong)
                sched_yield();
            break;
        }
    }
}

static void side_b(int kind, long rounds)
{
    for (long i = 0; i < rounds; i++) {
        uint64_t ping = 2 * i + 1, pong = 2 * i + 2;
        switch (kind) {
        case PP_ONE_LINE:
            while (__atomic_load_n(&shm->line_a, __ATOMIC_ACQUIRE) != ping) {
            }
            __atomic_store_n(&shm->line_a, pong, __ATOMIC_RELEASE);
            break;
        case PP_TWO_LINES:
            while (__atomic_load_n(&shm->line_a, __ATOMIC_ACQUIRE) != ping) {
            }
            __atomic_store_n(&shm->line_b, pong, __ATOMIC_RELEASE);
            break;
        case PP_FUTEX:
            while (__atomic_load_n(&shm->fword, __ATOMIC_SEQ_CST) != (uint32_t)ping)
                futex(&shm->fword, FUTEX_WAIT, (uint32_t)(ping - 1));
            __atomic_store_n(&shm->fword, (uint32_t)pong, __ATOMIC_SEQ_CST);
            futex(&shm->fword, FUTEX_WAKE, 1);
            break;
        case PP_YIELD:
            while (__atomic_load_n(&shm->line_a, __ATOMIC_ACQUIRE) != ping)
                sched_yield();
            __atomic_store_n(&shm->line_a, pong, __ATOMIC_RELEASE);
            break;
        }
    }
}

/* One run: fork a partner, both pinned, returns one-way latency in ns. */
static double pingpong_run(int kind, int cpu_a, int cpu_b, long rounds)
{
    shm->line_a = 0;
    shm->line_b = 0;
    shm->fword = 0;
    shm->start = 0;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        pin(cpu_b);
        __atomic_store_n(&shm->start, 1, __ATOMIC_RELEASE);
        side_b(kind, rounds);
        _exit(0);
    }
    pin(cpu_a);
    while (__atomic_load_n(&shm->start, __ATOMIC_ACQUIRE) != 1)
        sched_yield();
    double t0 = now_ns();
    side_a(kind, rounds);
    double t1 = now_ns();
    int st;
    waitpid(pid, &st, 0);
    return (t1 - t0) / (2.0 * rounds);
}

static void pingpong_test(const char *name, int kind, int cpu_a, int cpu_b, long rounds)
{
    double v[64];
    pingpong_run(kind, cpu_a, cpu_b, rounds / 10); /* warm-up */
    for (int r = 0; r < RUNS; r++) v[r] = pingpong_run(kind, cpu_a, cpu_b, rounds);
    report(name, v, RUNS, "ns one-way");
}

static void memcpy_test(size_t size)
{
    char *src = aligned_alloc(4096, size), *dst = aligned_alloc(4096, size);
    if (!src || !dst) {
        perror("alloc");
        exit(1);
    }
    memset(src, 1, size);
    memset(dst, 2, size);
    /* ~1 GiB copied per run, at least 4 copies */
    long reps = (long)((1UL << 30) / size);
    if (reps < 4) reps = 4;
    double v[64];
    for (int r = 0; r < RUNS; r++) {
        memcpy(dst, src, size); /* warm */
        double t0 = now_ns();
        for (long i = 0; i < reps; i++) {
            memcpy(dst, src, size);
            __asm__ volatile("" ::: "memory");
        }
        double t1 = now_ns();
        v[r] = (double)size * reps / (t1 - t0); /* bytes per ns = GB/s */
    }
    char name[64];
    if (size >= (1 << 20))
        snprintf(name, sizeof name, "(b) memcpy %zu MiB", size >> 20);
    else
        snprintf(name, sizeof name, "(b) memcpy %zu KiB", size >> 10);
    report(name, v, RUNS, "GB/s (1e9 B/s, bytes copied)");
    if (dst[size - 1] != 1) printf("memcpy check failed\n");
    free(src);
    free(dst);
}

static void futex_wake_nobody_test(void)
{
    double v[64];
    long n = 1000000;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) futex(&shm->fword, FUTEX_WAKE, 1);
        v[r] = (now_ns() - t0) / n;
    }
    report("(c) FUTEX_WAKE with no waiter (syscall)", v, RUNS, "ns per call");
}

static void yield_test(void)
{
    double v[64];
    long n = 1000000;
    pin(0);
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) sched_yield();
        v[r] = (now_ns() - t0) / n;
    }
    report("(d) sched_yield, nothing else runnable", v, RUNS, "ns per call");
}

static void reset_affinity(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < n; i++) CPU_SET(i, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "c2c") == 0) {
        shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shm == MAP_FAILED) return 1;
        double v[5];
        for (int r = 0; r < 5; r++) v[r] = pingpong_run(PP_ONE_LINE, 0, 1, 100000);
        qsort(v, 5, sizeof(double), cmp_double);
        printf("%.1f\n", v[2]);
        return 0;
    }
    if (argc > 1) RUNS = atoi(argv[1]);
    if (RUNS < 1) RUNS = 1;
    if (RUNS > 64) RUNS = 64;

    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("# limits: %ld online cpus, %d runs per figure (median/min/max)\n", ncpu, RUNS);
    fflush(stdout);
    int other = ncpu > 1 ? 1 : 0;

    pingpong_test("(a) cache line ping-pong, 1 line, cpu0<->1", PP_ONE_LINE, 0, other, 1000000);
    pingpong_test("(a) cache line ping-pong, 2 lines, cpu0<->1", PP_TWO_LINES, 0, other, 1000000);
    reset_affinity();

    size_t sizes[] = {4096, 65536, 1 << 20, 16 << 20, 256 << 20};
    pin(0);
    for (int i = 0; i < 5; i++) memcpy_test(sizes[i]);
    reset_affinity();

    pingpong_test("(c) futex wake+wait, cpu0<->1", PP_FUTEX, 0, other, 20000);
    pingpong_test("(c) futex wake+wait, same cpu0", PP_FUTEX, 0, 0, 100000);
    futex_wake_nobody_test();
    reset_affinity();

    yield_test();
    pingpong_test("(d) sched_yield hand-off, same cpu0", PP_YIELD, 0, 0, 100000);
    pingpong_test("(d) sched_yield spin, cpu0<->1", PP_YIELD, 0, other, 1000000);
    return 0;
}
