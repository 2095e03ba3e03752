//! The draw of a weighted split (see [`crate::split`] for why it is a rendezvous hash): which
//! eligible arm a request's key lands on, and every arm's share for explain.
//!
//! **Why here, not in `split`.** An arm is drawn only among the *eligible* arms, and
//! eligibility is the decision's concept ([`super::eligibility`]); the split itself (its arms,
//! key and weights) is plain policy data that the policy model holds. Keeping the draw here
//! keeps `split` below the policy and the decision above both.

use super::{eligibility, Ineligible};
use crate::eval::{Context, FieldValue};
use crate::num::Fixed;
use crate::policy::Policy;
use crate::split::{Split, SplitKey};

/// One arm as a draw saw it, for explain.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmDraw {
    /// Backend index.
    pub backend: u16,
    /// Its weight as written.
    pub weight: Fixed,
    /// The weight used: after dynamic weighting and a rollback.
    pub effective: Fixed,
    /// Why it is not eligible (empty when it is).
    pub ineligible: Ineligible,
    /// Its share of the eligible weight, 0 to 1.
    pub share: f64,
    /// Whether the draw chose it.
    pub chosen: bool,
}

/// The hash of the request's key, seeded by the split.
fn key_hash(split: &Split, ctx: &Context<'_>) -> u64 {
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    if let SplitKey::Field(i) = split.key {
        match ctx.fields.get(i as usize) {
            Some(Some(FieldValue::Str(s))) => return xxh3_64_with_seed(s.as_bytes(), split.salt),
            Some(Some(FieldValue::Num(n))) => {
                return xxh3_64_with_seed(&n.micros().to_le_bytes(), split.salt)
            }
            Some(Some(FieldValue::Enum(e))) => {
                return xxh3_64_with_seed(&e.to_le_bytes(), split.salt)
            }
            Some(Some(FieldValue::Bool(b))) => return xxh3_64_with_seed(&[*b as u8], split.salt),
            _ => {}
        }
    }
    xxh3_64_with_seed(ctx.request_key.as_bytes(), split.salt)
}

/// An arm's score for a key: the lower wins. `None` for a weight of zero.
fn score(key: u64, backend: u16, weight: f64) -> Option<f64> {
    if weight <= 0.0 {
        return None;
    }
    // splitmix64's finalizer over the key's hash and the backend: a full-avalanche mix, so
    // each arm's `u` is independent of the others' for the same key.
    let mut h = key ^ (u64::from(backend) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    // Uniform in (0, 1): 53 bits, never 0.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    Some(-u.ln() / weight)
}

/// The arm the draw picks among the eligible ones, by index into `split.arms`, and the
/// picked arm's eligibility; when no arm is eligible, `None` and the first arm's reasons.
pub fn pick(policy: &Policy, split: &Split, ctx: &Context<'_>) -> (Option<usize>, Ineligible) {
    let key = key_hash(split, ctx);
    let mean = split.dynamic_mean(ctx);
    let mut best: Option<(usize, f64)> = None;
    let mut first_reasons = None;
    for (i, a) in split.arms.iter().enumerate() {
        let Some(b) = policy.backend(a.backend) else {
            continue;
        };
        let why = eligibility(b, a.backend, a.cost, ctx, false);
        if !why.is_eligible() {
            first_reasons.get_or_insert(why);
            continue;
        }
        let Some(s) = score(key, a.backend, split.weight_f64(i, ctx, mean)) else {
            continue;
        };
        if best.is_none_or(|(_, x)| s < x) {
            best = Some((i, s));
        }
    }
    match best {
        Some((i, _)) => (Some(i), Ineligible::default()),
        None => (None, first_reasons.unwrap_or_default()),
    }
}

/// Every arm with its weight, eligibility, share and whether it was drawn.
pub fn arms(policy: &Policy, split: &Split, ctx: &Context<'_>) -> Vec<ArmDraw> {
    let (picked, _) = pick(policy, split, ctx);
    let mut out: Vec<ArmDraw> = split
        .arms
        .iter()
        .enumerate()
        .map(|(i, a)| ArmDraw {
            backend: a.backend,
            weight: a.weight,
            effective: split.effective_weight(i, ctx),
            ineligible: policy
                .backend(a.backend)
                .map(|b| eligibility(b, a.backend, a.cost, ctx, false))
                .unwrap_or_default(),
            share: 0.0,
            chosen: picked == Some(i),
        })
        .collect();
    let total: f64 = out
        .iter()
        .filter(|a| a.ineligible.is_eligible())
        .map(|a| a.effective.to_f64())
        .sum();
    for a in &mut out {
        if a.ineligible.is_eligible() && total > 0.0 {
            a.share = a.effective.to_f64() / total;
        }
    }
    out
}
