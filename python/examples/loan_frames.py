# A producer hands frames to consumers without copying them (shmpi's loans): rank 0
# renders each frame straight into a loan from its pool in the shared segment and
# sends the loan to the next consumer in turn; each consumer gets a read-only view
# of the same memory, checks it and releases it, which gives the memory back to the
# producer's pool. Not a byte of a frame is copied; the pool is bounded, so a
# producer that runs ahead waits for the consumers to release frames. Under the real
# mpi4py (with shmpi's package on the path) the same program runs, copying.
#
#   shmrun -n 4 python -m shmpi python/examples/loan_frames.py [FRAMES] [WIDTH] [HEIGHT]
import sys

import numpy as np
from mpi4py import MPI

from shmpi import loans

FRAME, STOP = 0, 1
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
args = [int(a) for a in sys.argv[1:4]]
frames, width, height = args + [120, 640, 480][len(args):]


def render(f, out):
    out[:] = np.arange(out.size, dtype=np.uint32) ^ np.uint32(f * 2654435761 % 2**32)


if size < 2:
    print("loan_frames needs a producer and at least one consumer (-n 2 or more)")
elif rank == 0:
    t0 = MPI.Wtime()
    for f in range(frames):
        buf = loans.loan(comm, width * height * 4)
        pixels = np.frombuffer(buf, dtype=np.uint32)
        render(f, pixels)
        del pixels  # nothing may write the loan once it is sent
        loans.send_loan(comm, buf, dest=1 + f % (size - 1), tag=FRAME)
    for c in range(1, size):
        comm.send(None, dest=c, tag=STOP)
    print(f"producer: {frames} frames of {width}x{height} handed to {size - 1} consumers "
          f"in {(MPI.Wtime() - t0) * 1e3:.1f} ms")
else:
    got, expect = 0, np.empty(width * height, dtype=np.uint32)
    status = MPI.Status()
    while True:
        comm.probe(source=0, tag=MPI.ANY_TAG, status=status)
        if status.Get_tag() == STOP:
            comm.recv(source=0, tag=STOP)
            break
        view = loans.recv_loan(comm, source=0, tag=FRAME, status=status)
        with view:  # the memory goes back to the producer at the end of the block
            frame = np.frombuffer(view, dtype=np.uint32)
            # This consumer gets frames rank - 1, rank - 1 + consumers, ... in order.
            render(rank - 1 + got * (size - 1), expect)
            assert np.array_equal(frame, expect), "a frame arrived changed or out of order"
            assert status.Get_count(MPI.BYTE) == width * height * 4
            del frame
        got += 1
    assert got == len(range(rank - 1, frames, size - 1)), "every frame sent here arrived"
    print(f"consumer {rank}: {got} frames checked")
