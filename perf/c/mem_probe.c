/* mem_probe.c - the memory a job holds (Open MPI / MPICH side of perf/mem/run.sh).
 *
 * Usage: mpirun -np N mem_probe hello|alltoall|exchange|chatter
 *   hello:    MPI_Init, MPI_Barrier
 *   alltoall: MPI_Alltoall of one 8-byte element per pair
 *   exchange: every rank MPI_Sends one 8-byte message to every other rank and
 *             MPI_Recvs one from each (eager: the sends do not wait)
 *   chatter:  the exchange 40000 times (1.2 MiB of small messages each way between
 *             every pair, which the receivers keep up with)
 * Then, after a barrier, every rank reads its Rss and Pss (/proc/self/smaps_rollup,
 * kB) and rank 0 prints one line:
 *   N MODE rss_sum_kb pss_sum_kb rss_max_kb shared_kb
 * where shared_kb is what the files of /dev/shm whose name holds "vader" or "mpich"
 * have committed (st_blocks), the transport's shared segments. */
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void rollup(long *rss, long *pss)
{
    char line[256];
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    *rss = *pss = -1;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Rss:", 4) == 0) *rss = atol(line + 4);
        if (strncmp(line, "Pss:", 4) == 0) *pss = atol(line + 4);
    }
    fclose(f);
}

static long shm_committed_kb(void)
{
    long kb = 0;
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    char path[512];
    struct stat st;
    if (!d) return -1;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, "vader") && !strstr(e->d_name, "mpich") && !strstr(e->d_name, "shm-col"))
            continue;
        snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
        if (stat(path, &st) == 0) kb += (long)st.st_blocks / 2;
    }
    closedir(d);
    return kb;
}

int main(int argc, char **argv)
{
    int rank, n;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    const char *mode = argc > 1 ? argv[1] : "hello";
    if (strcmp(mode, "alltoall") == 0) {
        long *s = malloc(8 * (size_t)n), *r = malloc(8 * (size_t)n);
        for (int i = 0; i < n; i++) s[i] = (long)rank * n + i;
        MPI_Alltoall(s, 1, MPI_LONG, r, 1, MPI_LONG, MPI_COMM_WORLD);
        for (int i = 0; i < n; i++)
            if (r[i] != (long)i * n + rank) {
                fprintf(stderr, "rank %d: wrong element from %d\n", rank, i);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        free(s);
        free(r);
    } else if (strcmp(mode, "exchange") == 0 || strcmp(mode, "chatter") == 0) {
        long rounds = strcmp(mode, "chatter") == 0 ? 40000 : 1;
        for (long i = 0; i < rounds; i++) {
            for (int d = 0; d < n; d++) {
                long v = (long)rank * n + d + i;
                if (d != rank) MPI_Send(&v, 1, MPI_LONG, d, 3, MPI_COMM_WORLD);
            }
            for (int s = 0; s < n; s++) {
                long v;
                if (s == rank) continue;
                MPI_Recv(&v, 1, MPI_LONG, s, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (v != (long)s * n + rank + i) {
                    fprintf(stderr, "rank %d: wrong message from %d\n", rank, s);
                    MPI_Abort(MPI_COMM_WORLD, 1);
                }
            }
        }
    } else if (strcmp(mode, "hello") != 0) {
        fprintf(stderr, "mode must be hello, alltoall, exchange or chatter\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    long mine[2], sum[2], max;
    rollup(&mine[0], &mine[1]);
    MPI_Reduce(mine, sum, 2, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&mine[0], &max, 1, MPI_LONG, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("%d %s %ld %ld %ld %ld\n", n, mode, sum[0], sum[1], max, shm_committed_kb());
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
