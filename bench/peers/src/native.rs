//! The floor: each condition as a hand-written Rust function over a plain struct with enums
//! for the enumerated fields.

use crate::{Ctx, Peer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Quality,
    Balanced,
    Speed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    Landscape16x9,
    Portrait9x16,
    Square1x1,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeCtx {
    pub priority: Priority,
    pub duration: f64,
    pub aspect_ratio: Aspect,
    pub quality_threshold: f64,
    pub style: &'static str,
    pub monthly_spend: f64,
    pub monthly_budget: f64,
    pub cost_threshold: f64,
    pub cost: f64,
    pub budget_available: bool,
    pub failures: u32,
    pub hour: u32,
    pub day_of_month: u32,
}

fn c1(c: &NativeCtx) -> bool {
    c.priority == Priority::Quality && c.budget_available
}

fn c2(c: &NativeCtx) -> bool {
    c.monthly_spend >= c.cost_threshold
}

fn c3(c: &NativeCtx) -> bool {
    c.priority == Priority::Speed && c.budget_available
}

fn c4(c: &NativeCtx) -> bool {
    c.duration > 8.0 && matches!(c.aspect_ratio, Aspect::Portrait9x16 | Aspect::Square1x1)
}

fn c5(c: &NativeCtx) -> bool {
    (c.monthly_spend + c.cost) / c.monthly_budget < 0.8 || c.priority == Priority::Quality
}

fn c6(c: &NativeCtx) -> bool {
    c.priority != Priority::Speed
        && c.budget_available
        && c.duration <= 10.0
        && matches!(c.aspect_ratio, Aspect::Landscape16x9 | Aspect::Portrait9x16)
        && c.monthly_spend < c.monthly_budget * 0.9
        && c.quality_threshold <= 0.9
        && c.style != "anime"
        && c.failures < 3
        && c.hour >= 6
        && c.day_of_month <= 28
}

/// The six conditions, `c1` first.
pub const FNS: [fn(&NativeCtx) -> bool; 6] = [c1, c2, c3, c4, c5, c6];

pub struct Native;

impl Peer for Native {
    const NAME: &'static str = "native";
    type Input = NativeCtx;
    type View<'a> = &'a NativeCtx;
    type Scratch = ();

    fn compile() -> Self {
        Native
    }

    fn scratch(&self) {}

    fn build(&self, c: &Ctx) -> NativeCtx {
        NativeCtx {
            priority: match c.priority {
                "quality" => Priority::Quality,
                "balanced" => Priority::Balanced,
                "speed" => Priority::Speed,
                other => panic!("unknown priority {other:?}"),
            },
            duration: c.duration,
            aspect_ratio: match c.aspect_ratio {
                "16:9" => Aspect::Landscape16x9,
                "9:16" => Aspect::Portrait9x16,
                "1:1" => Aspect::Square1x1,
                other => panic!("unknown aspect ratio {other:?}"),
            },
            quality_threshold: c.quality_threshold,
            style: c.style,
            monthly_spend: c.monthly_spend,
            monthly_budget: c.monthly_budget,
            cost_threshold: c.cost_threshold,
            cost: c.cost,
            budget_available: c.budget_available,
            failures: c.failures,
            hour: c.hour,
            day_of_month: c.day_of_month,
        }
    }

    fn view<'a>(&'a self, input: &'a mut NativeCtx) -> &'a NativeCtx {
        input
    }

    #[inline(always)]
    fn eval(&self, _: &mut (), cond: usize, view: &mut &NativeCtx) -> bool {
        FNS[cond](view)
    }
}
