/*
 * osu_common.h - shared helpers for the C reference benchmarks in perf/c/.
 *
 * The six programs (osu_latency, osu_bw, osu_bibw, osu_allreduce,
 * osu_barrier, osu_bcast) follow the OSU micro-benchmark methodology and print the exact
 * output format that shmpi's Rust examples of the same names print, so that
 * scripts/compare.sh can put them side by side.  See perf/README.md for the
 * format contract.
 *
 * Command-line options understood by every program (all optional):
 *   -m MAXBYTES  largest message size (default: per program, 4 MiB / 8 MiB);
 *                accepts a plain number or a K/M suffix (binary: 1K = 1024)
 *   -i ITERS     timed iterations for small messages; the other counts
 *                (warm-up, large-message iterations and warm-up) are scaled
 *                by the same factor as the defaults, e.g. osu_latency -i 1000
 *                runs 1000 + 100 warm-up up to 8 KiB and 100 + 10 above
 *   -t SECONDS   (osu_allreduce, osu_barrier, osu_bcast only) time budget per size:
 *                iterations = min(ITERS, SECONDS / probed time per call), >= 3
 *   -h           usage
 */
#ifndef OSU_COMMON_H
#define OSU_COMMON_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sizes above this use the "large" iteration counts (as in OSU). */
#define LARGE_MESSAGE_SIZE 8192

struct options {
    size_t max_size;     /* -m */
    long iters;          /* -i: small-message timed iterations (<= 0: default) */
    double budget_s;     /* -t */
    int distinct;        /* -d: each receive of a window into its own slice */
    int persistent;      /* -p: persistent requests (MPI_Send_init/MPI_Recv_init, MPI_Startall) */
    int blocking;        /* -b: blocking MPI_Send/MPI_Recv, one after another */
};

/* What parse_options accepts beside -m, -i and -h. */
#define OPT_BUDGET 1   /* -t SECONDS_PER_SIZE */
#define OPT_DISTINCT 2 /* -d */
#define OPT_PERSISTENT 4 /* -p */
#define OPT_BLOCKING 8 /* -b */

/* Parses "123", "64K", "4M", "1G" (binary multiples). Returns 0 on error. */
static inline int parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s) return 0;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end != '\0') return 0;
    *out = (size_t)v;
    return 1;
}

/*
 * Parses the common options.  On -h or a bad option, rank 0 prints the usage
 * and every rank finalizes and exits (status 0 for -h, 2 otherwise).
 */
static inline void parse_options(int argc, char **argv, const char *name, int rank,
                                 int flags, struct options *o)
{
    int opt, bad = 0, help = 0;
    opterr = rank == 0; /* one complaint, not one per rank */
    while ((opt = getopt(argc, argv, "m:i:t:dpbh")) != -1) {
        switch (opt) {
        case 'm':
            if (!parse_size(optarg, &o->max_size)) bad = 1;
            break;
        case 'i':
            o->iters = strtol(optarg, NULL, 10);
            if (o->iters < 1) bad = 1;
            break;
        case 't':
            o->budget_s = strtod(optarg, NULL);
            if (!(flags & OPT_BUDGET) || o->budget_s <= 0) bad = 1;
            break;
        case 'd':
            o->distinct = 1;
            if (!(flags & OPT_DISTINCT)) bad = 1;
            break;
        case 'p':
            o->persistent = 1;
            if (!(flags & OPT_PERSISTENT)) bad = 1;
            break;
        case 'b':
            o->blocking = 1;
            if (!(flags & OPT_BLOCKING)) bad = 1;
            break;
        case 'h':
            help = 1;
            break;
        default:
            bad = 1;
        }
    }
    if (optind < argc || (o->blocking && (o->persistent || o->distinct))) bad = 1;
    if (bad || help) {
        if (rank == 0)
            fprintf(bad ? stderr : stdout,
                    "usage: %s [-m MAXBYTES] [-i ITERS]%s%s%s%s [-h]\n", name,
                    (flags & OPT_BUDGET) ? " [-t SECONDS_PER_SIZE]" : "",
                    (flags & OPT_DISTINCT) ? " [-d (the window's receives into 64 distinct slices)]" : "",
                    (flags & OPT_PERSISTENT) ? " [-p (persistent requests, started each window)]" : "",
                    (flags & OPT_BLOCKING) ? " [-b (blocking sends and receives, one after another)]" : "");
        MPI_Finalize();
        exit(bad ? 2 : 0);
    }
}

