//! `RawMessage`: a message taken out of matching by a matched probe (`MPI_Mprobe`).
//!
//! Only this handle can receive its message; a receive that cannot take it (a buffer
//! too short) leaves it here to be received again, as shmpi's `Message` does.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffer::RawBuf;
use crate::comm::{St, quick, st, waiting};
use crate::errors::usage_error;

/// A matched message (`MPI_Message`); null once received.
#[pyclass(unsendable, module = "shmpi._shmpi")]
pub(crate) struct RawMessage {
    msg: Option<shmpi::Message>,
}

impl RawMessage {
    pub(crate) fn new(msg: shmpi::Message) -> Self {
        RawMessage { msg: Some(msg) }
    }

    fn take_msg(&mut self) -> PyResult<&mut shmpi::Message> {
        self.msg
            .as_mut()
            .ok_or_else(|| usage_error("the message was received already (MPI.MESSAGE_NULL)"))
    }
}

#[pymethods]
impl RawMessage {
    /// Receives into a buffer (`MPI_Mrecv`); on error the message stays here.
    #[pyo3(signature = (buf, nbytes))]
    fn recv_into(
        &mut self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        nbytes: Option<usize>,
    ) -> PyResult<St> {
        let mut b = RawBuf::get(buf, true, nbytes)?;
        let bytes = b.bytes_mut();
        let msg = self.take_msg()?;
        let s = waiting(py, quick(bytes.len()), || msg.recv_into(bytes))?;
        self.msg = None;
        Ok(st(s))
    }

    /// Receives the whole message as `bytes`.
    fn recv_bytes<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, St)> {
        let msg = self.take_msg()?;
        let (v, s) = waiting(py, quick(msg.status().len()), || msg.recv_vec::<u8>())?;
        self.msg = None;
        Ok((PyBytes::new(py, &v), st(s)))
    }

    /// Whether this is the message of a probe of `PROC_NULL` (`MPI_MESSAGE_NO_PROC`).
    fn is_no_proc(&self) -> bool {
        self.msg.as_ref().is_some_and(|m| m.is_null())
    }

    fn is_null(&self) -> bool {
        self.msg.is_none()
    }
}
