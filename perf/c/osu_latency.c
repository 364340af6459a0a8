/*
 * osu_latency.c - point-to-point latency, OSU osu_latency methodology.
 *
 * Exactly 2 ranks.  For each size 0, 1, 2, 4, ... MAXBYTES (default 4 MiB):
 * rank 0 does MPI_Send + MPI_Recv, rank 1 MPI_Recv + MPI_Send, `skip` warm-up
 * round trips then `iters` timed ones; one-way latency = time / (2 * iters).
 * Defaults: 10000 iterations + 1000 warm-up up to 8 KiB, 1000 + 100 above.
 * Before timing each size, one round trip with patterned data is verified.
 *
 * Usage: mpirun -np 2 osu_latency [-m MAXBYTES] [-i ITERS]
 * Output (contract shared with shmpi's perf/rust/osu_latency.rs):
 *   "# ..." comment lines, then "# Size          Latency (us)",
 *   then printf("%-10zu%18.3f\n", size, latency_us) per size.
 */
#include "osu_common.h"

int main(int argc, char **argv)
{
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    struct options o = {.max_size = (size_t)4 << 20, .iters = 0, .budget_s = 0};
    parse_options(argc, argv, "osu_latency", rank, 0, &o);
    struct iters it = scale_iters(o.iters, 10000, 1000, 1000, 100);

    if (nranks != 2) {
        if (rank == 0) fprintf(stderr, "osu_latency needs exactly 2 ranks\n");
        MPI_Finalize();
        return 2;
    }
    int peer = 1 - rank;
    unsigned char *sbuf = alloc_buffer(o.max_size, 'a');
    unsigned char *rbuf = alloc_buffer(o.max_size, 'b');

    if (rank == 0) {
        printf("# OSU MPI Latency Test (shmpi perf/c/osu_latency.c)\n");
        print_library();
        printf("# Size          Latency (us)\n");
        fflush(stdout);
    }

    for (size_t size = 0; size <= o.max_size; size = size ? size * 2 : 1) {
        long iters = size <= LARGE_MESSAGE_SIZE ? it.small : it.large;
        long skip = size <= LARGE_MESSAGE_SIZE ? it.skip : it.skip_large;
        int n = (int)size;

        /* data check: rank 0 -> rank 1 with seed 0, back with seed 1 */
        fill_pattern(sbuf, size, size, rank);
        memset(rbuf, 0, size);
        if (rank == 0) {
            MPI_Send(sbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
            MPI_Recv(rbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(rbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(sbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
        }
        size_t bad = verify_pattern(rbuf, size, size, peer);
        if (bad != size) check_failed("osu_latency", size, bad);

        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = 0.0;
        if (rank == 0) {
            for (long i = 0; i < iters + skip; i++) {
                if (i == skip) t0 = MPI_Wtime();
                MPI_Send(sbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
                MPI_Recv(rbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            }
            double lat = (MPI_Wtime() - t0) * 1e6 / (2.0 * (double)iters);
            printf("%-10zu%18.3f\n", size, lat);
            fflush(stdout);
        } else {
            for (long i = 0; i < iters + skip; i++) {
                MPI_Recv(rbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(sbuf, n, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
            }
        }
        if (o.max_size == 0) break;
    }

    free(sbuf);
    free(rbuf);
    MPI_Finalize();
    return 0;
}
