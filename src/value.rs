//! [`Value`]: a dynamically typed value, for programs that do not know (or do not
//! want to declare) the type of what they receive, as mpi4py's `comm.recv()` returns
//! whatever was sent.
//!
//! A `Value` is an ordinary rkyv type, so it travels like any other object
//! (`send(&v, ..)`, `recv::<Value>(..)`, collectives). Maps keep their insertion order
//! and take any `Value` as a key, as Python's `dict` does. The [`value!`](crate::value!)
//! macro writes one in Python's literal syntax:
//!
//! ```
//! use shmpi::{Value, value};
//! let data = value!({"a": 7, "b": 3.14});     // data = {'a': 7, 'b': 3.14}
//! assert_eq!(data.get("a").and_then(Value::as_i64), Some(7));
//! assert_eq!(format!("{data:?}"), r#"{"a": 7, "b": 3.14}"#);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rkyv::{Archive, Deserialize, Serialize};

/// A dynamically typed value: null, a boolean, an integer, a float, a string, bytes, a
/// list or a map (mpi4py's `None`, `bool`, `int`, `float`, `str`, `bytes`, `list` and
/// `dict`).
///
/// Build one with `From` (`Value::from(7)`, `"text".into()`, a `Vec`, a `HashMap`, an
/// `Option`) or with the [`value!`](crate::value!) macro; read it with the `as_*`
/// accessors and [`get`](Value::get). Its `Debug` output reads like Python's `repr`.
#[derive(Archive, Serialize, Deserialize, Clone, PartialEq, Default)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(
    __C: rkyv::validation::ArchiveContext,
    __C::Error: rkyv::rancor::Source,
)))]
pub enum Value {
    /// No value (Python's `None`).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list of values.
    List(#[rkyv(omit_bounds)] Vec<Value>),
    /// Key-value pairs in insertion order; keys are unique when built through `From`
    /// or [`value!`](crate::value!) from unique keys, as a `dict` literal's are.
    Map(#[rkyv(omit_bounds)] Vec<(Value, Value)>),
}

impl Value {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The number as a float, if this is a float or an integer (as Python's `float(x)`).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The key-value pairs, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of a map under a string key (`data["a"]` in Python); `None` if this is
    /// not a map or has no such key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value of a map under any key, e.g. an integer (`data[1]` for a `dict`).
    pub fn get_key(&self, key: &Value) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The `i`-th element of a list.
    pub fn index(&self, i: usize) -> Option<&Value> {
        self.as_list()?.get(i)
    }

    /// The number of elements of a list, pairs of a map, bytes of a byte string or
    /// characters of a string (Python's `len`); `None` for scalars.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) => Some(s.chars().count()),
            Value::Bytes(b) => Some(b.len()),
            Value::List(l) => Some(l.len()),
            Value::Map(m) => Some(m.len()),
            _ => None,
        }
    }

    /// Whether [`len`](Value::len) is `Some(0)`.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// Python's `repr`: `None`, `True`, `7`, `3.14`, `"text"`, `b"\x00"`, `[..]`, `{k: v}`.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 => {
                write!(f, "{x:.1}")
            }
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v:?}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v:?}")?;
                }
                f.write_str("}")
            }
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Value {
                Value::Int(x.into())
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<f32> for Value {
    fn from(x: f32) -> Value {
        Value::Float(x.into())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Null
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>, const N: usize> From<[T; N]> for Value {
    fn from(v: [T; N]) -> Value {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

impl<K: Into<Value>, V: Into<Value>> From<HashMap<K, V>> for Value {
    fn from(m: HashMap<K, V>) -> Value {
        Value::Map(m.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<Value>, V: Into<Value>> From<BTreeMap<K, V>> for Value {
    fn from(m: BTreeMap<K, V>) -> Value {
        Value::Map(m.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<T: Into<Value>> FromIterator<T> for Value {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Value {
        Value::List(it.into_iter().map(Into::into).collect())
    }
}

/// Builds a [`Value`] in Python's literal syntax: `null` (Python's `None`), lists in
/// `[..]`, maps in `{key: value, ..}`, and any expression with a `From` conversion
/// (`7`, `-1.5`, `"text"`, `x + 1`, `Some(3)`). A key is one token (a literal, or an
/// expression in parentheses).
///
/// ```
/// use shmpi::{Value, value};
/// let n = 4;
/// let v = value!({"name": "grid", "dims": [n, n * 2], "periodic": true, 1: null});
/// assert_eq!(v.get("dims"), Some(&Value::from(vec![4, 8])));
/// assert_eq!(format!("{v:?}"), r#"{"name": "grid", "dims": [4, 8], "periodic": True, 1: None}"#);
/// ```
#[macro_export]
macro_rules! value {
    (null) => {
        $crate::Value::Null
    };
    ([ $($tt:tt)* ]) => {
        $crate::Value::List($crate::__value_list!([] () $($tt)*))
    };
    ({ $($tt:tt)* }) => {
        $crate::Value::Map($crate::__value_map!([] $($tt)*))
    };
    ($e:expr) => {
        $crate::Value::from($e)
    };
}

/// The elements of [`value!`]'s list: collects one element's tokens up to a comma.
#[doc(hidden)]
#[macro_export]
macro_rules! __value_list {
    ([$($done:expr,)*] ()) => {
        vec![$($done),*]
    };
    ([$($done:expr,)*] ($($cur:tt)+)) => {
        vec![$($done,)* $crate::value!($($cur)+)]
    };
    ([$($done:expr,)*] ($($cur:tt)+) , $($rest:tt)*) => {
        $crate::__value_list!([$($done,)* $crate::value!($($cur)+),] () $($rest)*)
    };
    ([$($done:expr,)*] ($($cur:tt)*) $next:tt $($rest:tt)*) => {
        $crate::__value_list!([$($done,)*] ($($cur)* $next) $($rest)*)
    };
}

/// The pairs of [`value!`]'s map: a one-token key, a colon, then the value's tokens
/// up to a comma.
#[doc(hidden)]
#[macro_export]
macro_rules! __value_map {
    ([$($done:expr,)*]) => {
        vec![$($done),*]
    };
    ([$($done:expr,)*] $key:tt : $($rest:tt)*) => {
        $crate::__value_map_val!([$($done,)*] $key () $($rest)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __value_map_val {
    ([$($done:expr,)*] $key:tt ($($cur:tt)+)) => {
        vec![$($done,)* ($crate::value!($key), $crate::value!($($cur)+))]
    };
    ([$($done:expr,)*] $key:tt ($($cur:tt)+) , $($rest:tt)*) => {
        $crate::__value_map!([$($done,)* ($crate::value!($key), $crate::value!($($cur)+)),] $($rest)*)
    };
    ([$($done:expr,)*] $key:tt ($($cur:tt)*) $next:tt $($rest:tt)*) => {
        $crate::__value_map_val!([$($done,)*] $key ($($cur)* $next) $($rest)*)
    };
}

#[cfg(test)]
#[allow(clippy::approx_constant)] // 3.14 is the lecture's value, not pi
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn values_of_every_kind_survive_an_archive_round_trip() {
        let v = crate::value!({
            "a": 7, "b": 3.14, "none": null, "t": true, "neg": -12,
            "s": "text", "bytes": (b"\x00\xff".as_slice()),
            "list": [1, [2, [3, []]], {}], 5: {"nested": [-1.5, "x"]}
        });
        let bytes = codec::encode(&v).unwrap();
        let back: Value = codec::decode(&bytes, 0, 0).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.get("a").and_then(Value::as_i64), Some(7));
        assert_eq!(back.get("b").and_then(Value::as_f64), Some(3.14));
        assert_eq!(
            back.get_key(&5.into())
                .unwrap()
                .get("nested")
                .unwrap()
                .len(),
            Some(2)
        );
    }

    #[test]
    fn debug_reads_like_python_repr() {
        let v =
            crate::value!({"a": 7, "b": 3.14, "c": [null, true, 2.0], "d": (b"a\n".as_slice())});
        assert_eq!(
            format!("{v:?}"),
            r#"{"a": 7, "b": 3.14, "c": [None, True, 2.0], "d": b"a\n"}"#
        );
    }

    #[test]
    fn conversions_from_std_types() {
        assert_eq!(Value::from(Some(3u8)), Value::Int(3));
        assert_eq!(Value::from(None::<i32>), Value::Null);
        assert_eq!(Value::from(vec!["x", "y"]).len(), Some(2));
        let m: HashMap<&str, f64> = [("k", 1.0)].into();
        assert_eq!(Value::from(m).get("k"), Some(&Value::Float(1.0)));
        assert_eq!((1..4).collect::<Value>(), crate::value!([1, 2, 3]));
    }
}
