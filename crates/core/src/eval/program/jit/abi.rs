//! What the generated code assumes about the memory it reads and the helpers it calls: where
//! the numeric slots sit in [`Context`], and the two `extern "C"` helpers (with their tags)
//! that read what has no fixed offset, a declared field or a backend's measured figure.
//!
//! Why apart: these are the unsafe contracts between Rust's data and the machine code. Kept
//! together, the layout the emitter relies on and the helpers' safety conditions can be read
//! (and checked against [`Context`]) in one place.

use std::mem::offset_of;

use crate::eval::{Context, FieldValue};
use crate::expr::Slot;
use crate::measure::MeasuredProp;

/// Where the emitter reads the context's scalars that have no numeric [`Slot`] of their own
/// in [`num_offset`]: the spend and the budget (a `Fixed` is a transparent `i64`), the
/// priority and aspect ratio (enum indices, `u16`), and whether budget levels cap the
/// request (`bool`).
pub(super) const SPEND: usize = offset_of!(Context<'static>, monthly_spend);
pub(super) const BUDGET: usize = offset_of!(Context<'static>, monthly_budget);
pub(super) const PRIORITY: usize = offset_of!(Context<'static>, priority);
pub(super) const ASPECT_RATIO: usize = offset_of!(Context<'static>, aspect_ratio);
pub(super) const CAPPED: usize = offset_of!(Context<'static>, capped);

/// Tags [`read_field`] returns.
const UNSET: u32 = 0;
pub(super) const BOOL: u32 = 1;
pub(super) const NUM: u32 = 2;
pub(super) const STR: u32 = 3;
pub(super) const ENUM: u32 = 4;

/// Reads declared field `index` into `out` (a scalar in `out[0]`, or a string's pointer and
/// length) and returns its tag.
///
/// # Safety
/// `ctx` points to a live [`Context`] and `out` to two writable `u64`s.
pub(super) unsafe extern "C" fn read_field(ctx: *const u8, index: u64, out: *mut [u64; 2]) -> u32 {
    // SAFETY: the caller's contract.
    let ctx = unsafe { &*ctx.cast::<Context<'_>>() };
    let Some(Some(value)) = usize::try_from(index).ok().and_then(|i| ctx.fields.get(i)) else {
        return UNSET;
    };
    let (tag, words) = match value {
        FieldValue::Bool(b) => (BOOL, [u64::from(*b), 0]),
        FieldValue::Num(n) => (NUM, [n.micros() as u64, 0]),
        FieldValue::Str(s) => (STR, [s.as_ptr() as u64, s.len() as u64]),
        FieldValue::Enum(e) => (ENUM, [u64::from(*e), 0]),
    };
    // SAFETY: the caller's contract.
    unsafe { out.write(words) };
    tag
}

/// A measured figure's code in [`read_measured`]'s index: its position in
/// [`MeasuredProp::ALL`].
pub(super) fn measured_code(prop: MeasuredProp) -> i64 {
    MeasuredProp::ALL
        .iter()
        .position(|(p, _, _)| *p == prop)
        .map_or(0, |i| i as i64)
}

/// Reads a backend's measured figure for the generated code: `index` is the backend index
/// shifted left by 8, or'ed with [`measured_code`]. Answers [`NUM`] with the figure in micro
/// units, or [`UNSET`] when there is no data (the interpreter then gives the error).
///
/// # Safety
/// `ctx` points to a live [`Context`] and `out` to two writable words, as for
/// [`read_field`].
pub(super) unsafe extern "C" fn read_measured(
    ctx: *const u8,
    index: u64,
    out: *mut [u64; 2],
) -> u32 {
    // SAFETY: the caller's contract.
    let ctx = unsafe { &*ctx.cast::<Context<'_>>() };
    let (backend, code) = ((index >> 8) as usize, (index & 0xff) as usize);
    let Some((prop, _, _)) = MeasuredProp::ALL.get(code) else {
        return UNSET;
    };
    let figure = match ctx.measured.get(backend) {
        Some(m) => m.get(*prop),
        None if *prop == MeasuredProp::Samples => Some(crate::num::Fixed::ZERO),
        None => None,
    };
    let Some(v) = figure else {
        return UNSET;
    };
    // SAFETY: the caller's contract.
    unsafe { out.write([v.micros() as u64, 0]) };
    NUM
}

/// Where a numeric slot lives in [`Context`] (a `Fixed` is a transparent `i64`).
pub(super) fn num_offset(slot: Slot) -> Option<usize> {
    Some(match slot {
        Slot::Duration => offset_of!(Context<'static>, duration),
        Slot::QualityThreshold => offset_of!(Context<'static>, quality_threshold),
        Slot::MonthlySpend => SPEND,
        Slot::MonthlyBudget => BUDGET,
        Slot::CostThreshold => offset_of!(Context<'static>, cost_threshold),
        Slot::Failures => offset_of!(Context<'static>, failures),
        Slot::MonthProgress => offset_of!(Context<'static>, month_progress),
        Slot::DayOfMonth => offset_of!(Context<'static>, day_of_month),
        Slot::Hour => offset_of!(Context<'static>, hour),
        _ => return None,
    })
}
