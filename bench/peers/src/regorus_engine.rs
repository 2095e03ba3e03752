//! Rego (regorus), compiled to regorus's register VM ("RVM"): the policy is compiled once per
//! condition (`Engine::compile_with_entrypoint`, then `rvm` `Compiler::compile_from_policy`)
//! and each evaluation is `RegoVM::set_input` + `RegoVM::execute` on a VM loaded once.
//!
//! Rego has no `OR` operator inside a rule body: c5 is two bodies of the same rule. Each rule
//! has `default := false`, so a failed body yields `false` rather than undefined. Numbers
//! that are not whole are `f64` in regorus.

use std::collections::BTreeMap;
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::{Engine, Rc, Value};

use crate::{wrong_answer, Ctx, Peer};

/// The six conditions as rules of one Rego v1 policy.
pub const POLICY: &str = r#"package bench

default c1 := false

c1 if {
	input.priority == "quality"
	input.budget_available
}

default c2 := false

c2 if input.monthly_spend >= input.cost_threshold

default c3 := false

c3 if {
	input.priority == "speed"
	input.budget_available
}

default c4 := false

c4 if {
	input.duration > 8
	input.aspect_ratio in {"9:16", "1:1"}
}

default c5 := false

c5 if (input.monthly_spend + input.cost) / input.monthly_budget < 0.8

c5 if input.priority == "quality"

default c6 := false

c6 if {
	input.priority != "speed"
	input.budget_available
	input.duration <= 10
	input.aspect_ratio in {"16:9", "9:16"}
	input.monthly_spend < input.monthly_budget * 0.9
	input.quality_threshold <= 0.9
	not input.style == "anime"
	input.failures < 3
	input.hour >= 6
	input.day_of_month <= 28
}
"#;

pub struct Regorus {
    programs: Vec<Arc<Program>>,
}

impl Peer for Regorus {
    const NAME: &'static str = "regorus";
    type Input = Value;
    type View<'a> = &'a Value;
    /// One VM per condition, each loaded with its program once.
    type Scratch = Vec<RegoVM>;

    fn compile() -> Self {
        let programs = (1..=6)
            .map(|i| {
                let entry = format!("data.bench.c{i}");
                let mut engine = Engine::new();
                engine
                    .add_policy("bench.rego".to_string(), POLICY.to_string())
                    .unwrap_or_else(|e| panic!("regorus: {e}"));
                let compiled = engine
                    .compile_with_entrypoint(&Rc::from(entry.as_str()))
                    .unwrap_or_else(|e| panic!("regorus: {entry}: {e}"));
                Compiler::compile_from_policy(&compiled, &[entry.as_str()])
                    .unwrap_or_else(|e| panic!("regorus rvm: {entry}: {e}"))
            })
            .collect();
        Regorus { programs }
    }

    fn scratch(&self) -> Vec<RegoVM> {
        self.programs
            .iter()
            .map(|p| {
                let mut vm = RegoVM::new();
                vm.load_program(Arc::clone(p));
                vm
            })
            .collect()
    }

    fn build(&self, c: &Ctx) -> Value {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Value| {
            m.insert(Value::from(k), v);
        };
        put("priority", Value::from(c.priority));
        put("duration", Value::from(c.duration));
        put("aspect_ratio", Value::from(c.aspect_ratio));
        put("quality_threshold", Value::from(c.quality_threshold));
        put("style", Value::from(c.style));
        put("monthly_spend", Value::from(c.monthly_spend));
        put("monthly_budget", Value::from(c.monthly_budget));
        put("cost_threshold", Value::from(c.cost_threshold));
        put("cost", Value::from(c.cost));
        put("budget_available", Value::from(c.budget_available));
        put("failures", Value::from(c.failures));
        put("hour", Value::from(c.hour));
        put("day_of_month", Value::from(c.day_of_month));
        Value::from(m)
    }

    fn view<'a>(&'a self, input: &'a mut Value) -> &'a Value {
        input
    }

    #[inline(always)]
    fn eval(&self, vms: &mut Vec<RegoVM>, cond: usize, view: &mut &Value) -> bool {
        let vm = &mut vms[cond];
        // `Value` is reference-counted: this clone is a pointer copy.
        vm.set_input((*view).clone());
        match vm.execute() {
            Ok(Value::Bool(b)) => b,
            other => wrong_answer("regorus", cond, &other),
        }
    }
}
