# A blocking receive releases the GIL: another thread of the rank keeps running.
import threading
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
if rank == 0:
    time.sleep(0.5)
    comm.send("late", dest=1, tag=1)
    time.sleep(0.5)
    comm.Send(bytearray(b"LATE"), dest=1, tag=2)
elif rank == 1:
    ticks = 0
    stop = threading.Event()

    def spin():
        global ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    before = ticks
    assert comm.recv(source=0, tag=1) == "late"
    during = ticks - before
    # The same for a buffer receive (both try to receive with the GIL held first).
    buf = bytearray(4)
    before = ticks
    comm.Recv(buf, source=0, tag=2)
    during2 = ticks - before
    stop.set()
    t.join()
    # The other thread ran through most of each ~0.45-0.5 s wait (1 ms per tick).
    assert during > 50 and during2 > 50 and buf == b"LATE", (during, during2, buf)
# shmpi is MPI_THREAD_FUNNELED: a call from another thread is a clear MPI.Exception,
# and the thread that initialized it goes on.
got = []


def other():
    try:
        comm.Get_rank()
    except MPI.Exception as e:
        got.append(str(e))


t = threading.Thread(target=other)
t.start()
t.join()
assert len(got) == 1 and "thread" in got[0], got
comm.Barrier()

# A freed send of a large buffer finishes while a receive waits (the GIL released): its
# buffer's export is given back then, so the bytearray can change size again.
if rank == 0:
    big = bytearray(4 << 20)
    r = comm.Isend(big, dest=1, tag=5)
    r.Free()
    got = bytearray(1)
    comm.Recv(got, source=1, tag=6)
    big.extend(b"more")
elif rank == 1:
    time.sleep(0.2)
    big = bytearray(4 << 20)
    comm.Recv(big, source=0, tag=5)
    comm.Send(b"y", dest=0, tag=6)
comm.Barrier()
print(f"OK {rank}")
