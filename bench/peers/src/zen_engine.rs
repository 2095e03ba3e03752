//! ZEN expression language (zen-expression, GoRules). Standard expressions compiled once to
//! bytecode (`Isolate::compile_standard`), each evaluated by a reused `VM` over a `Scope` whose
//! base is the context object. Numbers are `rust_decimal::Decimal`, so money is exact:
//! `Decimal::from_f64` turns `0.5_f64` into exactly `0.5`.

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use zen_expression::expression::Standard;
use zen_expression::scope::Scope;
use zen_expression::variable::{Variable, VariableMap};
use zen_expression::vm::VM;
use zen_expression::{Expression, Isolate};

use crate::{wrong_answer, Ctx, Peer};

/// The six conditions in ZEN.
pub const CONDITIONS: [&str; 6] = [
    "priority == 'quality' and budget_available",
    "monthly_spend >= cost_threshold",
    "priority == 'speed' and budget_available",
    "duration > 8 and aspect_ratio in ['9:16', '1:1']",
    "(monthly_spend + cost) / monthly_budget < 0.8 or priority == 'quality'",
    "priority != 'speed' and budget_available and duration <= 10 \
     and aspect_ratio in ['16:9', '9:16'] and monthly_spend < monthly_budget * 0.9 \
     and quality_threshold <= 0.9 and not (style == 'anime') and failures < 3 \
     and hour >= 6 and day_of_month <= 28",
];

pub struct Zen {
    exprs: Vec<Expression<Standard>>,
}

fn num(x: f64) -> Variable {
    Variable::Number(Decimal::from_f64(x).unwrap_or_else(|| panic!("zen: {x} is not a decimal")))
}

fn int(x: u32) -> Variable {
    Variable::Number(Decimal::from(x))
}

fn string(s: &str) -> Variable {
    Variable::String(s.into())
}

impl Peer for Zen {
    const NAME: &'static str = "zen";
    type Input = Variable;
    type View<'a> = Scope;
    type Scratch = VM;

    fn compile() -> Self {
        let mut isolate = Isolate::new();
        let exprs = CONDITIONS
            .iter()
            .map(|src| {
                isolate
                    .compile_standard(src)
                    .unwrap_or_else(|e| panic!("zen: {src}: {e}"))
            })
            .collect();
        Zen { exprs }
    }

    fn scratch(&self) -> VM {
        VM::new()
    }

    fn build(&self, c: &Ctx) -> Variable {
        let mut m = VariableMap::with_capacity(13);
        let mut put = |k: &str, v: Variable| {
            m.insert(Variable::key(k), v);
        };
        put("priority", string(c.priority));
        put("duration", num(c.duration));
        put("aspect_ratio", string(c.aspect_ratio));
        put("quality_threshold", num(c.quality_threshold));
        put("style", string(c.style));
        put("monthly_spend", num(c.monthly_spend));
        put("monthly_budget", num(c.monthly_budget));
        put("cost_threshold", num(c.cost_threshold));
        put("cost", num(c.cost));
        put("budget_available", Variable::Bool(c.budget_available));
        put("failures", int(c.failures));
        put("hour", int(c.hour));
        put("day_of_month", int(c.day_of_month));
        Variable::from_object(m)
    }

    fn view<'a>(&'a self, input: &'a mut Variable) -> Scope {
        // `Variable` objects are reference-counted: this clone is a pointer copy.
        Scope::new(input.clone())
    }

    #[inline(always)]
    fn eval(&self, vm: &mut VM, cond: usize, scope: &mut Scope) -> bool {
        match self.exprs[cond].evaluate_with_scope(scope, vm) {
            Ok(Variable::Bool(b)) => b,
            other => wrong_answer("zen", cond, &other),
        }
    }
}
