# Author:  Lisandro Dalcin
# Contact: dalcinl@gmail.com
"""Miscellaneous utilities (``mpi4py.util``).

The modules here are mpi4py 4.1.2's own, unchanged (BSD 3-Clause, see
LICENSE-mpi4py.rst beside this file): they are pure Python over mpi4py's API, so
under ``python -m shmpi`` ``from mpi4py.util import pkl5`` runs them on shmpi.
"""
