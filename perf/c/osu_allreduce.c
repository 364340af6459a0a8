/*
 * osu_allreduce.c - MPI_Allreduce latency, OSU osu_allreduce methodology.
 *
 * Any number of ranks.  For each size 8, 16, 32, ... MAXBYTES bytes (default
 * 8 MiB) = size/8 doubles, MPI_Allreduce(MPI_DOUBLE, MPI_SUM) on
 * MPI_COMM_WORLD with separate send and receive buffers.
 * Defaults: 1000 iterations + 200 warm-up up to 8 KiB, 100 + 10 above, but
 * bounded by a time budget per size (-t, default 1 s; see budget_iters in
 * osu_common.h) so that oversubscribed runs stay short.
 * Reported: average over ranks of each rank's average time per call (us).
 * The first (probe) call of every size is checked element by element.
 *
 * Usage: mpirun -np N osu_allreduce [-m MAXBYTES] [-i ITERS] [-t SECONDS]
 * Output (contract shared with shmpi's perf/rust/osu_allreduce.rs):
 *   "# ..." comment lines, then "# Size       Avg Latency(us)",
 *   then printf("%-10zu%18.2f\n", size_bytes, avg_us) per size.
 */
#include "osu_common.h"

static double *sbuf, *rbuf;
static int count;

static void op_allreduce(void)
{
    MPI_Allreduce(sbuf, rbuf, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

int main(int argc, char **argv)
{
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    struct options o = {.max_size = (size_t)8 << 20, .iters = 0, .budget_s = 1.0};
    parse_options(argc, argv, "osu_allreduce", rank, OPT_BUDGET, &o);
    struct iters it = scale_iters(o.iters, 1000, 200, 100, 10);
    if (o.max_size < sizeof(double)) o.max_size = sizeof(double);

    size_t max_count = o.max_size / sizeof(double);
    sbuf = alloc_buffer(max_count * sizeof(double), 0);
    rbuf = alloc_buffer(max_count * sizeof(double), 0);
    for (size_t i = 0; i < max_count; i++) sbuf[i] = rank + 1 + (double)(i % 7);

    if (rank == 0) {
        printf("# OSU MPI Allreduce Latency Test (shmpi perf/c/osu_allreduce.c)\n");
        print_library();
        printf("# ranks: %d, datatype: MPI_DOUBLE, op: MPI_SUM, budget: %.2f s per size\n",
               nranks, o.budget_s);
        printf("# Size       Avg Latency(us)\n");
        fflush(stdout);
    }

    const double base = nranks * (nranks + 1) / 2.0;
    for (size_t size = sizeof(double); size <= o.max_size; size *= 2) {
        long iters = size <= LARGE_MESSAGE_SIZE ? it.small : it.large;
        long skip = size <= LARGE_MESSAGE_SIZE ? it.skip : it.skip_large;
        count = (int)(size / sizeof(double));

        /* correctness: one call into a cleared buffer, checked everywhere */
        memset(rbuf, 0, size);
        op_allreduce();
        for (int i = 0; i < count; i++)
            if (rbuf[i] != base + nranks * (double)(i % 7))
                check_failed("osu_allreduce", size, (size_t)i * sizeof(double));

        MPI_Barrier(MPI_COMM_WORLD);
        budget_iters(op_allreduce, o.budget_s, &iters, &skip);
        double avg = time_collective(op_allreduce, iters, skip, nranks);
        if (rank == 0) {
            printf("%-10zu%18.2f\n", size, avg);
            fflush(stdout);
        }
    }

    free(sbuf);
    free(rbuf);
    MPI_Finalize();
    return 0;
}
