# An allreduce benchmark in the style of mpi4py's demo/osu_*.py (which has none):
# MPI.SUM over doubles, in place, sizes in bytes from 8 B to 1 MiB.

from mpi4py import MPI


def osu_allreduce(
    BENCHMARH="MPI Allreduce Latency Test",
    skip=1000,
    loop=10000,
    skip_large=10,
    loop_large=100,
    large_message_size=8192,
    MAX_MSG_SIZE=1 << 20,
):
    comm = MPI.COMM_WORLD
    myid = comm.Get_rank()
    numprocs = comm.Get_size()

    if numprocs < 2:
        if myid == 0:
            errmsg = "This test requires at least two processes"
        else:
            errmsg = None
        raise SystemExit(errmsg)

    s_buf = allocate(MAX_MSG_SIZE)
    r_buf = allocate(MAX_MSG_SIZE)

    if myid == 0:
        print(f"# {BENCHMARH}")
    if myid == 0:
        print(f"# {'Size [B]':<8s}{'Latency [us]':>20s}")

    for size in message_sizes(MAX_MSG_SIZE):
        if size > large_message_size:
            skip = skip_large
            loop = loop_large
        iterations = list(range(loop + skip))
        s_msg = [s_buf, size // 8, MPI.DOUBLE]
        r_msg = [r_buf, size // 8, MPI.DOUBLE]
        #
        comm.Barrier()
        for i in iterations:
            if i == skip:
                t_start = MPI.Wtime()
            comm.Allreduce(s_msg, r_msg, MPI.SUM)
        t_end = MPI.Wtime()
        comm.Barrier()
        #
        if myid == 0:
            latency = (t_end - t_start) * 1e6 / loop
            print(f"{size:-10d}{latency:20.2f}")


def message_sizes(max_size):
    return [(1 << i) for i in range(3, 30) if (1 << i) <= max_size]


def allocate(n):
    from numpy import zeros

    return zeros(n // 8, "d")


if __name__ == "__main__":
    osu_allreduce()
