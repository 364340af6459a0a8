/*
 * osu_bibw.c - bidirectional bandwidth, OSU osu_bibw methodology.
 *
 * Exactly 2 ranks.  For each size 1, 2, 4, ... MAXBYTES (default 4 MiB) both
 * ranks post a window of 64 MPI_Irecv (into one receive buffer), then 64
 * MPI_Isend (from one send buffer) to each other, then MPI_Waitall on all 128.
 * Defaults: 100 iterations + 10 warm-up up to 8 KiB, 20 + 2 above.
 * Bandwidth = 2 * size * 64 * iters / time (bytes moved in both directions),
 * in MB/s (1 MB = 1e6 bytes), measured on rank 0.
 * After each size both ranks verify the received data.
 *
 * Usage: mpirun -np 2 osu_bibw [-m MAXBYTES] [-i ITERS] [-d] [-p]
 *   -d: the window's 64 receives each into its own slice of one 64 x size
 *       buffer (the memory shmpi's scoped `-w` form must use), not all into one.
 *   -p: not OSU's method but the same traffic with persistent requests: the 128
 *       requests are made once per size (MPI_Recv_init, MPI_Send_init) and each
 *       window starts them all (MPI_Startall) and waits for them (MPI_Waitall).
 * Output (contract shared with shmpi's perf/rust/osu_bibw.rs):
 *   "# ..." comment lines, then "# Size      Bandwidth (MB/s)",
 *   then printf("%-10zu%18.2f\n", size, mb_per_s) per size.
 */
#include "osu_common.h"

#define WINDOW 64

int main(int argc, char **argv)
{
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    struct options o = {.max_size = (size_t)4 << 20, .iters = 0, .budget_s = 0};
    parse_options(argc, argv, "osu_bibw", rank, OPT_DISTINCT | OPT_PERSISTENT, &o);
    struct iters it = scale_iters(o.iters, 100, 10, 20, 2);

    if (nranks != 2) {
        if (rank == 0) fprintf(stderr, "osu_bibw needs exactly 2 ranks\n");
        MPI_Finalize();
        return 2;
    }
    int peer = 1 - rank;
    unsigned char *sbuf = alloc_buffer(o.max_size, 'a');
    /* -d: one slice per receive of the window, the footprint of a program that may not
     * post two receives into one buffer (shmpi's scoped `-w` form, safe Rust). */
    size_t slices = o.distinct ? WINDOW : 1;
    unsigned char *rbuf = alloc_buffer(o.max_size * slices, 'b');
    MPI_Request req[2 * WINDOW];
    MPI_Status stat[2 * WINDOW];

    if (rank == 0) {
        printf("# OSU MPI Bi-Directional Bandwidth Test (shmpi perf/c/osu_bibw.c), window %d%s\n",
               WINDOW, o.persistent ? ", persistent requests" : "");
        print_library();
        printf("# Size      Bandwidth (MB/s)\n");
        fflush(stdout);
    }

    for (size_t size = 1; size <= o.max_size; size *= 2) {
        long iters = size <= LARGE_MESSAGE_SIZE ? it.small : it.large;
        long skip = size <= LARGE_MESSAGE_SIZE ? it.skip : it.skip_large;
        int n = (int)size;

        fill_pattern(sbuf, size, size, rank);
        memset(rbuf, 0, size * slices);

        if (o.persistent) {
            for (int w = 0; w < WINDOW; w++)
                MPI_Recv_init(rbuf + (o.distinct ? (size_t)w * size : 0), n, MPI_CHAR, peer, 100, MPI_COMM_WORLD, &req[w]);
            for (int w = 0; w < WINDOW; w++)
                MPI_Send_init(sbuf, n, MPI_CHAR, peer, 100, MPI_COMM_WORLD, &req[WINDOW + w]);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = 0.0;
        for (long i = 0; i < iters + skip; i++) {
            if (i == skip) t0 = MPI_Wtime();
            if (o.persistent) {
                MPI_Startall(2 * WINDOW, req);
                MPI_Waitall(2 * WINDOW, req, stat);
                continue;
            }
            for (int w = 0; w < WINDOW; w++)
                MPI_Irecv(rbuf + (o.distinct ? (size_t)w * size : 0), n, MPI_CHAR, peer, 100, MPI_COMM_WORLD, &req[w]);
            for (int w = 0; w < WINDOW; w++)
                MPI_Isend(sbuf, n, MPI_CHAR, peer, 100, MPI_COMM_WORLD, &req[WINDOW + w]);
            MPI_Waitall(2 * WINDOW, req, stat);
        }
        double t = MPI_Wtime() - t0;
        if (o.persistent)
            for (int w = 0; w < 2 * WINDOW; w++) MPI_Request_free(&req[w]);
        if (rank == 0) {
            printf("%-10zu%18.2f\n", size, 2.0 * (double)size * WINDOW * (double)iters / t / 1e6);
            fflush(stdout);
        }
        size_t bad = size;
        for (size_t k = 0; k < slices && bad == size; k++)
            bad = verify_pattern(rbuf + k * size, size, size, peer);
        if (bad != size) check_failed("osu_bibw", size, bad);
    }

    free(sbuf);
    free(rbuf);
    MPI_Finalize();
    return 0;
}
