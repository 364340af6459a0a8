"""Small-message ping-pongs between ranks 0 and 1, one-way µs (best of three runs of
10 000 round trips): `Send`/`Recv` of 8 bytes, and `send`/`recv` of `None`, `7` and the
dict `{'a': 7, 'b': 3.14}`; then, in the same interpreter, what
`pickle.loads(pickle.dumps(x, 5))` alone costs for each object (the floor of a
lowercase message). Runs unchanged under shmpi and under the real mpi4py:

    shmrun -n 2 --bind-to core python -m shmpi python/bench/small_pingpong.py
    mpirun -n 2 --bind-to core python python/bench/small_pingpong.py
"""

import pickle
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
DICT = {"a": 7, "b": 3.14}
buf = bytearray(8)


def pingpong(trip0, trip1, iters=10000, skip=1000):
    """One-way µs over `iters` round trips: rank 0 runs `trip0` per round trip, rank 1
    `trip1` (the calls inline in each loop would be ~0.05 µs cheaper, alike for all)."""
    comm.Barrier()
    if comm.rank == 1:
        for _ in range(iters + skip):
            trip1()
        return 0.0
    for i in range(iters + skip):
        if i == skip:
            t0 = MPI.Wtime()
        trip0()
    return (MPI.Wtime() - t0) * 1e6 / iters / 2


def pp_obj(obj):
    def trip0():
        comm.send(obj, dest=1, tag=1)
        comm.recv(source=1, tag=1)

    def trip1():
        comm.send(comm.recv(source=0, tag=1), dest=0, tag=1)

    return pingpong(trip0, trip1)


def pp_buf():
    def trip0():
        comm.Send(buf, dest=1, tag=1)
        comm.Recv(buf, source=1, tag=1)

    def trip1():
        comm.Recv(buf, source=0, tag=1)
        comm.Send(buf, dest=0, tag=1)

    return pingpong(trip0, trip1)


def floor(obj, n=100000):
    t0 = time.perf_counter()
    for _ in range(n):
        pickle.loads(pickle.dumps(obj, 5))
    return (time.perf_counter() - t0) * 1e6 / n


def main():
    if comm.size != 2:
        raise SystemExit("run with 2 ranks")
    runs = {
        "Send/Recv 8B": pp_buf,
        "send None": lambda: pp_obj(None),
        "send 7": lambda: pp_obj(7),
        "send dict": lambda: pp_obj(DICT),
    }
    res = {}
    for _ in range(3):
        for name, f in runs.items():
            res.setdefault(name, []).append(f())
    if comm.rank == 0:
        line = "  ".join(f"{k} {min(v):.3f}" for k, v in res.items())
        floors = f"floor None {floor(None):.3f} 7 {floor(7):.3f} dict {floor(DICT):.3f}"
        print(f"{line}  {floors}")


main()
