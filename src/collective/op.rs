//! Reduction operations: the built-in [`Op`]s (`MPI_Op`: `MPI_SUM`, `MPI_MINLOC` ...)
//! on the element types they make sense for ([`Reducible`]), and user closures.
//!
//! Reductions combine contributions in rank order, `c0 op c1 op ... op c(n-1)`
//! (left to right), so a closure need not be commutative (it must be associative, as
//! in MPI). Floating-point sums may therefore differ from a serial sum in a different
//! order by rounding only.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, ErrorClass, Result};

/// A built-in reduction operation (`MPI_Op`, MPI 4.1 §6.9.2; `MinLoc` and `MaxLoc`
/// §6.9.4).
///
/// # Examples
///
/// ```
/// use shmpi::{DoubleInt, Op};
/// let world = shmpi::init()?.world();
/// // mpi4py: comm.allreduce((value, rank), op=MPI.MAXLOC)
/// let mine = [DoubleInt { value: world.rank() as f64, index: world.rank() as i64 }];
/// let mut best = [DoubleInt::default()];
/// world.allreduce_into(&mine, &mut best, Op::MaxLoc)?;
/// assert_eq!(best[0].index, world.size() as i64 - 1);
/// # Ok::<(), shmpi::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Sum (`MPI_SUM`); wrapping for integers.
    Sum,
    /// Product (`MPI_PROD`); wrapping for integers.
    Prod,
    /// Minimum (`MPI_MIN`).
    Min,
    /// Maximum (`MPI_MAX`).
    Max,
    /// Logical and (`MPI_LAND`) of integers: nonzero is true, the result is 0 or 1.
    LogicalAnd,
    /// Logical or (`MPI_LOR`) of integers.
    LogicalOr,
    /// Logical exclusive or (`MPI_LXOR`) of integers.
    LogicalXor,
    /// Bitwise and (`MPI_BAND`) of integers.
    BitAnd,
    /// Bitwise or (`MPI_BOR`) of integers.
    BitOr,
    /// Bitwise exclusive or (`MPI_BXOR`) of integers.
    BitXor,
    /// Minimum value and the smallest index holding it (`MPI_MINLOC`), on
    /// value-index pairs such as [`DoubleInt`].
    MinLoc,
    /// Maximum value and the smallest index holding it (`MPI_MAXLOC`).
    MaxLoc,
}

impl Op {
    pub(crate) fn code(self) -> u8 {
        self as u8 + 1
    }
}

pub(crate) fn op_name(code: u8) -> &'static str {
    const NAMES: [&str; 12] = [
        "Sum",
        "Prod",
        "Min",
        "Max",
        "LogicalAnd",
        "LogicalOr",
        "LogicalXor",
        "BitAnd",
        "BitOr",
        "BitXor",
        "MinLoc",
        "MaxLoc",
    ];
    match code {
        super::OP_CLOSURE => "a closure",
        c if (1..=12).contains(&c) => NAMES[c as usize - 1],
        _ => "?",
    }
}

/// Element types the built-in [`Op`]s apply to: the primitive integers (every op but
/// `MinLoc`/`MaxLoc`), `f32`/`f64` (`Sum`, `Prod`, `Min`, `Max`) and the
/// value-index pairs (`MinLoc`, `MaxLoc`).
pub trait Reducible: Pod {
    /// Whether `op` is defined for this type.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::{Op, Reducible};
    /// assert!(<u32 as Reducible>::supports(Op::BitXor));
    /// assert!(!<f64 as Reducible>::supports(Op::BitXor));
    /// ```
    fn supports(op: Op) -> bool;
    /// `acc[i] = acc[i] op x[i]` for every `i` of the shorter of the two slices.
    ///
    /// # Panics
    ///
    /// When `op` is not supported ([`supports`](Self::supports) is `false`); the
    /// collectives check that first and return an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::{Op, Reducible};
    /// let mut acc = [1i32, 5];
    /// <i32 as Reducible>::apply(Op::Max, &mut acc, &[3, 2]);
    /// assert_eq!(acc, [3, 5]);
    /// ```
    fn apply(op: Op, acc: &mut [Self], x: &[Self]);
}

