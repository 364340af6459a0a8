/*
 * osu_barrier.c - MPI_Barrier latency, OSU osu_barrier methodology.
 *
 * Any number of ranks.  Defaults: 1000 timed barriers + 200 warm-up, bounded
 * by a time budget (-t, default 1 s; see budget_iters in osu_common.h) so
 * that oversubscribed runs stay short.  Reported: average over ranks of each
 * rank's average time per barrier (us).  -m is accepted and ignored.
 *
 * Usage: mpirun -np N osu_barrier [-i ITERS] [-t SECONDS]
 * Output (contract shared with shmpi's perf/rust/osu_barrier.rs):
 *   "# ..." comment lines, then "# Avg Latency(us)",
 *   then one line printf("%.2f\n", avg_us).
 */
#include "osu_common.h"

static void op_barrier(void)
{
    MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv)
{
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    struct options o = {.max_size = 0, .iters = 0, .budget_s = 1.0};
    parse_options(argc, argv, "osu_barrier", rank, OPT_BUDGET, &o);
    struct iters it = scale_iters(o.iters, 1000, 200, 1000, 200);
    long iters = it.small, skip = it.skip;

    if (rank == 0) {
        printf("# OSU MPI Barrier Latency Test (shmpi perf/c/osu_barrier.c)\n");
        print_library();
        printf("# ranks: %d, budget: %.2f s\n", nranks, o.budget_s);
        printf("# Avg Latency(us)\n");
        fflush(stdout);
    }

    MPI_Barrier(MPI_COMM_WORLD);
    budget_iters(op_barrier, o.budget_s, &iters, &skip);
    double avg = time_collective(op_barrier, iters, skip, nranks);
    if (rank == 0) {
        printf("%.2f\n", avg);
        fflush(stdout);
    }

    MPI_Finalize();
    return 0;
}
