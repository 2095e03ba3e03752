//! `budget:` (monthly, daily, per-backend caps) and `execution:` (quality retry, output
//! checks): the policy-wide settings that are not backends or rules.

use super::*;

impl Loader<'_> {
    pub(super) fn budget(&mut self, b: &RawBudget, backends: &[crate::policy::Backend]) -> Budget {
        let mut amounts: Vec<(Vec<Seg>, &str, Fixed)> = vec![
            (
                vec![key("budget")],
                "monthly_budget_usd",
                b.monthly_budget_usd,
            ),
            (
                vec![key("budget")],
                "cost_threshold_usd",
                b.cost_threshold_usd,
            ),
        ];
        amounts.extend(
            b.daily_budget_usd
                .map(|v| (vec![key("budget")], "daily_budget_usd", v)),
        );
        let mut caps = Vec::new();
        for (name, cap) in &b.backends {
            let at = vec![key("budget"), key("backends"), key(name)];
            let Some(i) = backends.iter().position(|x| &x.name == name) else {
                let help = match did_you_mean(name, backends.iter().map(|b| b.name.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "name a backend of this policy".to_string(),
                };
                self.error_at(
                    &at,
                    "unknown-backend",
                    format!("budget cap for unknown backend `{name}`"),
                    "no such backend",
                    &help,
                );
                continue;
            };
            if cap.monthly_usd.is_none() && cap.daily_usd.is_none() {
                self.error_at(
                    &at,
                    "empty-cap",
                    format!("the cap on `{name}` sets no amount"),
                    "empty",
                    "give `monthly_usd`, `daily_usd` or both",
                );
            }
            amounts.extend(cap.monthly_usd.map(|v| (at.clone(), "monthly_usd", v)));
            amounts.extend(cap.daily_usd.map(|v| (at.clone(), "daily_usd", v)));
            caps.push(crate::policy::Cap {
                backend: i as u16,
                monthly: cap.monthly_usd,
                daily: cap.daily_usd,
            });
        }
        for (at, k, v) in amounts {
            if v.is_negative() {
                let mut path = at.clone();
                path.push(key(k));
                self.error_at(
                    &path,
                    "out-of-range",
                    format!("`{k}` is {v}; it must not be negative"),
                    "negative",
                    "amounts are in USD",
                );
            }
        }
        Budget {
            monthly: b.monthly_budget_usd,
            threshold: b.cost_threshold_usd,
            daily: b.daily_budget_usd,
            caps,
        }
    }

    pub(super) fn execution(
        &mut self,
        e: Option<&crate::policy::raw::RawExecution>,
    ) -> crate::policy::Execution {
        let mut out = crate::policy::Execution::default();
        match e.and_then(|e| e.on_content_rejected.as_deref()) {
            None | Some("stop") => {}
            Some("fallback") => out.fallback_on_content_rejected = true,
            Some(other) => {
                let p = [key("execution"), key("on_content_rejected")];
                self.error_at(&p, "invalid-value", format!("`{other}` is not `stop` or `fallback`"), "unknown", "`stop` ends the request on a moderation refusal; `fallback` tries the next backend");
            }
        }
        if let Some(c) = e.and_then(|e| e.output_checks.as_ref()) {
            out.output_checks = self.output_checks(c);
        }
        out
    }

    pub(super) fn output_checks(
        &mut self,
        c: &crate::policy::raw::RawOutputChecks,
    ) -> crate::policy::OutputChecks {
        use crate::policy::FrameChecks;
        let mut out = crate::policy::OutputChecks::default();
        let path = |k: &str| [key("execution"), key("output_checks"), key(k)];
        let share = |this: &mut Self, k: &str, v: Fixed, help: &str| -> Fixed {
            if v < Fixed::ZERO || v > Fixed::ONE {
                this.error_at(
                    &path(k),
                    "out-of-range",
                    format!("{k} is {v}; it must be between 0 and 1"),
                    "out of range",
                    help,
                );
            }
            v
        };
        if let Some(v) = c.enabled {
            out.enabled = v;
        }
        if let Some(v) = c.duration_tolerance {
            out.duration_tolerance = share(
                self,
                "duration_tolerance",
                v,
                "a share of the asked duration, e.g. 0.2 for ±20 % (never under 1 s)",
            );
        }
        if let Some(v) = c.aspect_tolerance {
            out.aspect_tolerance = share(
                self,
                "aspect_tolerance",
                v,
                "a share of the asked ratio, e.g. 0.02 for 2 %",
            );
        }
        if let Some(v) = c.max_black_fraction {
            out.max_black_fraction = v.map(|v| {
                share(
                    self,
                    "max_black_fraction",
                    v,
                    "a share of the clip's duration, e.g. 0.9; `null` for no limit",
                )
            });
        }
        if let Some(v) = c.max_frozen_fraction {
            out.max_frozen_fraction = v.map(|v| {
                share(
                    self,
                    "max_frozen_fraction",
                    v,
                    "a share of the clip's duration, e.g. 0.9; `null` for no limit",
                )
            });
        }
        if let Some(v) = c.max_flicker {
            out.max_flicker = Some(share(
                self,
                "max_flicker",
                v,
                "a score from 0 (still) to 1 (frames that invert each other)",
            ));
        }
        match c.frames.as_deref() {
            None | Some("auto") => {}
            Some("off") => out.frames = FrameChecks::Off,
            Some("required") => out.frames = FrameChecks::Required,
            Some(other) => {
                self.error_at(&path("frames"), "invalid-value", format!("`{other}` is not `auto`, `off` or `required`"), "unknown", "`auto` measures the frames where ffmpeg is on the PATH; `off` never; `required` fails a video whose frames could not be measured");
            }
        }
        if let Some(v) = c.frame_timeout_seconds {
            if v <= Fixed::ZERO {
                self.error_at(
                    &path("frame_timeout_seconds"),
                    "out-of-range",
                    format!("frame_timeout_seconds is {v}; it must be above 0"),
                    "out of range",
                    "seconds the ffmpeg run may take, e.g. 60",
                );
            } else {
                out.frame_timeout = v;
            }
        }
        out
    }
}