fn zip<T: Copy>(acc: &mut [T], x: &[T], f: impl Fn(T, T) -> T) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a = f(*a, *b);
    }
}

macro_rules! int_reducible {
    ($($t:ty),*) => {$(
        impl Reducible for $t {
            fn supports(op: Op) -> bool {
                !matches!(op, Op::MinLoc | Op::MaxLoc)
            }
            fn apply(op: Op, acc: &mut [Self], x: &[Self]) {
                match op {
                    Op::Sum => zip(acc, x, |a, b| a.wrapping_add(b)),
                    Op::Prod => zip(acc, x, |a, b| a.wrapping_mul(b)),
                    Op::Min => zip(acc, x, |a, b| a.min(b)),
                    Op::Max => zip(acc, x, |a, b| a.max(b)),
                    Op::LogicalAnd => zip(acc, x, |a, b| ((a != 0) && (b != 0)) as $t),
                    Op::LogicalOr => zip(acc, x, |a, b| ((a != 0) || (b != 0)) as $t),
                    Op::LogicalXor => zip(acc, x, |a, b| ((a != 0) != (b != 0)) as $t),
                    Op::BitAnd => zip(acc, x, |a, b| a & b),
                    Op::BitOr => zip(acc, x, |a, b| a | b),
                    Op::BitXor => zip(acc, x, |a, b| a ^ b),
                    Op::MinLoc | Op::MaxLoc => unreachable!("checked by supports"),
                }
            }
        }
    )*};
}

int_reducible!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

macro_rules! float_reducible {
    ($($t:ty),*) => {$(
        impl Reducible for $t {
            fn supports(op: Op) -> bool {
                matches!(op, Op::Sum | Op::Prod | Op::Min | Op::Max)
            }
            fn apply(op: Op, acc: &mut [Self], x: &[Self]) {
                match op {
                    Op::Sum => zip(acc, x, |a, b| a + b),
                    Op::Prod => zip(acc, x, |a, b| a * b),
                    Op::Min => zip(acc, x, |a, b| a.min(b)),
                    Op::Max => zip(acc, x, |a, b| a.max(b)),
                    _ => unreachable!("checked by supports"),
                }
            }
        }
    )*};
}

float_reducible!(f32, f64);

