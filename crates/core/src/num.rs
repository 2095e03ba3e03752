//! Exact decimal numbers.
//!
//! Every number genroute handles, money included, is a fixed-point decimal with six places,
//! stored as an `i64` count of millionths. Why not `f64`: a budget check such as
//! `spend + cost <= budget` must never drift, and `0.1 + 0.2` must equal `0.3`. Why not a
//! big-decimal crate: six places cover micro-dollars, the arithmetic is a handful of checked
//! integer operations, and a `Copy` integer keeps the decision path allocation-free.
//!
//! Arithmetic is checked: overflow and division by zero are errors, never wrapped values.
//! Division and multiplication truncate toward zero at the sixth decimal place.

use std::fmt;
use std::str::FromStr;

/// The number of millionths in one unit.
pub const SCALE: i64 = 1_000_000;
/// Decimal places kept.
pub const PLACES: usize = 6;

/// An exact decimal with six places (micro-units). Money is a `Fixed` in US dollars.
///
/// It is a transparent `i64`: the condition JIT (`src/eval/program/jit.rs`) loads it as one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Fixed(i64);

/// Why a number could not be parsed or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumError {
    /// The text is not a plain decimal such as `12` or `0.05`.
    #[error("`{0}` is not a decimal number")]
    Syntax(String),
    /// More than six decimal places.
    #[error("`{0}` has more than 6 decimal places")]
    TooPrecise(String),
    /// Outside the representable range.
    #[error("`{0}` is too large")]
    Overflow(String),
}

impl Fixed {
    /// Zero.
    pub const ZERO: Fixed = Fixed(0);
    /// One.
    pub const ONE: Fixed = Fixed(SCALE);

    /// A value from its count of millionths.
    pub const fn from_micros(micros: i64) -> Fixed {
        Fixed(micros)
    }

    /// The count of millionths.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// A whole number.
    pub fn from_int(n: i64) -> Option<Fixed> {
        n.checked_mul(SCALE).map(Fixed)
    }

    /// Converts a float that is meant to be a short decimal (as YAML and JSON deliver `0.05`).
    ///
    /// The float is rounded to the nearest millionth, and the result must convert back to the
    /// very same float, so `0.05` is accepted exactly and `0.0000001` is refused instead of
    /// being rounded away.
    pub fn from_f64_exact(x: f64) -> Result<Fixed, NumError> {
        if !x.is_finite() {
            return Err(NumError::Syntax(x.to_string()));
        }
        let scaled = (x * SCALE as f64).round();
        if scaled.abs() >= i64::MAX as f64 {
            return Err(NumError::Overflow(x.to_string()));
        }
        let micros = scaled as i64;
        if micros as f64 / SCALE as f64 != x {
            return Err(NumError::TooPrecise(x.to_string()));
        }
        Ok(Fixed(micros))
    }

    /// The nearest value with six decimals, for quantities that are not money (seconds, a
    /// quality fraction), where a float's last digits carry no meaning.
    pub fn from_f64_rounded(x: f64) -> Result<Fixed, NumError> {
        if !x.is_finite() {
            return Err(NumError::Syntax(x.to_string()));
        }
        let scaled = (x * SCALE as f64).round();
        if scaled.abs() >= i64::MAX as f64 {
            return Err(NumError::Overflow(x.to_string()));
        }
        Ok(Fixed(scaled as i64))
    }

    /// The nearest float, for display in JSON.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Fixed) -> Option<Fixed> {
        self.0.checked_add(rhs.0).map(Fixed)
    }

    /// `self - rhs`, or `None` on overflow.
    pub fn checked_sub(self, rhs: Fixed) -> Option<Fixed> {
        self.0.checked_sub(rhs.0).map(Fixed)
    }

    /// `self * rhs`, truncated to six places, or `None` on overflow.
    pub fn checked_mul(self, rhs: Fixed) -> Option<Fixed> {
        // The common case in 64 bits: a 128-bit division is a library call, ten times slower.
        if let Some(product) = self.0.checked_mul(rhs.0) {
            return Some(Fixed(product / SCALE));
        }
        let wide = i128::from(self.0) * i128::from(rhs.0) / i128::from(SCALE);
        i64::try_from(wide).ok().map(Fixed)
    }

    /// `self / rhs`, truncated to six places, or `None` on overflow or division by zero.
    pub fn checked_div(self, rhs: Fixed) -> Option<Fixed> {
        if rhs.0 == 0 {
            return None;
        }
        if let Some(q) = self.0.checked_mul(SCALE).and_then(|n| n.checked_div(rhs.0)) {
            return Some(Fixed(q));
        }
        let wide = i128::from(self.0) * i128::from(SCALE) / i128::from(rhs.0);
        i64::try_from(wide).ok().map(Fixed)
    }

    /// `-self`, or `None` on overflow.
    pub fn checked_neg(self) -> Option<Fixed> {
        self.0.checked_neg().map(Fixed)
    }

    /// True when the value is below zero.
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The number of decimal places needed to write the value exactly (0 to 6).
    pub fn scale(self) -> usize {
        let mut frac = (self.0 % SCALE).unsigned_abs();
        if frac == 0 {
            return 0;
        }
        let mut places = PLACES;
        while frac.is_multiple_of(10) {
            frac /= 10;
            places -= 1;
        }
        places
    }
}

impl FromStr for Fixed {
    type Err = NumError;

