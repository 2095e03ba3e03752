//! The parts of a backend that say where its videos come from: the `videos` protocol's
//! dialect and parameters (`api.dialect`, `api.parameters`), and `simulation:` for simulated
//! backends.

use super::*;

impl Loader<'_> {
    /// `api.dialect` and `api.parameters`: only for the `videos` protocol, a known dialect,
    /// and fields that dialect knows, of their type.
    pub(super) fn videos_api(
        &mut self,
        name: &str,
        a: Option<&RawApi>,
    ) -> (
        crate::policy::api::Dialect,
        Vec<(String, crate::policy::api::Param)>,
    ) {
        use crate::policy::api::{check_parameters, Dialect};
        let Some(a) = a else {
            return (Dialect::default(), Vec::new());
        };
        let path = |k: &str| vec![key("backends"), key(name), key("api"), key(k)];
        let videos = a
            .protocol
            .as_deref()
            .and_then(crate::policy::Protocol::parse)
            == Some(crate::policy::Protocol::Videos);
        let mut dialect = Dialect::default();
        let mut unknown = false;
        if let Some(d) = &a.dialect {
            match Dialect::parse(d) {
                Some(parsed) => dialect = parsed,
                None => {
                    unknown = true;
                    let near = did_you_mean(d, Dialect::NAMES).or_else(|| {
                        Dialect::NAMES
                            .into_iter()
                            .find(|n| n.starts_with(d.as_str()))
                    });
                    let help = match near {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("use one of {}", ticks(&Dialect::NAMES)),
                    };
                    self.error_at(
                        &path("dialect"),
                        "unknown-dialect",
                        format!("unknown dialect `{d}`"),
                        "not a dialect",
                        &help,
                    );
                }
            }
        }
        for (k, given) in [
            ("dialect", a.dialect.is_some()),
            ("parameters", !a.parameters.is_empty()),
        ] {
            if given && !videos && a.protocol.is_some() {
                self.error_at(
                    &path(k),
                    "not-for-protocol",
                    format!("`api.{k}` applies to the `videos` protocol only"),
                    "not used by this protocol",
                    "remove it, or set `protocol: videos`",
                );
            }
        }
        if unknown {
            // The fields depend on the dialect: checking them against another would mislead.
            return (dialect, Vec::new());
        }
        let (params, problems) = check_parameters(dialect, &a.parameters);
        for p in problems {
            let mut at = path("parameters");
            at.push(key(&p.name));
            if p.at_key {
                let mut d = Diagnostic::error(p.code, p.message).help(&p.help);
                if let Some(n) = self.tree.as_ref().and_then(|t| t.key_at(&at)) {
                    d = d.at(n.range.clone(), p.label);
                }
                self.diags.push(d);
            } else {
                self.error_at(&at, p.code, p.message, p.label, &p.help);
            }
        }
        (dialect, params)
    }

    pub(super) fn simulation(
        &mut self,
        name: &str,
        b: &RawBackend,
    ) -> Option<crate::policy::Simulation> {
        use crate::policy::SimulatedFailure as F;
        let path = |k: &str| [key("backends"), key(name), key("simulation"), key(k)];
        // A real backend may carry a `simulation:` block too: `genroute simulate` uses it.
        if b.kind != "simulated" && b.simulation.is_none() {
            return None;
        }
        let raw = b.simulation.as_ref();
        let rate = raw.and_then(|s| s.failure_rate).unwrap_or(Fixed::ZERO);
        if rate < Fixed::ZERO || rate > Fixed::ONE {
            self.error_at(
                &path("failure_rate"),
                "out-of-range",
                format!("failure_rate is {rate}; it must be between 0 and 1"),
                "out of range",
                "e.g. 0.05 for one call in twenty",
            );
        }
        let class = match raw
            .and_then(|s| s.failure_class.as_deref())
            .unwrap_or("retryable")
        {
            "retryable" => F::Retryable,
            "terminal" => F::Terminal,
            "content_rejected" => F::ContentRejected,
            "no_video" => F::NoVideo,
            other => {
                let names = ["retryable", "terminal", "content_rejected", "no_video"];
                let help = match did_you_mean(other, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use one of {}", ticks(&names)),
                };
                self.error_at(
                    &path("failure_class"),
                    "unknown-failure-class",
                    format!("unknown failure class `{other}`"),
                    "unknown",
                    &help,
                );
                F::Retryable
            }
        };
        let avg = b.performance.avg_generation_time_seconds;
        let stddev = raw
            .and_then(|s| s.latency_stddev_seconds)
            .unwrap_or_else(|| {
                avg.checked_div(Fixed::from_micros(5_000_000))
                    .unwrap_or(Fixed::ZERO)
            });
        let scale = raw.and_then(|s| s.time_scale).unwrap_or(Fixed::ZERO);
        let pass_rate = raw.and_then(|s| s.pass_rate).unwrap_or(Fixed::ONE);
        if pass_rate < Fixed::ZERO || pass_rate > Fixed::ONE {
            self.error_at(
                &path("pass_rate"),
                "out-of-range",
                format!("pass_rate is {pass_rate}; it must be between 0 and 1"),
                "out of range",
                "the share of delivered videos that pass the output checks, e.g. 0.95",
            );
        }
        if stddev.is_negative() || scale.is_negative() {
            self.error_at(
                &[key("backends"), key(name), key("simulation")],
                "out-of-range",
                "simulation figures must not be negative".into(),
                "negative",
                "use 0 or more",
            );
        }
        Some(crate::policy::Simulation {
            failure_rate: rate,
            failure_class: class,
            latency_stddev: stddev,
            time_scale: scale,
            seed: raw.and_then(|s| s.seed).unwrap_or(0),
            pass_rate,
        })
    }
}
