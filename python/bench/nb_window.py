"""Windows of 64 small non-blocking messages, as mpi4py's `osu_bw.py` sends them
(`Isend` x 64 + `Waitall` one way, `Irecv` x 64 + `Waitall` the other, a 4-byte ack
back), for instruction counts: `python nb_window.py ITERS [SIZE]`, 2 ranks. Runs
unchanged under mpi4py (perf/python_small_nb.sh callgrind)."""

import sys

from mpi4py import MPI


def main(iters, size=8, window=64):
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    s_msg = [bytearray(size), size, MPI.BYTE]
    r_msg = [bytearray(size), size, MPI.BYTE]
    ack = [bytearray(4), 4, MPI.BYTE]
    reqs = [MPI.REQUEST_NULL] * window
    comm.Barrier()
    for _ in range(iters):
        if rank == 0:
            for j in range(window):
                reqs[j] = comm.Isend(s_msg, 1, 100)
            MPI.Request.Waitall(reqs)
            comm.Recv(ack, 1, 101)
        else:
            for j in range(window):
                reqs[j] = comm.Irecv(r_msg, 0, 100)
            MPI.Request.Waitall(reqs)
            comm.Send(ack, 0, 101)


if __name__ == "__main__":
    main(int(sys.argv[1]), *(int(a) for a in sys.argv[2:3]))
