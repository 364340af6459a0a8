//! Reductions of numeric buffers with shmpi's built-in ops, typed by the element type
//! the Python side names (a `struct` module code: `i` for C int, `d` for double).

use bytemuck::Pod;
use pyo3::prelude::*;
use shmpi::{Communicator, Op, Reducible};

use crate::errors;

/// Which reduction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Which {
    Reduce,
    Allreduce,
    Scan,
    Exscan,
}

impl Which {
    pub(crate) fn parse(s: &str) -> PyResult<Self> {
        Ok(match s {
            "reduce" => Which::Reduce,
            "allreduce" => Which::Allreduce,
            "scan" => Which::Scan,
            "exscan" => Which::Exscan,
            _ => return Err(errors::arg_error(format!("unknown reduction {s:?}"))),
        })
    }
}

/// The built-in op of a code, in the order `MPI.py` numbers them.
pub(crate) fn op(code: u8) -> PyResult<Op> {
    const OPS: [Op; 10] = [
        Op::Sum,
        Op::Prod,
        Op::Max,
        Op::Min,
        Op::LogicalAnd,
        Op::LogicalOr,
        Op::LogicalXor,
        Op::BitAnd,
        Op::BitOr,
        Op::BitXor,
    ];
    OPS.get(code as usize)
        .copied()
        .ok_or_else(|| errors::arg_error(format!("unknown built-in op code {code}")))
}

/// A reduction's op and datatype as shmpi's built-in op and element type, or `None`
/// when either is not one (a user op, an object that is not an `Op`, a datatype with
/// no element code): the package's Python path then reduces or raises.
pub(crate) fn native(op: &Bound<'_, PyAny>, dt: &Bound<'_, PyAny>) -> PyResult<Option<(Op, Kind)>> {
    if let Some(native) = LAST_REDUCTION.with(|c| c.get(op, dt)) {
        return Ok(native);
    }
    let py = op.py();
    let Ok(op_code) = op.getattr(pyo3::intern!(py, "_code")) else {
        return Ok(None);
    };
    let ty = dt.getattr(pyo3::intern!(py, "_code"))?;
    let native = if op_code.is_none() || ty.is_none() {
        None
    } else {
        Some((
            self::op(op_code.extract()?)?,
            Kind::parse(&ty.extract::<String>()?)?,
        ))
    };
    LAST_REDUCTION.with(|c| c.set(op, dt, native));
    Ok(native)
}

thread_local! {
    /// What the last reduction's op and datatype are to shmpi: neither's code changes
    /// once it is made (`Op.Free` clears only a user op's function).
    static LAST_REDUCTION: crate::last::LastPair<Option<(Op, Kind)>> =
        const { crate::last::LastPair::new() };
}

/// The element types reductions know.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl Kind {
    /// From a `struct` code of a standard size (`MPI.py` normalizes native codes).
    pub(crate) fn parse(s: &str) -> PyResult<Self> {
        Ok(match s {
            "b" => Kind::I8,
            "h" => Kind::I16,
            "i" => Kind::I32,
            "q" => Kind::I64,
            "B" | "?" => Kind::U8,
            "H" => Kind::U16,
            "I" => Kind::U32,
            "Q" => Kind::U64,
            "f" => Kind::F32,
            "d" => Kind::F64,
            _ => {
                return Err(PyErr::new::<pyo3::exceptions::PyNotImplementedError, _>(
                    format!("reductions of elements of struct code {s:?} are not supported"),
                ));
            }
        })
    }
}

/// Runs the reduction on byte buffers as `kind` elements.
pub(crate) fn run(
    c: &Communicator,
    which: Which,
    kind: Kind,
    op: Op,
    send: Option<&[u8]>,
    recv: &mut [u8],
    root: i32,
) -> shmpi::Result<()> {
    match kind {
        Kind::I8 => typed::<i8>(c, which, op, send, recv, root),
        Kind::I16 => typed::<i16>(c, which, op, send, recv, root),
        Kind::I32 => typed::<i32>(c, which, op, send, recv, root),
        Kind::I64 => typed::<i64>(c, which, op, send, recv, root),
        Kind::U8 => typed::<u8>(c, which, op, send, recv, root),
        Kind::U16 => typed::<u16>(c, which, op, send, recv, root),
        Kind::U32 => typed::<u32>(c, which, op, send, recv, root),
        Kind::U64 => typed::<u64>(c, which, op, send, recv, root),
        Kind::F32 => typed::<f32>(c, which, op, send, recv, root),
        Kind::F64 => typed::<f64>(c, which, op, send, recv, root),
    }
}

