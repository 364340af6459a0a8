"""Python-side cost per call: what shmpi.MPI adds between entering ``Send``/``Recv``
(or ``send``/``recv``) and reaching the native call, measured in one process
(messages to self, so no other rank's timing enters).

    python python/bench/call_overhead.py     # or under shmrun: same result per rank

Prints ns per Send+Recv pair through the MPI module and through the native handle
directly; the difference is the Python-side cost. Best of 7 rounds (the host's
fast phase; a loaded machine inflates every figure).
"""

import pickle
import time

import numpy
from shmpi import MPI

N = 20000
comm = MPI.COMM_WORLD
me = comm.Get_rank()
raw = comm._raw
buf = numpy.zeros(1, dtype="d")
rbuf = numpy.zeros(1, dtype="d")
d = {"a": 7, "b": 3.14}


def timed(fn):
    rounds = []
    for _ in range(7):
        t0 = time.perf_counter_ns()
        fn()
        rounds.append((time.perf_counter_ns() - t0) / N)
    return min(rounds)


def upper():
    for _ in range(N):
        comm.Send(buf, me, 1)
        comm.Recv(rbuf, me, 1)


def upper_spec():
    for _ in range(N):
        comm.Send([buf, 8, MPI.BYTE], me, 1)
        comm.Recv([rbuf, 8, MPI.BYTE], me, 1)


def native_upper():
    for _ in range(N):
        raw.send(buf, None, me, 1)
        raw.recv_into(rbuf, None, me, 1)


def lower():
    for _ in range(N):
        comm.send(d, me, 1)
        comm.recv(None, me, 1)


def native_lower():
    for _ in range(N):
        raw.send(pickle.dumps(d, 5), None, me, 1)
        pickle.loads(raw.recv_bytes(me, 1)[0])


def pickle_only():
    for _ in range(N):
        pickle.loads(pickle.dumps(d, 5))


def empty():
    for _ in range(N):
        pass


base = timed(empty)
rows = [
    ("Send+Recv, 8 B array", timed(upper)),
    ("Send+Recv, [buf, 8, MPI.BYTE]", timed(upper_spec)),
    ("native send+recv_into, 8 B", timed(native_upper)),
    ("send+recv, small dict", timed(lower)),
    ("native send+recv_bytes + pickle", timed(native_lower)),
    ("pickle.loads(pickle.dumps(d, 5))", timed(pickle_only)),
]
if me == 0:
    print(f"# ns per pair (loop overhead {base:.0f} ns subtracted), {N} pairs, best of 7")
    for name, ns in rows:
        print(f"{name:<36} {ns - base:8.0f}")
    up, spec, nat, lo, natlo = (rows[i][1] for i in range(5))
    print(f"# Python-side cost per Send+Recv pair: {up - nat:.0f} ns (plain array), {spec - nat:.0f} ns (list spec)")
    print(f"# Python-side cost per send+recv pair: {lo - natlo:.0f} ns")
