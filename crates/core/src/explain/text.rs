//! The text report that `genroute explain` prints: the request and state, each rule with its
//! clauses and outcome, each backend's standing, and the decision.
//!
//! Why apart: the layout of the report is presentation only, read by people and pinned by
//! snapshot tests; the data it shows is the serialized [`Explanation`], which the JSON output
//! gives unchanged.

use std::fmt::Write as _;

use crate::num::Fixed;

use super::Explanation;

impl Explanation {
    /// The human-readable report that `genroute explain` prints.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let r = &self.request;
        let _ = write!(
            o,
            "request   priority = '{}', duration = {}, aspect_ratio = '{}', quality_threshold = {}",
            r.priority, r.duration, r.aspect_ratio, r.quality_threshold
        );
        if let Some(s) = &r.style {
            let _ = write!(o, ", style = {s:?}");
        }
        for (k, v) in &r.fields {
            let _ = write!(o, ", {k} = {}", show(v));
        }
        let c = &self.context;
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "budget    monthly_spend = {} of monthly_budget = {} (budget_remaining = {}), cost_threshold = {}",
            c.monthly_spend, c.monthly_budget, c.budget_remaining, c.cost_threshold
        );
        let _ = writeln!(
            o,
            "time      {} (day_of_month = {}, hour = {}, month_progress = {}); failures = {}",
            c.now, c.day_of_month, c.hour, c.month_progress, c.failures
        );
        let breakers: Vec<String> = c
            .breakers
            .iter()
            .map(|(k, v)| format!("{k} {}", v.as_str()))
            .collect();
        let _ = writeln!(o, "breakers  {}", breakers.join(", "));
        for (name, m) in &c.measured {
            let show = |v: Option<Fixed>| v.map_or("-".to_string(), |x| x.to_string());
            let _ = writeln!(
                o,
                "measured  {name}: {} videos, pass_rate {}, latency_p50 {} s, flicker {}",
                m.samples,
                show(m.pass_rate),
                show(m.latency_p50),
                show(m.flicker)
            );
        }
        let _ = writeln!(
            o,
            "\nrules (tried in order; the first that matches with an eligible target decides)"
        );
        for (n, rule) in self.rules.iter().enumerate() {
            let model = rule
                .model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {}. {} -> {}{}    [{}]",
                n + 1,
                rule.name,
                rule.backend,
                model,
                rule.location
            );
            let _ = writeln!(o, "     when {}", rule.condition);
            if let Some(sp) = &rule.split {
                let _ = writeln!(o, "     split by {}", sp.key);
                if let Some(e) = &sp.experiment {
                    let _ = writeln!(
                        o,
                        "     experiment `{}` ({}; primary {})",
                        e.name,
                        e.status.replace('_', " "),
                        e.primary
                    );
                }
                for a in &sp.arms {
                    let mark = if a.drawn { "drawn" } else { "     " };
                    let state = if a.eligible {
                        format!("share {:.1} %", a.share.to_f64() * 100.0)
                    } else {
                        format!("ineligible: {}", a.reasons.join("; "))
                    };
                    let moved = if a.effective_weight != a.weight {
                        format!(" (now {})", a.effective_weight)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        o,
                        "       {mark}  {} weight {}{moved}, {state}",
                        a.backend, a.weight
                    );
                }
            }
            for cl in &rule.clauses {
                let value = match (cl.evaluated, cl.value) {
                    (false, _) => "skip ",
                    (true, Some(true)) => "true ",
                    (true, Some(false)) => "false",
                    (true, None) => "error",
                };
                let reads: Vec<String> = cl
                    .reads
                    .iter()
                    .map(|x| format!("{} = {}", x.name, show(&x.value)))
                    .collect();
                let detail = match (&cl.error, cl.evaluated) {
                    (Some(e), _) => format!("  ({e})"),
                    (None, false) => "  (not evaluated)".to_string(),
                    (None, true) if reads.is_empty() => String::new(),
                    (None, true) => format!("  ({})", reads.join(", ")),
                };
                let _ = writeln!(o, "       {value}  {}{detail}", cl.text);
            }
            let outcome = match rule.status {
                "decided" => "matched; target eligible: DECIDES".to_string(),
                "target ineligible" => format!(
                    "matched, but {} is ineligible: {}",
                    rule.backend,
                    rule.target_reasons.join("; ")
                ),
                "error" => format!("error: {}", rule.error.as_deref().unwrap_or("")),
                "not reached" => format!(
                    "not reached (would {})",
                    if rule.matched {
                        "have matched"
                    } else {
                        "not have matched"
                    }
                ),
                _ => "not matched".to_string(),
            };
            let _ = writeln!(o, "     => {outcome}");
        }
        let _ = writeln!(o, "\nbackends (in preference order)");
        let width = self
            .backends
            .iter()
            .map(|b| b.name.len())
            .max()
            .unwrap_or(0);
        for b in &self.backends {
            let state = if b.eligible { "eligible" } else { "ineligible" };
            let _ = write!(
                o,
                "  {:width$}  priority {:<4} cost {:<6} quality {:<5} breaker {:<9} {:<10} {}",
                b.name,
                b.priority.to_string(),
                b.cost_usd.to_string(),
                b.quality.to_string(),
                b.breaker.as_str(),
                state,
                b.role
            );
            if !b.reasons.is_empty() {
                let _ = write!(o, ": {}", b.reasons.join("; "));
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(o);
        match &self.backend {
            Some(b) => {
                let model = self.model.as_deref().unwrap_or("(backend default)");
                let cost = self.cost_usd.map(|c| c.to_string()).unwrap_or_default();
                let _ = writeln!(o, "decision  {b}, model {model}, cost {cost}");
            }
            None => {
                let _ = writeln!(o, "decision  none: no backend is eligible");
            }
        }
        let _ = writeln!(o, "because   {}", self.summary);
        let fallbacks = if self.fallbacks.is_empty() {
            "(none)".to_string()
        } else {
            self.fallbacks.join(" -> ")
        };
        let _ = writeln!(o, "fallbacks {fallbacks}");
        o
    }
}

/// A JSON value as the report writes it: strings in single quotes, as in a condition.
pub(super) fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}
