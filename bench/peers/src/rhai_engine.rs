//! Rhai, as an expression (`Engine::compile_expression`) evaluated against a `Scope`.
//! Numbers: money, duration and quality_threshold are `FLOAT` (f64), the counters are `INT`.
//! Rhai compares `FLOAT` with `INT` literals, so the literals are written as in genroute.

use rhai::{Engine, ImmutableString, Scope, AST, FLOAT, INT};

use crate::{wrong_answer, Ctx, Peer};

/// The six conditions in Rhai.
pub const CONDITIONS: [&str; 6] = [
    r#"priority == "quality" && budget_available"#,
    r#"monthly_spend >= cost_threshold"#,
    r#"priority == "speed" && budget_available"#,
    r#"duration > 8 && aspect_ratio in ["9:16", "1:1"]"#,
    r#"(monthly_spend + cost) / monthly_budget < 0.8 || priority == "quality""#,
    r#"priority != "speed" && budget_available && duration <= 10
       && aspect_ratio in ["16:9", "9:16"] && monthly_spend < monthly_budget * 0.9
       && quality_threshold <= 0.9 && !(style == "anime") && failures < 3
       && hour >= 6 && day_of_month <= 28"#,
];

pub struct Rhai {
    engine: Engine,
    asts: Vec<AST>,
}

impl Peer for Rhai {
    const NAME: &'static str = "rhai";
    type Input = Scope<'static>;
    type View<'a> = &'a mut Scope<'static>;
    type Scratch = ();

    fn compile() -> Self {
        let engine = Engine::new();
        let asts = CONDITIONS
            .iter()
            .map(|src| {
                engine
                    .compile_expression(src)
                    .unwrap_or_else(|e| panic!("rhai: {src}: {e}"))
            })
            .collect();
        Rhai { engine, asts }
    }

    fn scratch(&self) {}

    fn build(&self, c: &Ctx) -> Scope<'static> {
        let mut s = Scope::with_capacity(13);
        s.push_constant("priority", ImmutableString::from(c.priority));
        s.push_constant("duration", c.duration as FLOAT);
        s.push_constant("aspect_ratio", ImmutableString::from(c.aspect_ratio));
        s.push_constant("quality_threshold", c.quality_threshold as FLOAT);
        s.push_constant("style", ImmutableString::from(c.style));
        s.push_constant("monthly_spend", c.monthly_spend as FLOAT);
        s.push_constant("monthly_budget", c.monthly_budget as FLOAT);
        s.push_constant("cost_threshold", c.cost_threshold as FLOAT);
        s.push_constant("cost", c.cost as FLOAT);
        s.push_constant("budget_available", c.budget_available);
        s.push_constant("failures", c.failures as INT);
        s.push_constant("hour", c.hour as INT);
        s.push_constant("day_of_month", c.day_of_month as INT);
        s
    }

    fn view<'a>(&'a self, input: &'a mut Scope<'static>) -> Self::View<'a> {
        input
    }

    #[inline(always)]
    fn eval(&self, _: &mut (), cond: usize, view: &mut Self::View<'_>) -> bool {
        match self
            .engine
            .eval_ast_with_scope::<bool>(view, &self.asts[cond])
        {
            Ok(b) => b,
            Err(e) => wrong_answer("rhai", cond, &e),
        }
    }
}
