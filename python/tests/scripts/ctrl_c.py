# Rank 1 blocks in recv; the test sends SIGINT to shmrun, which forwards it: the
# blocked receive must end in KeyboardInterrupt (not an MPI error), at once.
import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
if comm.rank == 1:
    print("BLOCKED", flush=True)
    try:
        comm.recv(source=0, tag=5)
    except KeyboardInterrupt:
        print(f"KeyboardInterrupt at {time.clock_gettime(time.CLOCK_MONOTONIC):.6f}", flush=True)
        sys.exit(130)
else:
    try:
        time.sleep(30)
    except KeyboardInterrupt:
        # Rank 1's exit ends the job; exiting first here would abort it, under load
        # before rank 1 has reported its interrupt.
        time.sleep(30)
        sys.exit(130)
