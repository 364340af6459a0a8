/* mpi_head.c - what a 32-byte head before each large message costs MPI itself: the
 * 1 MiB blocking osu_bw shape (64 MPI_Send / MPI_Recv per window, then a 4-byte ack),
 * plain, or with each message preceded by a 32-byte message on the communicator and
 * itself sent on a duplicate, as shmpi's MPI backend sends a large message (its head,
 * then its payload on the `bulk` twin). Prints MB/s (1 MB = 1e6 bytes) from rank 0.
 *
 * Usage: mpirun -n 2 mpi_head HEAD ITERS      (HEAD 0 or 1; ITERS windows after 2)
 * Run by perf/mpi_head.sh beside shmpi's own osu_bw over the MPI backend. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc != 3) {
        fprintf(stderr, "usage: mpi_head HEAD ITERS\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int head = atoi(argv[1]), iters = atoi(argv[2]), rank, ack = 0;
    size_t n = (size_t)1 << 20;
    MPI_Comm bulk;
    MPI_Comm_dup(MPI_COMM_WORLD, &bulk);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char *buf = aligned_alloc(4096, n);
    /* shmpi receives every message on the communicator into a 4 KiB stage. */
    static char stage[4112], h[32];
    memset(buf, rank, n);
    double t0 = 0;
    for (int i = 0; i < iters + 2; i++) {
        if (i == 2) {
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
        }
        for (int w = 0; w < 64; w++) {
            if (rank == 0) {
                if (head) MPI_Send(h, 32, MPI_BYTE, 1, 100, MPI_COMM_WORLD);
                MPI_Send(buf, (int)n, MPI_BYTE, 1, w, head ? bulk : MPI_COMM_WORLD);
            } else {
                if (head)
                    MPI_Recv(stage, sizeof stage, MPI_BYTE, 0, 100, MPI_COMM_WORLD,
                             MPI_STATUS_IGNORE);
                MPI_Recv(buf, (int)n, MPI_BYTE, 0, w, head ? bulk : MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
            }
        }
        if (rank == 0)
            MPI_Recv(&ack, 1, MPI_INT, 1, 101, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        else
            MPI_Send(&ack, 1, MPI_INT, 0, 101, MPI_COMM_WORLD);
    }
    double t = MPI_Wtime() - t0;
    if (rank == 0) printf("%.2f\n", (double)n * 64 * iters / t / 1e6);
    free(buf);
    MPI_Comm_free(&bulk);
    MPI_Finalize();
    return 0;
}
