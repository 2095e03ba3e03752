//! Weighted splits: a rule that sends shares of its traffic to several backends.
//!
//! **The draw is a weighted rendezvous hash.** Each eligible arm gets a score from a hash of
//! the request's key and the arm's backend, `-ln(u) / weight` with `u` uniform in (0, 1), and
//! the lowest score wins. This is the exponential race: an arm wins with probability exactly
//! `weight / Σ weights` over the eligible arms, so
//! - one key always lands on the same arm while the arms and weights stay (sticky per user),
//! - an ineligible arm drops out of the race and its share goes to the others in proportion
//!   to their weights, and *only its* keys move (every other key keeps its arm), and
//! - a rolled-back experiment (its arms' weights at zero) sends exactly their keys home.
//!
//! The hash is xxh3, seeded by the rule's name, so two splits over the same backends draw
//! independently and the same policy draws the same way in every process, in `simulate`
//! and in tests. The key is the request field named by `split_key`, else the request's id,
//! else its prompt (so `genroute decide` without an id is still deterministic).
//!
//! Deciding with a split allocates nothing: [`pick`] keeps only the best score; [`arms`]
//! lists every arm for explain.

use crate::decide::{eligibility, Ineligible};
use crate::eval::{Context, FieldValue};
use crate::measure::MeasuredProp;
use crate::num::Fixed;
use crate::policy::Policy;

/// A rule's split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The arms, as written.
    pub arms: Vec<Arm>,
    /// What the draw hashes.
    pub key: SplitKey,
    /// Weights moved by measured figures, when set.
    pub dynamic: Option<Dynamic>,
    /// The experiment run on this split, by index into the policy's experiments, with its
    /// primary arm's index.
    pub experiment: Option<(u16, u16)>,
    /// Seed of the hash: the rule's name, hashed.
    pub salt: u64,
}

/// One arm of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    /// Backend index.
    pub backend: u16,
    /// Weight as written (the prior of dynamic weights).
    pub weight: Fixed,
    /// Model to run on it.
    pub model: Option<String>,
    /// Cost of that model.
    pub cost: Fixed,
}

/// What a split hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKey {
    /// A declared request field; its value when set, else the request id.
    Field(u16),
    /// The request id (else the prompt).
    RequestId,
}

/// `dynamic_weights:` of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dynamic {
    /// The measured figure that moves the weights.
    pub by: MeasuredProp,
    /// Lower is better (latency, flicker): weights move inversely to the figure.
    pub inverse: bool,
    /// Smallest weight an arm can get.
    pub floor: Fixed,
    /// Largest weight an arm can get.
    pub ceiling: Fixed,
    /// Samples an arm needs before its figure counts; below, it keeps its written weight.
    pub min_samples: u32,
}

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

impl Split {
    /// Whether the experiment on this split was rolled back in `ctx`.
    pub fn rolled_back(&self, ctx: &Context<'_>) -> bool {
        self.experiment
            .is_some_and(|(e, _)| ctx.rolled_back.get(e as usize).copied().unwrap_or(false))
    }

    /// The weight an arm draws with now.
    pub fn effective_weight(&self, arm: usize, ctx: &Context<'_>) -> Fixed {
        let mean = self.dynamic_mean(ctx);
        let w = self.weight_f64(arm, ctx, mean);
        if self.dynamic.is_none() || w == 0.0 {
            return if w == 0.0 {
                Fixed::ZERO
            } else {
                self.arms[arm].weight
            };
        }
        Fixed::from_f64_rounded(w).unwrap_or(self.arms[arm].weight)
    }

    /// An arm's dynamic figure, when it counts (enough samples, positive).
    fn figure(&self, arm: usize, ctx: &Context<'_>) -> Option<f64> {
        let d = self.dynamic?;
        let m = ctx.measured.get(self.arms[arm].backend as usize)?;
        if m.samples < d.min_samples {
            return None;
        }
        m.get(d.by).map(Fixed::to_f64).filter(|v| *v > 0.0)
    }

    /// The mean dynamic figure over the arms that have one (0 without dynamic weights).
    fn dynamic_mean(&self, ctx: &Context<'_>) -> f64 {
        if self.dynamic.is_none() {
            return 0.0;
        }
        let (sum, count) = (0..self.arms.len())
            .filter_map(|i| self.figure(i, ctx))
            .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
        if count == 0 {
            0.0
        } else {
            sum / f64::from(count)
        }
    }

    /// An arm's weight as a float, given [`Split::dynamic_mean`].
    fn weight_f64(&self, arm: usize, ctx: &Context<'_>, mean: f64) -> f64 {
        let a = &self.arms[arm];
        if let Some((_, primary)) = self.experiment {
            if arm != primary as usize && self.rolled_back(ctx) {
                return 0.0;
            }
        }
        let written = a.weight.to_f64();
        let (Some(d), Some(mine)) = (self.dynamic, self.figure(arm, ctx)) else {
            return written;
        };
        let factor = if d.inverse { mean / mine } else { mine / mean };
        (written * factor).clamp(d.floor.to_f64(), d.ceiling.to_f64())
    }
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
