"""The MPI module in this process (a world of one): names and values of mpi4py."""

import pytest
from shmpi import MPI


def test_datatype_sizes():
    sizes = {
        MPI.BYTE: 1, MPI.CHAR: 1, MPI.SHORT: 2, MPI.INT: 4, MPI.LONG: 8, MPI.LONG_LONG: 8,
        MPI.FLOAT: 4, MPI.DOUBLE: 8, MPI.BOOL: 1, MPI.INT8_T: 1, MPI.INT16_T: 2,
        MPI.INT32_T: 4, MPI.INT64_T: 8, MPI.UINT8_T: 1, MPI.UINT16_T: 2, MPI.UINT32_T: 4,
        MPI.UINT64_T: 8, MPI.UNSIGNED: 4, MPI.C_DOUBLE_COMPLEX: 16, MPI.DOUBLE_INT: 16,
        MPI.TWOINT: 8,
    }
    for dt, size in sizes.items():
        assert dt.Get_size() == size and dt.size == size, dt


def test_environment():
    assert MPI.Get_version() == (3, 1)
    assert MPI.Is_initialized() and not MPI.Is_finalized()
    assert MPI.Query_thread() in (MPI.THREAD_SINGLE, MPI.THREAD_FUNNELED)
    assert isinstance(MPI.Get_processor_name(), str)
    t0 = MPI.Wtime()
    assert MPI.Wtime() >= t0 and 0 < MPI.Wtick() < 1e-3
    assert MPI.COMM_WORLD.Get_size() == 1 and MPI.COMM_WORLD.Get_rank() == 0
    assert MPI.COMM_NULL != MPI.COMM_WORLD and not MPI.COMM_NULL


def test_exception_is_a_runtime_error_with_an_error_class():
    e = MPI.Exception(MPI.ERR_TRUNCATE)
    assert isinstance(e, RuntimeError)
    assert e.Get_error_class() == MPI.ERR_TRUNCATE == e.error_class
    assert e == MPI.ERR_TRUNCATE
    assert len({MPI.ERR_RANK, MPI.ERR_TAG, MPI.ERR_TRUNCATE, MPI.ERR_OTHER, MPI.ERR_ROOT}) == 5


def test_ops_on_objects():
    assert MPI.SUM(2, 3) == 5 and MPI.PROD(2, 3) == 6
    assert MPI.MAX(2, 3) == 3 and MPI.MIN(2, 3) == 2
    assert MPI.MAXLOC((1, 4), (1, 2)) == (1, 2) and MPI.MINLOC((0, 5), (1, 2)) == (0, 5)
    assert MPI.BXOR(6, 3) == 5 and MPI.REPLACE(1, 2) == 2 and MPI.NO_OP(1, 2) == 1
    assert MPI.SUM.Is_commutative() and MPI.SUM.is_predefined
    op = MPI.Op.Create(lambda a, b, dt: a - b, commute=False)
    assert not op.Is_commutative() and op(5, 3) == 2


def test_status_counts():
    st = MPI.Status()
    st._set((0, 1, 24))
    assert st.Get_count(MPI.DOUBLE) == 3 and st.Get_count(MPI.INT) == 6
    assert st.Get_count(MPI.DOUBLE_INT) == MPI.UNDEFINED


def test_buffer_specs():
    np = pytest.importorskip("numpy")
    a = np.arange(6, dtype="d")
    b = np.zeros(6)
    MPI.COMM_WORLD.Sendrecv([a, 3, MPI.DOUBLE], 0, 1, [b, (3, 2), MPI.DOUBLE], 0, 1)
    assert list(b) == [0, 0, 0, 1, 2, 0]
    MPI.COMM_WORLD.Sendrecv(a, 0, 1, b, 0, 1)
    assert (a == b).all()
