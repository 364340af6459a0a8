//! What the extension needs from `shmpi.MPI`, registered once, at the end of its
//! import (`register`): the ops `SUM` and `PROD`, its pickle object, its `Datatype`
//! class and spec parser, `IN_PLACE`, its `Request` class and the operation of a send
//! done as it started.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

pub(crate) struct Registry {
    /// `MPI.SUM`, the default op, and `MPI.PROD`: read once, since reductions of
    /// objects ask for them on every call.
    pub(crate) sum: Py<PyAny>,
    pub(crate) prod: Py<PyAny>,
    /// `MPI.pickle` as made at import (`MPI._PICKLE`): as in mpi4py, the lowercase
    /// methods use that object, whose settings a program may change (`PROTOCOL`,
    /// `__init__`).
    pub(crate) pickle: Py<PyAny>,
    /// The `Datatype` class.
    pub(crate) datatype: Py<PyType>,
    /// The point-to-point spec parser (`MPI._p2p`), which raises mpi4py's errors.
    pub(crate) parse: Py<PyAny>,
    /// `MPI.IN_PLACE`.
    pub(crate) in_place: Py<PyAny>,
    /// The `Request` class (`request::new_request` makes it, `wait_all` completes it).
    pub(crate) request: Py<PyType>,
    /// The `_raw` of every send that completed as it started (`MPI._SENT`, a `_Done`
    /// with no data and no status): shared, so such a send makes no object for it.
    pub(crate) sent: Py<PyAny>,
}

static REGISTRY: PyOnceLock<Registry> = PyOnceLock::new();

/// Registers `module` (`shmpi.MPI`), reading what [`Registry`] holds by name.
#[pyfunction]
pub(crate) fn register(py: Python<'_>, module: Bound<'_, PyAny>) -> PyResult<()> {
    let get = |name: &str| module.getattr(name).map(Bound::unbind);
    let class = |name: &str| -> PyResult<Py<PyType>> {
        Ok(module.getattr(name)?.cast_into::<PyType>()?.unbind())
    };
    let pickle = module.getattr("_PICKLE")?;
    let std_now = pickle.getattr("_std")?.is_truthy()?;
    let r = Registry {
        sum: get("SUM")?,
        prod: get("PROD")?,
        pickle: pickle.clone().unbind(),
        datatype: class("Datatype")?,
        parse: get("_p2p")?,
        in_place: get("IN_PLACE")?,
        request: class("Request")?,
        sent: get("_SENT")?,
    };
    let _ = REGISTRY.set(py, r);
    crate::pycomm::install_entries(&module.getattr("Comm")?)?;
    crate::pycomm::pickle_changed(py, pickle, std_now);
    Ok(())
}

/// What `shmpi.MPI` registered, once it has.
pub(crate) fn registry(py: Python<'_>) -> PyResult<&Registry> {
    REGISTRY
        .get(py)
        .ok_or_else(|| crate::errors::usage_error("shmpi.MPI is not imported"))
}
