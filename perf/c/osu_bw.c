/*
 * osu_bw.c - unidirectional bandwidth, OSU osu_bw methodology.
 *
 * Exactly 2 ranks.  For each size 1, 2, 4, ... MAXBYTES (default 4 MiB):
 * rank 0 posts a window of 64 MPI_Isend (all from the same buffer) and
 * MPI_Waitall, then waits for a 4-byte ack; rank 1 posts 64 MPI_Irecv (into
 * the same buffer), MPI_Waitall, then sends the ack.
 * Defaults: 100 iterations + 10 warm-up up to 8 KiB, 20 + 2 above.
 * Bandwidth = size * 64 * iters / time, in MB/s (1 MB = 1e6 bytes).
 * After each size rank 1 verifies the received data.
 *
 * Usage: mpirun -np 2 osu_bw [-m MAXBYTES] [-i ITERS] [-d | -p | -b]
 *   -d: the window's 64 receives each into its own slice of one 64 x size
 *       buffer (the memory shmpi's scoped `-w` form must use), not all into one.
 *   -p: not OSU's method but the same traffic with persistent requests: the 64
 *       requests are made once per size (MPI_Send_init, MPI_Recv_init) and each
 *       window starts them all (MPI_Startall) and waits for them (MPI_Waitall).
 *   -b: not OSU's method but the shape of shmpi's default perf/rust/osu_bw.rs: the
 *       window's 64 messages sent with MPI_Send and received with MPI_Recv, one after
 *       another, so that the two programs do the same MPI calls (scripts/mpi_overhead.sh
 *       sets the Rust program on shmpi's MPI backend beside this).
 * Output (contract shared with shmpi's perf/rust/osu_bw.rs):
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
    parse_options(argc, argv, "osu_bw", rank, OPT_DISTINCT | OPT_PERSISTENT | OPT_BLOCKING, &o);
    struct iters it = scale_iters(o.iters, 100, 10, 20, 2);

    if (nranks != 2) {
        if (rank == 0) fprintf(stderr, "osu_bw needs exactly 2 ranks\n");
        MPI_Finalize();
        return 2;
    }
    unsigned char *sbuf = alloc_buffer(o.max_size, 'a');
    /* -d: one slice per receive of the window, the footprint of a program that may not
     * post two receives into one buffer (shmpi's scoped `-w` form, safe Rust). */
    size_t slices = o.distinct ? WINDOW : 1;
    unsigned char *rbuf = alloc_buffer(o.max_size * slices, 'b');
    int ack = 0;
    MPI_Request req[WINDOW];
    MPI_Status stat[WINDOW];

    if (rank == 0) {
        printf("# OSU MPI Bandwidth Test (shmpi perf/c/osu_bw.c), window %d%s\n", WINDOW,
               o.persistent ? ", persistent requests" : o.blocking ? ", blocking calls" : "");
        print_library();
        printf("# Size      Bandwidth (MB/s)\n");
        fflush(stdout);
    }

    for (size_t size = 1; size <= o.max_size; size *= 2) {
        long iters = size <= LARGE_MESSAGE_SIZE ? it.small : it.large;
        long skip = size <= LARGE_MESSAGE_SIZE ? it.skip : it.skip_large;
        int n = (int)size;

        if (rank == 0) fill_pattern(sbuf, size, size, 0);
        else memset(rbuf, 0, size * slices);

        if (o.persistent)
            for (int w = 0; w < WINDOW; w++) {
                if (rank == 0)
                    MPI_Send_init(sbuf, n, MPI_CHAR, 1, 100, MPI_COMM_WORLD, &req[w]);
                else
                    MPI_Recv_init(rbuf + (o.distinct ? (size_t)w * size : 0), n, MPI_CHAR, 0, 100, MPI_COMM_WORLD, &req[w]);
            }
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            double t0 = 0.0;
            for (long i = 0; i < iters + skip; i++) {
                if (i == skip) t0 = MPI_Wtime();
                if (o.blocking) {
                    for (int w = 0; w < WINDOW; w++)
                        MPI_Send(sbuf, n, MPI_CHAR, 1, 100, MPI_COMM_WORLD);
                } else {
                    if (o.persistent)
                        MPI_Startall(WINDOW, req);
                    else
                        for (int w = 0; w < WINDOW; w++)
                            MPI_Isend(sbuf, n, MPI_CHAR, 1, 100, MPI_COMM_WORLD, &req[w]);
                    MPI_Waitall(WINDOW, req, stat);
                }
                MPI_Recv(&ack, 1, MPI_INT, 1, 101, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            }
            double t = MPI_Wtime() - t0;
            printf("%-10zu%18.2f\n", size, (double)size * WINDOW * (double)iters / t / 1e6);
            fflush(stdout);
        } else {
            for (long i = 0; i < iters + skip; i++) {
                if (o.blocking) {
                    for (int w = 0; w < WINDOW; w++)
                        MPI_Recv(rbuf, n, MPI_CHAR, 0, 100, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                } else {
                    if (o.persistent)
                        MPI_Startall(WINDOW, req);
                    else
                        for (int w = 0; w < WINDOW; w++)
                            MPI_Irecv(rbuf + (o.distinct ? (size_t)w * size : 0), n, MPI_CHAR, 0, 100, MPI_COMM_WORLD, &req[w]);
                    MPI_Waitall(WINDOW, req, stat);
                }
                MPI_Send(&ack, 1, MPI_INT, 0, 101, MPI_COMM_WORLD);
            }
            for (size_t k = 0; k < slices; k++) {
                size_t bad = verify_pattern(rbuf + k * size, size, size, 0);
                if (bad != size) check_failed("osu_bw", size, bad);
            }
        }
        if (o.persistent)
            for (int w = 0; w < WINDOW; w++) MPI_Request_free(&req[w]);
    }

    free(sbuf);
    free(rbuf);
    MPI_Finalize();
    return 0;
}