/// Starts `MPI_Ireduce` to `root`, or `MPI_Iallreduce` (`root` is `None`), of `data`
/// as `kind` elements.
/// A non-blocking reduction to start: one of [`Which`] (with the root of a reduce), or
/// a reduce-scatter of these counts (in elements, one per rank).
#[derive(Clone, Copy)]
pub(crate) enum Job<'a> {
    Reduction(Which, i32),
    ReduceScatter(&'a [usize]),
}

pub(crate) fn start(
    c: &Communicator,
    job: Job<'_>,
    kind: Kind,
    op: Op,
    data: &[u8],
) -> shmpi::Result<Box<dyn crate::request::CollOp>> {
    fn go<T: Reducible>(
        c: &Communicator,
        job: Job<'_>,
        op: Op,
        data: &[u8],
    ) -> shmpi::Result<Box<dyn crate::request::CollOp>> {
        let v: Vec<T> = as_elems::<T>(data)?.into_owned();
        Ok(Box::new(match job {
            Job::Reduction(Which::Reduce, root) => c.ireduce_into(v, op, root)?,
            Job::Reduction(Which::Allreduce, _) => c.iallreduce_into(v, op)?,
            Job::Reduction(Which::Scan, _) => c.iscan_into(v, op)?,
            Job::Reduction(Which::Exscan, _) => c.iexscan_into(v, op)?,
            Job::ReduceScatter(counts) => c.ireduce_scatter_into(v, counts, op)?,
        }))
    }
    match kind {
        Kind::I8 => go::<i8>(c, job, op, data),
        Kind::I16 => go::<i16>(c, job, op, data),
        Kind::I32 => go::<i32>(c, job, op, data),
        Kind::I64 => go::<i64>(c, job, op, data),
        Kind::U8 => go::<u8>(c, job, op, data),
        Kind::U16 => go::<u16>(c, job, op, data),
        Kind::U32 => go::<u32>(c, job, op, data),
        Kind::U64 => go::<u64>(c, job, op, data),
        Kind::F32 => go::<f32>(c, job, op, data),
        Kind::F64 => go::<f64>(c, job, op, data),
    }
}

/// The bytes as `T`s: in place when aligned, else a copy.
fn as_elems<T: Pod>(b: &[u8]) -> shmpi::Result<std::borrow::Cow<'_, [T]>> {
    let size = std::mem::size_of::<T>();
    if b.len() % size != 0 {
        return Err(shmpi::Error::InvalidArgument {
            class: shmpi::ErrorClass::Count,
            message: format!(
                "buffer length of {} bytes is not a whole number of {size}-byte elements",
                b.len()
            ),
        });
    }
    Ok(match bytemuck::try_cast_slice(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(bytemuck::pod_collect_to_vec(b)),
    })
}

fn typed<T: Reducible>(
    c: &Communicator,
    which: Which,
    op: Op,
    send: Option<&[u8]>,
    recv: &mut [u8],
    root: i32,
) -> shmpi::Result<()> {
    let size = std::mem::size_of::<T>();
    if recv.len() % size != 0 {
        return Err(shmpi::Error::InvalidArgument {
            class: shmpi::ErrorClass::Count,
            message: format!(
                "receive buffer length of {} bytes is not a whole number of {size}-byte elements",
                recv.len()
            ),
        });
    }
    // A misaligned receive buffer is reduced into an aligned copy, then copied back.
    let mut spare: Vec<T> = Vec::new();
    let aligned = bytemuck::try_cast_slice_mut::<u8, T>(recv).is_ok();
    if !aligned {
        spare = bytemuck::pod_collect_to_vec(recv);
    }
    {
        let out: &mut [T] = if aligned {
            bytemuck::cast_slice_mut(recv)
        } else {
            &mut spare
        };
        match (which, send) {
            (Which::Allreduce, None) => c.allreduce_in_place(out, op)?,
            (_, None) => {
                return Err(shmpi::Error::Usage(
                    "MPI.IN_PLACE is supported by this reduction only through the Python layer"
                        .into(),
                ));
            }
            (w, Some(s)) => {
                let s = as_elems::<T>(s)?;
                match w {
                    Which::Reduce => c.reduce_into(&s, out, op, root)?,
                    Which::Allreduce => c.allreduce_into(&s, out, op)?,
                    Which::Scan => c.scan_into(&s, out, op)?,
                    Which::Exscan => c.exscan_into(&s, out, op)?,
                }
            }
        }
    }
    if !aligned {
        recv.copy_from_slice(bytemuck::cast_slice(&spare));
    }
    Ok(())
}
