//! A condition on its own, outside any rule.
//!
//! Agents that want the evaluator without the router (a guard, a filter, a feature switch)
//! compile a condition against a policy's vocabulary once and evaluate it against contexts
//! built from live requests. It is the same parser, checker and compiled [`Program`] that
//! rules use, so a condition means the same here as in a policy file.

use crate::check::check_condition;
use crate::check::scope::{BackendFacts, Scope, Target};
use crate::diag::{Diagnostic, Source};
use crate::eval::{evaluate_bool, Context, EvalError, EvalErrorKind, Program};
use crate::expr::CExpr;
use crate::lang::parse::parse_condition;
use crate::policy::load::facts_of;
use crate::policy::Policy;
use crate::request::Request;
use crate::state::State;
use crate::LoadError;

/// A checked and compiled condition. See the module docs.
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
    tree: CExpr,
    program: Program,
}

impl Condition {
    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its compiled program: whether it runs as machine code, and each evaluator on its own.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Evaluates it. An error names the sub-expression that raised it.
    #[inline(always)]
    pub fn evaluate(&self, ctx: &Context<'_>) -> Result<bool, EvalError> {
        self.program.run(ctx).map_err(|kind| self.locate(kind, ctx))
    }

    /// The rare path: the tree walker locates the error.
    #[cold]
    #[inline(never)]
    fn locate(&self, kind: EvalErrorKind, ctx: &Context<'_>) -> EvalError {
        match evaluate_bool(&self.tree, ctx) {
            Err(located) => located,
            Ok(_) => EvalError::new(self.tree.span, kind),
        }
    }
}

impl Policy {
    /// Compiles `text` against this policy's names. Backend-scoped names (`cost`,
    /// `budget_available`, `breaker`, …) refer to `target`, as they do in a rule that targets
    /// it; without a target only `backends.<name>.*` reaches them.
    ///
    /// ```
    /// # let policy = genroute_core::Policy::from_yaml("demo.yaml", genroute_core::DEMO_POLICY).unwrap();
    /// let guard = policy.condition("priority == 'quality' AND budget_available", Some("veo"))?;
    /// let request = genroute_core::RequestBuilder::new("a fox").set("priority", "quality").build(&policy)?;
    /// let state = genroute_core::State::new(&policy, "2026-11-25T12:00:00Z".parse()?);
    /// assert_eq!(guard.evaluate(&policy.context(&request, &state)), Ok(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn condition(&self, text: &str, target: Option<&str>) -> Result<Condition, LoadError> {
        let source = Source::new("<condition>", text);
        let fail = |diagnostics: Vec<Diagnostic>| LoadError {
            source: source.clone(),
            diagnostics,
        };
        let target = match target {
            None => None,
            Some(name) => {
                let Some(i) = self.backend_index(name) else {
                    let names = self.backends.iter().map(|b| b.name.as_str());
                    let help = match crate::check::scope::did_you_mean(name, names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "name one of the policy's backends".to_string(),
                    };
                    return Err(fail(vec![Diagnostic::error(
                        "unknown-backend",
                        format!("unknown target backend `{name}`"),
                    )
                    .help(help)]));
                };
                Some(Target {
                    backend: i,
                    cost: self.backends[i as usize].default_cost,
                })
            }
        };
        let tree = parse_condition(text).map_err(|e| {
            fail(vec![Diagnostic::error("syntax", e.message)
                .help(e.help)
                .at(e.span.range(), "here")])
        })?;
        let facts: Vec<BackendFacts> = self.backends.iter().map(facts_of).collect();
        let scope = Scope {
            enums: &self.enums,
            fields: &self.fields,
            tenant: &self.tenant_fields,
            backends: &facts,
            target,
            lookup: None,
            video: false,
        };
        let tree = check_condition(&tree, &scope).map_err(|errors| {
            fail(
                errors
                    .into_iter()
                    .map(|e| {
                        Diagnostic::error(e.code, e.message)
                            .help(e.help)
                            .at(e.span.range(), e.label)
                    })
                    .collect(),
            )
        })?;
        Ok(Condition {
            text: text.to_string(),
            program: Program::compile(&tree),
            tree,
        })
    }

    /// The context a decision for `request` in `state` evaluates conditions against.
    pub fn context<'a>(&self, request: &'a Request, state: &'a State) -> Context<'a> {
        crate::decide::context(self, request, state)
    }
}