macro_rules! loc_pair {
    ($(#[$m:meta])* $name:ident, $v:ty, $i:ty) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Default, Pod, Zeroable)]
        #[repr(C)]
        pub struct $name {
            /// The value compared.
            pub value: $v,
            /// Its index (for example the rank that holds it).
            pub index: $i,
        }

        impl Reducible for $name {
            fn supports(op: Op) -> bool {
                matches!(op, Op::MinLoc | Op::MaxLoc)
            }
            fn apply(op: Op, acc: &mut [Self], x: &[Self]) {
                let min = op == Op::MinLoc;
                zip(acc, x, |a, b| {
                    let b_wins = if min { b.value < a.value } else { b.value > a.value };
                    if b_wins {
                        b
                    } else if b.value == a.value {
                        $name { value: a.value, index: a.index.min(b.index) }
                    } else {
                        a
                    }
                })
            }
        }
    };
}

loc_pair!(
    /// A `f64` value with an `i64` index, for [`Op::MinLoc`]/[`Op::MaxLoc`]
    /// (`MPI_DOUBLE_INT`, widened to avoid padding).
    DoubleInt, f64, i64
);
loc_pair!(
    /// A `f32` value with an `i32` index (`MPI_FLOAT_INT`).
    FloatInt, f32, i32
);
loc_pair!(
    /// An `i32` value with an `i32` index (`MPI_2INT`).
    IntInt, i32, i32
);
loc_pair!(
    /// An `i64` value with an `i64` index (`MPI_LONG_INT`, widened).
    LongInt, i64, i64
);

/// A reduction for slices of `T`: a built-in [`Op`] (for `T: Reducible`) or a closure
/// `Fn(&T, &T) -> T` applied elementwise (write its argument types out:
/// `|a: &f64, b: &f64| a.max(*b)`).
pub trait ReduceOp<T> {
    /// Fails if the op is not defined for `T`; a closure is defined for every `T`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] of class `Op`, naming the op and the type, when a
    /// built-in [`Op`] is not defined for `T` (`Op::BitAnd` on `f64`), as the object
    /// reductions report it ([`ObjectReducible::reduce`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::{Op, ReduceOp};
    /// assert!(ReduceOp::<f64>::check(&Op::Sum).is_ok());
    /// let e = ReduceOp::<f64>::check(&Op::BitAnd).unwrap_err();
    /// assert_eq!(e.class(), shmpi::ErrorClass::Op);
    /// ```
    fn check(&self) -> Result<()>;
    /// The op's code in call signatures (every closure has the same code, so ranks
    /// that pass different closures are not told apart).
    fn code(&self) -> u8;
    /// `acc[i] = acc[i] op x[i]` for every `i` of the shorter of the two slices.
    fn apply(&self, acc: &mut [T], x: &[T]);
}

impl<T: Reducible> ReduceOp<T> for Op {
    fn check(&self) -> Result<()> {
        if T::supports(*self) {
            Ok(())
        } else {
            Err(Error::invalid(
                ErrorClass::Op,
                format!(
                    "the reduction op {self:?} is not defined for elements of type `{}`",
                    std::any::type_name::<T>()
                ),
            ))
        }
    }
    fn code(&self) -> u8 {
        Op::code(*self)
    }
    fn apply(&self, acc: &mut [T], x: &[T]) {
        T::apply(*self, acc, x)
    }
}

impl<T, F: Fn(&T, &T) -> T> ReduceOp<T> for F {
    fn check(&self) -> Result<()> {
        Ok(())
    }
    fn code(&self) -> u8 {
        super::OP_CLOSURE
    }
    fn apply(&self, acc: &mut [T], x: &[T]) {
        for (a, b) in acc.iter_mut().zip(x) {
            *a = self(a, b);
        }
    }
}

/// Values the built-in [`Op`]s combine in the object reductions
/// ([`allreduce_op`](crate::Communicator::allreduce_op) and its kin), as mpi4py's
/// `comm.allreduce(x, op=MPI.SUM)` does on Python objects: the primitive numbers (the
/// ops [`Reducible`] defines for them), `bool` (logical ops, `Min`, `Max`), pairs
/// `(value, index)` (`MinLoc`, `MaxLoc`: the extreme value and the smallest index
/// holding it; other ops elementwise), triples and `Vec`s (elementwise), and
/// [`Value`](crate::Value) (numbers as Python combines them, and `Sum` concatenating
/// strings, bytes and lists as Python's `+`).
pub trait ObjectReducible: Sized {
    /// `a op b`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] of class `Op` where `op` is not defined for the values
    /// (`BitAnd` on floats, `Vec`s of different lengths, `Sum` of a string and a
    /// number).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpi::{ObjectReducible, Op, Value};
    /// assert_eq!(ObjectReducible::reduce(Op::MinLoc, &(2.0, 7), &(2.0, 3))?, (2.0, 3));
    /// assert_eq!(Vec::reduce(Op::Max, &vec![1, 9], &vec![4, 2])?, vec![4, 9]);
    /// let s = Value::reduce(Op::Sum, &Value::Str("ab".into()), &Value::Str("c".into()))?;
    /// assert_eq!(s, Value::Str("abc".into()));
    /// assert!(f64::reduce(Op::BitAnd, &1.0, &2.0).is_err());
    /// # Ok::<(), shmpi::Error>(())
    /// ```
    fn reduce(op: Op, a: &Self, b: &Self) -> Result<Self>;
}

fn undefined<T>(op: Op) -> Error {
    Error::invalid(
        ErrorClass::Op,
        format!(
            "the reduction op {op:?} is not defined for values of type `{}`",
            std::any::type_name::<T>()
        ),
    )
}

macro_rules! object_reducible {
    ($($t:ty),*) => {$(
        impl ObjectReducible for $t {
            fn reduce(op: Op, a: &Self, b: &Self) -> Result<Self> {
                if !<$t as Reducible>::supports(op) {
                    return Err(undefined::<$t>(op));
                }
                let mut acc = [*a];
                <$t as Reducible>::apply(op, &mut acc, &[*b]);
                Ok(acc[0])
            }
        }
    )*};
}

object_reducible!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64
);

