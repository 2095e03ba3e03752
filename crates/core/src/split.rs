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
//! This module is the split as a policy holds it and its weights; the draw itself is
//! [`crate::decide::pick`] (it needs eligibility, which is the decision's). Deciding with a
//! split allocates nothing: `pick` keeps only the best score; `arms` lists every arm for
//! explain.

use crate::eval::Context;
use crate::measure::MeasuredProp;
use crate::num::Fixed;

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
    pub(crate) fn dynamic_mean(&self, ctx: &Context<'_>) -> f64 {
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
    pub(crate) fn weight_f64(&self, arm: usize, ctx: &Context<'_>, mean: f64) -> f64 {
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
