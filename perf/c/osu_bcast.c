/*
 * osu_bcast.c - MPI_Bcast latency, OSU osu_bcast methodology.
 *
 * Any number of ranks.  For each size 1, 2, 4, ... MAXBYTES bytes (default
 * 1 MiB), MPI_Bcast(MPI_CHAR) from root 0 on MPI_COMM_WORLD.
 * Defaults: 1000 iterations + 200 warm-up up to 8 KiB, 100 + 10 above, but
 * bounded by a time budget per size (-t, default 1 s, for the calls and the
 * barriers between them; see budget_iters in osu_common.h).  As in OSU,
 * each call is timed alone and followed by an untimed MPI_Barrier
 * (time_separated), so that the root cannot run ahead of its receivers.
 * Reported: average over ranks of each rank's average time per call (us).
 * The first (probe) call of every size is checked byte by byte on every rank.
 *
 * Usage: mpirun -np N osu_bcast [-m MAXBYTES] [-i ITERS] [-t SECONDS]
 * Output (contract shared with shmpi's perf/rust/osu_bcast.rs):
 *   "# ..." comment lines, then "# Size       Avg Latency(us)",
 *   then printf("%-10zu%18.2f\n", size_bytes, avg_us) per size.
 */
#include "osu_common.h"

static unsigned char *buf;
static int count;

static void op_bcast(void)
{
    MPI_Bcast(buf, count, MPI_CHAR, 0, MPI_COMM_WORLD);
}

static void op_bcast_barrier(void)
{
    op_bcast();
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The byte the root sends at offset i of a size-byte broadcast (the same as
 * perf/rust/osu_bcast.rs). */
static unsigned char pattern(size_t i, size_t size)
{
    return (unsigned char)((i * 7 + size) & 0xff);
}

int main(int argc, char **argv)
{
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    struct options o = {.max_size = (size_t)1 << 20, .iters = 0, .budget_s = 1.0};
    parse_options(argc, argv, "osu_bcast", rank, OPT_BUDGET, &o);
    struct iters it = scale_iters(o.iters, 1000, 200, 100, 10);
    if (o.max_size < 1) o.max_size = 1;

    buf = alloc_buffer(o.max_size, 0);

    if (rank == 0) {
        printf("# OSU MPI Broadcast Latency Test (shmpi perf/c/osu_bcast.c)\n");
        print_library();
        printf("# ranks: %d, datatype: MPI_CHAR, root: 0, budget: %.2f s per size\n", nranks,
               o.budget_s);
        printf("# Size       Avg Latency(us)\n");
        fflush(stdout);
    }

    for (size_t size = 1; size <= o.max_size; size *= 2) {
        long iters = size <= LARGE_MESSAGE_SIZE ? it.small : it.large;
        long skip = size <= LARGE_MESSAGE_SIZE ? it.skip : it.skip_large;
        count = (int)size;

        /* correctness: one call, the receivers' buffers cleared first */
        for (size_t i = 0; i < size; i++) buf[i] = rank == 0 ? pattern(i, size) : 0;
        op_bcast();
        for (size_t i = 0; i < size; i++)
            if (buf[i] != pattern(i, size)) check_failed("osu_bcast", size, i);

        MPI_Barrier(MPI_COMM_WORLD);
        /* the budget bounds whole iterations, barrier included (MPICH busy-polls:
         * tens of ms per barrier on oversubscribed cores) */
        budget_iters(op_bcast_barrier, o.budget_s, &iters, &skip);
        double avg = time_separated(op_bcast, iters, skip, nranks);
        if (rank == 0) {
            printf("%-10zu%18.2f\n", size, avg);
            fflush(stdout);
        }
    }

    free(buf);
    MPI_Finalize();
    return 0;
}
