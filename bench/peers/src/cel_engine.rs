//! CEL (cel-rust). Numbers: money, duration and quality_threshold are `double`, the counters
//! (failures, hour, day_of_month) are `int`; CEL does not compare `double` with `int` literals
//! in the spec, so literals compared with doubles are written as doubles (`8.0`, `10.0`).

use std::sync::Arc;

use cel::{Context, Env, Program, Value};

use crate::{wrong_answer, Ctx, Peer};

/// The six conditions in CEL.
pub const CONDITIONS: [&str; 6] = [
    "priority == 'quality' && budget_available",
    "monthly_spend >= cost_threshold",
    "priority == 'speed' && budget_available",
    "duration > 8.0 && aspect_ratio in ['9:16', '1:1']",
    "(monthly_spend + cost) / monthly_budget < 0.8 || priority == 'quality'",
    "priority != 'speed' && budget_available && duration <= 10.0 \
     && aspect_ratio in ['16:9', '9:16'] && monthly_spend < monthly_budget * 0.9 \
     && quality_threshold <= 0.9 && !(style == 'anime') && failures < 3 \
     && hour >= 6 && day_of_month <= 28",
];

pub struct Cel {
    env: Arc<Env>,
    programs: Vec<Program>,
}

impl Peer for Cel {
    const NAME: &'static str = "cel";
    type Input = Context<'static, 'static>;
    type View<'a> = &'a Context<'static, 'static>;
    type Scratch = ();

    fn compile() -> Self {
        let env = Arc::new(Env::stdlib());
        let programs = CONDITIONS
            .iter()
            .map(|src| {
                env.compile(src)
                    .unwrap_or_else(|e| panic!("cel: {src}: {e:?}"))
            })
            .collect();
        Cel { env, programs }
    }

    fn scratch(&self) {}

    fn build(&self, c: &Ctx) -> Context<'static, 'static> {
        let mut x = Context::with_env(Arc::clone(&self.env));
        x.add_variable_from_value("priority", c.priority);
        x.add_variable_from_value("duration", Value::Float(c.duration));
        x.add_variable_from_value("aspect_ratio", c.aspect_ratio);
        x.add_variable_from_value("quality_threshold", Value::Float(c.quality_threshold));
        x.add_variable_from_value("style", c.style);
        x.add_variable_from_value("monthly_spend", Value::Float(c.monthly_spend));
        x.add_variable_from_value("monthly_budget", Value::Float(c.monthly_budget));
        x.add_variable_from_value("cost_threshold", Value::Float(c.cost_threshold));
        x.add_variable_from_value("cost", Value::Float(c.cost));
        x.add_variable_from_value("budget_available", Value::Bool(c.budget_available));
        x.add_variable_from_value("failures", Value::Int(i64::from(c.failures)));
        x.add_variable_from_value("hour", Value::Int(i64::from(c.hour)));
        x.add_variable_from_value("day_of_month", Value::Int(i64::from(c.day_of_month)));
        x
    }

    fn view<'a>(&'a self, input: &'a mut Context<'static, 'static>) -> Self::View<'a> {
        input
    }

    #[inline(always)]
    fn eval(&self, _: &mut (), cond: usize, view: &mut Self::View<'_>) -> bool {
        match self.programs[cond].execute(view) {
            Ok(Value::Bool(b)) => b,
            other => wrong_answer("cel", cond, &other),
        }
    }
}
