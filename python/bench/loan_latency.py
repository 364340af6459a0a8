"""One-way latency of loaned messages from Python (shmpi.loans) beside ``Send``/``Recv``
of a NumPy array of the same size, as perf/rust/osu_loan.rs measures the Rust loans:
a ping-pong in which each side takes a loan, writes its first and last byte, sends
it; the other receives the view, reads those bytes and releases it. The copying
form sends and receives preallocated arrays. Exactly 2 ranks.

    shmrun -n 2 --bind-to core python -m shmpi python/bench/loan_latency.py

Prints, per size, the median of 5 rounds of one-way µs for both forms.
"""

import statistics
import time

import numpy as np
from mpi4py import MPI

from shmpi import loans

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
assert comm.Get_size() == 2, "loan_latency runs on exactly 2 ranks"
peer = 1 - rank
SIZES = [8, 64 << 10, 1 << 20, 4 << 20]


def loan_round(n, iters):
    comm.Barrier()
    t0 = time.perf_counter()
    for i in range(iters):
        k = i & 0xFF
        if rank == 0:
            b = loans.loan(comm, n)
            with memoryview(b) as m:
                m[0] = m[n - 1] = k
            loans.send_loan(comm, b, peer, 1)
            v = loans.recv_loan(comm, peer, 1)
            with memoryview(v) as m:
                assert m[0] == k and m[n - 1] == k
            v.release()
        else:
            v = loans.recv_loan(comm, peer, 1)
            with memoryview(v) as m:
                assert m[0] == k and m[n - 1] == k
            v.release()
            b = loans.loan(comm, n)
            with memoryview(b) as m:
                m[0] = m[n - 1] = k
            loans.send_loan(comm, b, peer, 1)
    return (time.perf_counter() - t0) / iters / 2 * 1e6


def copy_round(n, iters):
    s, r = np.zeros(n, dtype=np.uint8), np.zeros(n, dtype=np.uint8)
    comm.Barrier()
    t0 = time.perf_counter()
    for i in range(iters):
        if rank == 0:
            s[0] = s[n - 1] = i & 0xFF
            comm.Send(s, peer, 2)
            comm.Recv(r, peer, 2)
        else:
            comm.Recv(r, peer, 2)
            s[0] = s[n - 1] = i & 0xFF
            comm.Send(s, peer, 2)
    return (time.perf_counter() - t0) / iters / 2 * 1e6


if rank == 0:
    print("# shmpi.loans one-way latency beside Send/Recv (python/bench/loan_latency.py)")
    print(f"{'# size':<10}{'loan (us)':>12}{'Send (us)':>12}")
for n in SIZES:
    iters = 2000 if n <= 1 << 20 else 500
    lo = statistics.median(loan_round(n, iters) for _ in range(5))
    cp = statistics.median(copy_round(n, iters) for _ in range(5))
    if rank == 0:
        print(f"{n:<10}{lo:>12.2f}{cp:>12.2f}", flush=True)
