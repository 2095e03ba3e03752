//! Rust values to Python objects through their serde `Serialize`: the same impls that write
//! the CLI's and the server's JSON, so `to_dict()` has the very keys and nesting of
//! `to_json()`.
//!
//! The one difference is numbers: genroute's numbers are exact decimals
//! ([`genroute_core::Fixed`]), which JSON prints as plain numbers. A `Fixed` names itself as a
//! serde newtype struct ([`genroute_core::num::SERDE_NAME`]), so here it becomes a
//! `decimal.Decimal` with its exact value (`Decimal("0.1")`, `Decimal("100")`), never a float.
//! Plain integers (`latency_ms`, `failures`, `line`) stay `int`, and floats inside free-form
//! JSON values (a name read by a clause) are decimals too, since every fractional number
//! genroute emits is a `Fixed`.
//!
//! This is the way out to Python for every class, not only for `to_dict()`: a `Fixed` getter
//! returns [`decimal_from_fixed`], `to_json()` is [`json`], a `__repr__` writes an optional
//! string with [`py_str`]. It sits at the bottom of the crate and uses none of its modules,
//! so that anything, the error constructors included, can use it.

use genroute_core::Fixed;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use serde::ser::{self, Serialize};

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `decimal.Decimal`.
pub fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

/// `Decimal(str(f))`: the exact value, never through a float.
pub fn decimal_from_fixed(py: Python<'_>, f: Fixed) -> PyResult<Bound<'_, PyAny>> {
    decimal_type(py)?.call1((f.to_string(),))
}

/// An optional `Fixed` as an optional Decimal.
pub fn opt_decimal(py: Python<'_>, f: Option<Fixed>) -> PyResult<Bound<'_, PyAny>> {
    match f {
        Some(f) => decimal_from_fixed(py, f),
        None => Ok(py.None().into_bound(py)),
    }
}

/// Serializes to JSON the way the CLI does (`pretty`) or compactly: every `to_json()`.
pub fn json<T: Serialize>(v: &T, pretty: bool) -> PyResult<String> {
    let out = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    };
    out.map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// `'text'` or `None`, as Python writes an optional string (for `__repr__`s).
pub fn py_str(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "None".into(),
    }
}

/// A Python exception carried through serde.
#[derive(Debug)]
pub struct SerError(pub PyErr);

impl std::fmt::Display for SerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        SerError(pyo3::exceptions::PyValueError::new_err(msg.to_string()))
    }
}

impl From<PyErr> for SerError {
    fn from(e: PyErr) -> Self {
        SerError(e)
    }
}

/// Converts `value` into Python objects (dicts, lists, str, int, bool, None, Decimal).
pub fn to_py<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    value.serialize(PySer { py, fixed: false }).map_err(|e| e.0)
}

#[derive(Clone, Copy)]
struct PySer<'py> {
    py: Python<'py>,
    /// Inside a `Fixed`: the next number is an exact decimal.
    fixed: bool,
}

type R<'py> = Result<Bound<'py, PyAny>, SerError>;

impl<'py> PySer<'py> {
    fn obj<T: IntoPyObject<'py>>(self, v: T) -> R<'py> {
        v.into_bound_py_any(self.py).map_err(SerError)
    }

    fn decimal_int(self, v: i128) -> R<'py> {
        match i64::try_from(v).ok().and_then(Fixed::from_int) {
            Some(f) => Ok(decimal_from_fixed(self.py, f)?),
            None => self.obj(v),
        }
    }
}

use pyo3::conversion::IntoPyObjectExt;

pub struct Seq<'py> {
    py: Python<'py>,
    items: Vec<Bound<'py, PyAny>>,
    tuple: bool,
}

pub struct Map<'py> {
    py: Python<'py>,
    dict: Bound<'py, PyDict>,
    key: Option<Bound<'py, PyAny>>,
}

pub struct Variant<'py, S> {
    name: &'static str,
    inner: S,
    py: Python<'py>,
}