    /// Parses `123`, `0.05`, `-1.5`. No exponents, no more than six decimal places.
    fn from_str(text: &str) -> Result<Fixed, NumError> {
        let syntax = || NumError::Syntax(text.to_string());
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits_only(int) || !digits_only(frac) {
            return Err(syntax());
        }
        if body.contains('.') && frac.is_empty() {
            return Err(syntax());
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > PLACES {
            return Err(NumError::TooPrecise(text.to_string()));
        }
        let overflow = || NumError::Overflow(text.to_string());
        let int: i64 = int.parse().map_err(|_| overflow())?;
        let frac_micros: i64 = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<width$}", width = PLACES);
            padded.parse().map_err(|_| syntax())?
        };
        let micros = int
            .checked_mul(SCALE)
            .and_then(|m| m.checked_add(frac_micros))
            .ok_or_else(overflow)?;
        Ok(Fixed(if negative { -micros } else { micros }))
    }
}

impl fmt::Display for Fixed {
    /// The shortest exact form: `0.8`, `12`, `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / SCALE as u64;
        let frac = abs % SCALE as u64;
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let digits = format!("{frac:06}");
        write!(f, "{sign}{int}.{}", digits.trim_end_matches('0'))
    }
}

/// Money as people read it: `$` and at least two decimals (`$50.00`, `$0.07`, `$0.005`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd(pub Fixed);

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let (sign, digits) = match text.strip_prefix('-') {
            Some(d) => ("-", d),
            None => ("", text.as_str()),
        };
        match digits.split_once('.') {
            Some((int, frac)) if frac.len() >= 2 => write!(f, "{sign}${int}.{frac}"),
            Some((int, frac)) => write!(f, "{sign}${int}.{frac:0<2}"),
            None => write!(f, "{sign}${digits}.00"),
        }
    }
}

impl fmt::Debug for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The name [`Fixed`] gives itself as a serde newtype struct ([`SERDE_NAME`]).
///
/// Formats that have no decimal type (JSON, YAML) see through newtype structs, so they print a
/// plain number; a serializer that does have one (the Python bindings' `decimal.Decimal`)
/// recognises the name and keeps the value exact.
pub const SERDE_NAME: &str = "genroute::Fixed";

/// The number itself, as [`Fixed`] serializes it inside its newtype struct.
struct AsNumber(Fixed);

impl serde::Serialize for AsNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0 .0;
        if v % SCALE == 0 {
            s.serialize_i64(v / SCALE)
        } else {
            s.serialize_f64(self.0.to_f64())
        }
    }
}

impl serde::Serialize for Fixed {
    /// Serialized as a JSON number (the nearest float), which is what consumers of explain
    /// JSON expect. The exact value is always recoverable: it has at most six decimals.
    /// The number is wrapped in a newtype struct named [`SERDE_NAME`], which JSON and YAML
    /// do not show.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(SERDE_NAME, &AsNumber(*self))
    }
}

impl<'de> serde::Deserialize<'de> for Fixed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fixed, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Fixed;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal number with at most 6 decimal places")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Fixed, E> {
                Fixed::from_int(v).ok_or_else(|| E::custom(NumError::Overflow(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Fixed, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(Fixed::from_int)
                    .ok_or_else(|| E::custom(NumError::Overflow(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Fixed, E> {
                Fixed::from_f64_exact(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Fixed, E> {
                v.trim().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Fixed {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["number", "string"],
            "description": "An exact decimal with at most 6 decimal places, e.g. 0.05"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(s: &str) -> Fixed {
        s.parse().unwrap()
    }

    #[test]
    fn point_one_plus_point_two_equals_point_three() {
        assert_eq!(fx("0.1").checked_add(fx("0.2")), Some(fx("0.3")));
        let a = Fixed::from_f64_exact(0.1).unwrap();
        let b = Fixed::from_f64_exact(0.2).unwrap();
        assert_eq!(a.checked_add(b), Some(Fixed::from_f64_exact(0.3).unwrap()));
    }

    #[test]
    fn seven_cents_a_hundred_times_is_seven_dollars() {
        let mut total = Fixed::ZERO;
        for _ in 0..100 {
            total = total.checked_add(fx("0.07")).unwrap();
        }
        assert_eq!(total, fx("7"));
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["0", "12", "0.05", "-1.5", "99.98", "0.000001"] {
            assert_eq!(fx(s).to_string(), s);
        }
        assert_eq!(fx("0.800").to_string(), "0.8");
    }

    #[test]
    fn refuses_bad_text() {
        assert!(matches!("1e5".parse::<Fixed>(), Err(NumError::Syntax(_))));
        assert!(matches!("1.".parse::<Fixed>(), Err(NumError::Syntax(_))));
        assert!(matches!(".5".parse::<Fixed>(), Err(NumError::Syntax(_))));
        assert!(matches!(
            "0.0000001".parse::<Fixed>(),
            Err(NumError::TooPrecise(_))
        ));
        assert!(matches!(
            "99999999999999999".parse::<Fixed>(),
            Err(NumError::Overflow(_))
        ));
        assert!(Fixed::from_f64_exact(0.0000001).is_err());
        assert!(Fixed::from_f64_exact(f64::NAN).is_err());
    }

    #[test]
    fn division_truncates_and_refuses_zero() {
        assert_eq!(fx("80").checked_div(fx("100")), Some(fx("0.8")));
        assert_eq!(fx("1").checked_div(fx("3")), Some(fx("0.333333")));
        assert_eq!(fx("1").checked_div(Fixed::ZERO), None);
        assert_eq!(fx("2.5").checked_mul(fx("0.1")), Some(fx("0.25")));
    }

    #[test]
    fn scale_counts_places() {
        assert_eq!(fx("0.05").scale(), 2);
        assert_eq!(fx("3").scale(), 0);
        assert_eq!(fx("0.123456").scale(), 6);
    }
}
