# Every rank receives from the next one and none sends: a cycle of waits that the
# launcher reports as a deadlock.
from mpi4py import MPI

comm = MPI.COMM_WORLD
comm.recv(source=(comm.rank + 1) % comm.size, tag=5)