impl ObjectReducible for bool {
    fn reduce(op: Op, a: &Self, b: &Self) -> Result<Self> {
        match op {
            Op::LogicalAnd | Op::Min | Op::BitAnd | Op::Prod => Ok(*a && *b),
            Op::LogicalOr | Op::Max | Op::BitOr => Ok(*a || *b),
            Op::LogicalXor | Op::BitXor => Ok(*a != *b),
            _ => Err(undefined::<bool>(op)),
        }
    }
}

impl<A, B> ObjectReducible for (A, B)
where
    A: ObjectReducible + PartialOrd + Clone,
    B: ObjectReducible + Ord + Clone,
{
    fn reduce(op: Op, a: &Self, b: &Self) -> Result<Self> {
        match op {
            Op::MinLoc | Op::MaxLoc => {
                let b_wins = if op == Op::MinLoc {
                    b.0 < a.0
                } else {
                    b.0 > a.0
                };
                Ok(if b_wins {
                    b.clone()
                } else if b.0 == a.0 {
                    (a.0.clone(), a.1.clone().min(b.1.clone()))
                } else {
                    a.clone()
                })
            }
            _ => Ok((A::reduce(op, &a.0, &b.0)?, B::reduce(op, &a.1, &b.1)?)),
        }
    }
}

impl<A: ObjectReducible, B: ObjectReducible, C: ObjectReducible> ObjectReducible for (A, B, C) {
    fn reduce(op: Op, a: &Self, b: &Self) -> Result<Self> {
        Ok((
            A::reduce(op, &a.0, &b.0)?,
            B::reduce(op, &a.1, &b.1)?,
            C::reduce(op, &a.2, &b.2)?,
        ))
    }
}

impl<T: ObjectReducible> ObjectReducible for Vec<T> {
    fn reduce(op: Op, a: &Self, b: &Self) -> Result<Self> {
        if a.len() != b.len() {
            return Err(Error::invalid(
                ErrorClass::Op,
                format!(
                    "{op:?} combines vectors elementwise, but two contributions have {} and {} \
                     elements",
                    a.len(),
                    b.len()
                ),
            ));
        }
        a.iter().zip(b).map(|(x, y)| T::reduce(op, x, y)).collect()
    }
}

impl ObjectReducible for crate::Value {
    fn reduce(op: Op, a: &Self, b: &Self) -> Result<Self> {
        use crate::Value::{Bool, Bytes, Float, Int, List, Str};
        let num = |x: &Self| x.as_f64();
        Ok(match (op, a, b) {
            (_, Int(x), Int(y)) if !matches!(op, Op::MinLoc | Op::MaxLoc) => {
                Int(i64::reduce(op, x, y)?)
            }
            (_, Bool(x), Bool(y)) => Bool(bool::reduce(op, x, y)?),
            (Op::Sum | Op::Prod | Op::Min | Op::Max, Int(_) | Float(_), Int(_) | Float(_)) => {
                Float(f64::reduce(
                    op,
                    &num(a).unwrap_or(0.0),
                    &num(b).unwrap_or(0.0),
                )?)
            }
            (Op::Sum, Str(x), Str(y)) => Str(format!("{x}{y}")),
            (Op::Sum, Bytes(x), Bytes(y)) => Bytes([&x[..], &y[..]].concat()),
            (Op::Sum, List(x), List(y)) => List(x.iter().chain(y).cloned().collect()),
            (Op::Min | Op::Max, Str(x), Str(y)) => {
                let keep_a = (x <= y) == (op == Op::Min);
                Str(if keep_a { x.clone() } else { y.clone() })
            }
            _ => {
                return Err(Error::invalid(
                    ErrorClass::Op,
                    format!("the reduction op {op:?} is not defined for {a:?} and {b:?}"),
                ));
            }
        })
    }
}