/*
 * Iteration counts: def_small/def_skip for sizes <= 8 KiB and
 * def_large/def_skip_large above.  With -i N every default is scaled by
 * N / def_small (iterations at least 1, warm-up at least 0).
 */
struct iters {
    long small, skip, large, skip_large;
};

static inline struct iters scale_iters(long user, long def_small, long def_skip,
                                       long def_large, long def_skip_large)
{
    struct iters it = {def_small, def_skip, def_large, def_skip_large};
    if (user > 0) {
        it.small = user;
        it.skip = user * def_skip / def_small;
        it.large = user * def_large / def_small;
        it.skip_large = user * def_skip_large / def_small;
        if (it.large < 1) it.large = 1;
    }
    return it;
}

/* Page-aligned, touched buffer of at least one byte. */
static inline void *alloc_buffer(size_t size, int fill)
{
    void *p = NULL;
    if (size == 0) size = 1;
    if (posix_memalign(&p, 4096, size) != 0) {
        fprintf(stderr, "allocation of %zu bytes failed\n", size);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    memset(p, fill, size);
    return p;
}

/* First line of MPI_Get_library_version (for the header comment). */
static inline void print_library(void)
{
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(lib, &len);
    char *nl = strchr(lib, '\n');
    if (nl) *nl = '\0';
    printf("# library: %s\n", lib);
}

/* Aborts the whole job with a message (for failed data checks). */
static inline void check_failed(const char *bench, size_t size, size_t at)
{
    fprintf(stderr, "%s: data check FAILED at size %zu, byte %zu\n", bench, size, at);
    MPI_Abort(MPI_COMM_WORLD, 3);
}

/* Fills n bytes with a pattern that depends on the size and a seed. */
static inline void fill_pattern(unsigned char *buf, size_t n, size_t size, int seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)((i * 7 + size + (size_t)seed * 13) & 0xff);
}

/* Returns the index of the first mismatch with fill_pattern, or n if none. */
static inline size_t verify_pattern(const unsigned char *buf, size_t n, size_t size, int seed)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != (unsigned char)((i * 7 + size + (size_t)seed * 13) & 0xff)) return i;
    return n;
}

/*
 * Time budget for collectives: oversubscribed runs (more ranks than cores)
 * can be 10^4 times slower than normal ones, so before timing a size every
 * rank times `probe` calls of op (these also warm up), the slowest rank's
 * time per call is agreed on with MPI_MAX, and
 *   iters = max(3, min(iters, budget_s / time_per_call)),
 *   skip  = min(skip, iters / 10).
 * All ranks derive the same counts.
 */
#define BUDGET_PROBE_CALLS 3

static inline void budget_iters(void (*op)(void), double budget_s, long *iters, long *skip)
{
    double t0 = MPI_Wtime();
    for (int i = 0; i < BUDGET_PROBE_CALLS; i++) op();
    double mine = (MPI_Wtime() - t0) / BUDGET_PROBE_CALLS, per_call;
    MPI_Allreduce(&mine, &per_call, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (per_call > 0 && budget_s / per_call < (double)*iters) *iters = (long)(budget_s / per_call);
    if (*iters < 3) *iters = 3;
    if (*skip > *iters / 10) *skip = *iters / 10;
}

/* Runs skip + iters calls of op; returns the average over ranks of each rank's
 * average time per timed call, in microseconds (valid on rank 0). */
static inline double time_collective(void (*op)(void), long iters, long skip, int nranks)
{
    for (long i = 0; i < skip; i++) op();
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (long i = 0; i < iters; i++) op();
    double mine = (MPI_Wtime() - t0) * 1e6 / (double)iters, sum = 0.0;
    MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    return sum / nranks;
}

/* Runs skip + iters calls of op, each timed alone and followed by an untimed
 * MPI_Barrier, as OSU's osu_bcast does (a root cannot run ahead of its
 * receivers); returns the average over ranks of each rank's average time per
 * timed call, in microseconds (valid on rank 0). */
static inline double time_separated(void (*op)(void), long iters, long skip, int nranks)
{
    double timed = 0.0;
    for (long i = 0; i < skip + iters; i++) {
        double t0 = MPI_Wtime();
        op();
        double t = MPI_Wtime() - t0;
        if (i >= skip) timed += t;
        MPI_Barrier(MPI_COMM_WORLD);
    }
    double mine = timed * 1e6 / (double)iters, sum = 0.0;
    MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    return sum / nranks;
}

#endif