impl<'py> ser::Serializer for PySer<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    type SerializeSeq = Seq<'py>;
    type SerializeTuple = Seq<'py>;
    type SerializeTupleStruct = Seq<'py>;
    type SerializeTupleVariant = Variant<'py, Seq<'py>>;
    type SerializeMap = Map<'py>;
    type SerializeStruct = Map<'py>;
    type SerializeStructVariant = Variant<'py, Map<'py>>;

    fn serialize_bool(self, v: bool) -> R<'py> {
        self.obj(v)
    }
    fn serialize_i8(self, v: i8) -> R<'py> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> R<'py> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> R<'py> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> R<'py> {
        if self.fixed {
            self.decimal_int(i128::from(v))
        } else {
            self.obj(v)
        }
    }
    fn serialize_u8(self, v: u8) -> R<'py> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> R<'py> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> R<'py> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> R<'py> {
        if self.fixed {
            self.decimal_int(i128::from(v))
        } else {
            self.obj(v)
        }
    }
    fn serialize_f32(self, v: f32) -> R<'py> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> R<'py> {
        // Every fractional number genroute emits is a six-place decimal; its nearest float
        // converts back exactly. A float that is not one (none is emitted today) stays a float
        // rather than being rounded into a decimal it never was.
        match genroute_core::Fixed::from_f64_exact(v) {
            Ok(f) => Ok(decimal_from_fixed(self.py, f)?),
            Err(_) => self.obj(v),
        }
    }
    fn serialize_char(self, v: char) -> R<'py> {
        self.obj(v.to_string())
    }
    fn serialize_str(self, v: &str) -> R<'py> {
        self.obj(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> R<'py> {
        Ok(pyo3::types::PyBytes::new(self.py, v).into_any())
    }
    fn serialize_none(self) -> R<'py> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R<'py> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> R<'py> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> R<'py> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> R<'py> {
        self.obj(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> R<'py> {
        value.serialize(PySer {
            py: self.py,
            fixed: name == genroute_core::num::SERDE_NAME,
        })
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> R<'py> {
        let dict = PyDict::new(self.py);
        dict.set_item(variant, value.serialize(self)?)?;
        Ok(dict.into_any())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'py>, SerError> {
        Ok(Seq {
            py: self.py,
            items: Vec::with_capacity(len.unwrap_or(0)),
            tuple: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'py>, SerError> {
        Ok(Seq {
            py: self.py,
            items: Vec::with_capacity(len),
            tuple: true,
        })
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq<'py>, SerError> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<'py, Seq<'py>>, SerError> {
        Ok(Variant {
            name: variant,
            inner: self.serialize_tuple(len)?,
            py: self.py,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'py>, SerError> {
        Ok(Map {
            py: self.py,
            dict: PyDict::new(self.py),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Map<'py>, SerError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<'py, Map<'py>>, SerError> {
        Ok(Variant {
            name: variant,
            inner: self.serialize_map(Some(len))?,
            py: self.py,
        })
    }
}

fn ser<'py>(py: Python<'py>) -> PySer<'py> {
    PySer { py, fixed: false }
}

impl<'py> Seq<'py> {
    fn finish(self) -> R<'py> {
        if self.tuple {
            Ok(PyTuple::new(self.py, self.items)?.into_any())
        } else {
            Ok(PyList::new(self.py, self.items)?.into_any())
        }
    }
}

impl<'py> ser::SerializeSeq for Seq<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.items.push(value.serialize(ser(self.py))?);
        Ok(())
    }
    fn end(self) -> R<'py> {
        self.finish()
    }
}

impl<'py> ser::SerializeTuple for Seq<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R<'py> {
        self.finish()
    }
}

impl<'py> ser::SerializeTupleStruct for Seq<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R<'py> {
        self.finish()
    }
}

impl<'py> ser::SerializeTupleVariant for Variant<'py, Seq<'py>> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(&mut self.inner, value)
    }
    fn end(self) -> R<'py> {
        let dict = PyDict::new(self.py);
        dict.set_item(self.name, self.inner.finish()?)?;
        Ok(dict.into_any())
    }
}

impl<'py> ser::SerializeMap for Map<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        self.key = Some(key.serialize(ser(self.py))?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <SerError as ser::Error>::custom("a map value without its key"))?;
        self.dict.set_item(key, value.serialize(ser(self.py))?)?;
        Ok(())
    }
    fn end(self) -> R<'py> {
        Ok(self.dict.into_any())
    }
}

impl<'py> ser::SerializeStruct for Map<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.dict.set_item(key, value.serialize(ser(self.py))?)?;
        Ok(())
    }
    fn end(self) -> R<'py> {
        Ok(self.dict.into_any())
    }
}

impl<'py> ser::SerializeStructVariant for Variant<'py, Map<'py>> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> R<'py> {
        let dict = PyDict::new(self.py);
        dict.set_item(self.name, self.inner.dict)?;
        Ok(dict.into_any())
    }
}
