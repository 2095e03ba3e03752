//! JSONLogic (datalogic-rs). Rules are compiled once (`Engine::compile`); the context is a
//! `DataValue` object built straight from the struct (no JSON text), and each evaluation is
//! `Engine::evaluate` on that value with an arena that is reset before the call. Numbers are
//! `f64` (whole ones may be stored as `i64`); `==` is JSONLogic's loose equality, used here on
//! strings only. `in` with an array literal tests membership.

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::{DataValue, Engine, Logic};

use crate::{wrong_answer, Ctx, Peer};

/// The six conditions in JSONLogic.
pub const CONDITIONS: [&str; 6] = [
    r#"{"and": [{"==": [{"var": "priority"}, "quality"]}, {"var": "budget_available"}]}"#,
    r#"{">=": [{"var": "monthly_spend"}, {"var": "cost_threshold"}]}"#,
    r#"{"and": [{"==": [{"var": "priority"}, "speed"]}, {"var": "budget_available"}]}"#,
    r#"{"and": [{">": [{"var": "duration"}, 8]},
                {"in": [{"var": "aspect_ratio"}, ["9:16", "1:1"]]}]}"#,
    r#"{"or": [{"<": [{"/": [{"+": [{"var": "monthly_spend"}, {"var": "cost"}]},
                             {"var": "monthly_budget"}]}, 0.8]},
               {"==": [{"var": "priority"}, "quality"]}]}"#,
    r#"{"and": [{"!=": [{"var": "priority"}, "speed"]},
                {"var": "budget_available"},
                {"<=": [{"var": "duration"}, 10]},
                {"in": [{"var": "aspect_ratio"}, ["16:9", "9:16"]]},
                {"<": [{"var": "monthly_spend"}, {"*": [{"var": "monthly_budget"}, 0.9]}]},
                {"<=": [{"var": "quality_threshold"}, 0.9]},
                {"!": {"==": [{"var": "style"}, "anime"]}},
                {"<": [{"var": "failures"}, 3]},
                {">=": [{"var": "hour"}, 6]},
                {"<=": [{"var": "day_of_month"}, 28]}]}"#,
];

pub struct Datalogic {
    engine: Engine,
    rules: Vec<Logic>,
}

/// The context's fields; [`Peer::view`] wraps them in a `DataValue::Object`.
pub type Fields = [(&'static str, DataValue<'static>); 13];

impl Peer for Datalogic {
    const NAME: &'static str = "datalogic";
    type Input = Fields;
    type View<'a> = DataValue<'a>;
    /// The arena results are allocated in; reset before every evaluation.
    type Scratch = Bump;

    fn compile() -> Self {
        let engine = Engine::new();
        let rules = CONDITIONS
            .iter()
            .map(|src| {
                engine
                    .compile(*src)
                    .unwrap_or_else(|e| panic!("datalogic: {src}: {e}"))
            })
            .collect();
        Datalogic { engine, rules }
    }

    fn scratch(&self) -> Bump {
        Bump::new()
    }

    fn build(&self, c: &Ctx) -> Fields {
        [
            ("priority", DataValue::from_borrowed_str(c.priority)),
            ("duration", DataValue::from_f64(c.duration)),
            ("aspect_ratio", DataValue::from_borrowed_str(c.aspect_ratio)),
            (
                "quality_threshold",
                DataValue::from_f64(c.quality_threshold),
            ),
            ("style", DataValue::from_borrowed_str(c.style)),
            ("monthly_spend", DataValue::from_f64(c.monthly_spend)),
            ("monthly_budget", DataValue::from_f64(c.monthly_budget)),
            ("cost_threshold", DataValue::from_f64(c.cost_threshold)),
            ("cost", DataValue::from_f64(c.cost)),
            ("budget_available", DataValue::bool(c.budget_available)),
            ("failures", DataValue::from_i64(i64::from(c.failures))),
            ("hour", DataValue::from_i64(i64::from(c.hour))),
            (
                "day_of_month",
                DataValue::from_i64(i64::from(c.day_of_month)),
            ),
        ]
    }

    fn view<'a>(&'a self, input: &'a mut Fields) -> DataValue<'a> {
        DataValue::Object(&input[..])
    }

    #[inline(always)]
    fn eval(&self, arena: &mut Bump, cond: usize, view: &mut DataValue<'_>) -> bool {
        arena.reset();
        let arena: &Bump = arena;
        match self.engine.evaluate(&self.rules[cond], *view, arena) {
            Ok(v) => match v.as_bool() {
                Some(b) => b,
                None => wrong_answer("datalogic", cond, &v),
            },
            Err(e) => wrong_answer("datalogic", cond, &e),
        }
    }
}
