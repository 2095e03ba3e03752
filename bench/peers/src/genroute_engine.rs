//! genroute itself: conditions compiled with `Policy::condition` against the bench policy's
//! one backend, `veo` (so bare `cost` and `budget_available` are veo's), evaluated on the
//! `Context` that `Policy::context` builds from a `Request` and a `State`. Numbers are exact
//! fixed-point decimals (`genroute::Fixed`).
//!
//! `monthly_budget`, `cost_threshold` and `cost` are the policy's own figures; [`Genroute::build`]
//! asserts that the `Ctx` agrees with them.

use chrono::{TimeZone, Utc};
use genroute::eval::Context;
use genroute::request::Input;
use genroute::{Condition, Fixed, Policy, Request, State};

use crate::{wrong_answer, Ctx, Peer, CONDITIONS};

/// The bench policy (`bench/peers/policy.yaml`).
pub const POLICY: &str = include_str!("../policy.yaml");

/// The backend conditions are compiled against.
pub const TARGET: &str = "veo";

pub struct Genroute {
    policy: Policy,
    conditions: Vec<Condition>,
    budget: f64,
    threshold: f64,
    cost: f64,
}

fn fixed(x: f64) -> Fixed {
    Fixed::from_f64_exact(x).unwrap_or_else(|e| panic!("genroute: {x}: {e}"))
}

impl Genroute {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl Peer for Genroute {
    const NAME: &'static str = "genroute";
    type Input = (Request, State);
    type View<'a> = Context<'a>;
    type Scratch = ();

    fn compile() -> Self {
        let policy = Policy::from_yaml("policy.yaml", POLICY)
            .unwrap_or_else(|e| panic!("genroute: bench policy:\n{e}"));
        let conditions = CONDITIONS
            .iter()
            .map(|src| {
                policy
                    .condition(src, Some(TARGET))
                    .unwrap_or_else(|e| panic!("genroute: {src}:\n{e}"))
            })
            .collect();
        let index = policy.backend_index(TARGET).expect("bench policy has veo");
        let veo = policy.backend(index).expect("bench policy has veo");
        let (budget, threshold, cost) = (
            policy.budget.monthly.to_f64(),
            policy.budget.threshold.to_f64(),
            veo.cost_of(None).to_f64(),
        );
        Genroute {
            policy,
            conditions,
            budget,
            threshold,
            cost,
        }
    }

    fn scratch(&self) {}

    fn build(&self, c: &Ctx) -> (Request, State) {
        assert_eq!(
            c.monthly_budget, self.budget,
            "Ctx budget differs from the policy's"
        );
        assert_eq!(
            c.cost_threshold, self.threshold,
            "Ctx threshold differs from the policy's"
        );
        assert_eq!(c.cost, self.cost, "Ctx cost differs from veo's");
        // The typed path an embedding router uses: the same validation as a JSON body.
        let p = &self.policy;
        let mut request = Request::with_defaults(p, "bench");
        let set = |r: &mut Request, field: &str, value: Input<'_>| {
            r.set(p, field, value)
                .unwrap_or_else(|e| panic!("genroute: request: {e}"))
        };
        set(&mut request, "priority", c.priority.into());
        set(&mut request, "duration", fixed(c.duration).into());
        set(&mut request, "aspect_ratio", c.aspect_ratio.into());
        set(
            &mut request,
            "quality_threshold",
            fixed(c.quality_threshold).into(),
        );
        set(&mut request, "style", c.style.into());
        let now = Utc
            .with_ymd_and_hms(2026, 11, c.day_of_month, c.hour, 0, 0)
            .single()
            .unwrap_or_else(|| {
                panic!(
                    "genroute: no such time: day {} hour {}",
                    c.day_of_month, c.hour
                )
            });
        let state = State::new(&self.policy, now)
            .with_spend(fixed(c.monthly_spend))
            .with_failures(c.failures);
        (request, state)
    }

    fn view<'a>(&'a self, input: &'a mut (Request, State)) -> Context<'a> {
        let (request, state) = &*input;
        self.policy.context(request, state)
    }

    #[inline(always)]
    fn eval(&self, _: &mut (), cond: usize, ctx: &mut Context<'_>) -> bool {
        match self.conditions[cond].evaluate(ctx) {
            Ok(b) => b,
            Err(e) => wrong_answer("genroute", cond, &e),
        }
    }
}
