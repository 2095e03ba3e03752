//! `backends:`: each backend's enablement (with its environment feature flag), quality,
//! performance, selection criteria, breaker and API; the parts with rules of their own (its
//! cost, its protocol's sources and simulation) are their own files beside this one.

use super::*;

impl Loader<'_> {
    pub(super) fn backends(
        &mut self,
        raw: &BTreeMap<String, RawBackend>,
        policy: &RawPolicy,
        options: &LoadOptions<'_>,
    ) -> Vec<Backend> {
        if raw.is_empty() {
            self.error_at(
                &[key("backends")],
                "no-backends",
                "the policy has no backends".into(),
                "empty",
                "declare at least one backend",
            );
        }
        if raw.len() > u16::MAX as usize {
            self.error_at(
                &[key("backends")],
                "too-many-backends",
                "too many backends".into(),
                "here",
                "keep it under 65535",
            );
            return Vec::new();
        }
        let prefix = prefix(policy);
        raw.iter()
            .map(|(name, b)| self.backend(name, b, &prefix, options))
            .collect()
    }

    pub(super) fn backend(
        &mut self,
        name: &str,
        b: &RawBackend,
        prefix: &str,
        options: &LoadOptions<'_>,
    ) -> Backend {
        let path = |k: &str| [key("backends"), key(name), key(k)];
        let cost = self.cost(name, &b.cost);
        let models: Vec<Model> = b
            .models
            .iter()
            .map(|m| match m {
                RawModel::Id(id) => Model {
                    id: id.clone(),
                    cost_variant: None,
                },
                RawModel::Tied { id, cost } => Model {
                    id: id.clone(),
                    cost_variant: cost.clone(),
                },
            })
            .collect();
        if let Cost::PerVariant(variants) = &cost {
            for (i, m) in models.iter().enumerate() {
                let Some(v) = &m.cost_variant else { continue };
                if !variants.iter().any(|(k, _)| k == v) {
                    let names: Vec<&str> = variants.iter().map(|(k, _)| k.as_str()).collect();
                    let help = match did_you_mean(v, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("cost variants are {}", ticks(&names)),
                    };
                    let p = [
                        key("backends"),
                        key(name),
                        key("models"),
                        Seg::Index(i),
                        key("cost"),
                    ];
                    self.error_at(
                        &p,
                        "unknown-cost-variant",
                        format!(
                            "model `{}` names cost variant `{v}`, which `cost` does not list",
                            m.id
                        ),
                        "unknown variant",
                        &help,
                    );
                }
            }
        }
        for (k, v) in [
            ("score", Some(b.quality.score)),
            ("temporal_coherence", b.quality.temporal_coherence),
            ("prompt_adherence", b.quality.prompt_adherence),
        ] {
            if let Some(v) = v {
                if v < Fixed::ZERO || v > Fixed::ONE {
                    let p = [key("backends"), key(name), key("quality"), key(k)];
                    self.error_at(
                        &p,
                        "out-of-range",
                        format!("quality `{k}` is {v}; it must be between 0 and 1"),
                        "out of range",
                        "quality figures are fractions, e.g. 0.85",
                    );
                }
            }
        }
        for (k, v) in [
            (
                "avg_generation_time_seconds",
                b.performance.avg_generation_time_seconds,
            ),
            (
                "max_generation_time_seconds",
                b.performance.max_generation_time_seconds,
            ),
        ] {
            if v <= Fixed::ZERO {
                let p = [key("backends"), key(name), key("performance"), key(k)];
                self.error_at(
                    &p,
                    "out-of-range",
                    format!("`{k}` is {v}; it must be positive"),
                    "not positive",
                    "give the time in seconds, e.g. 45",
                );
            }
        }
        if b.priority.is_negative() {
            self.error_at(
                &path("priority"),
                "out-of-range",
                format!("priority is {}; it must not be negative", b.priority),
                "negative",
                "1 is the most preferred",
            );
        }
        let (enabled, enabled_by) = self.feature_flag(name, b.enabled, prefix, options);
        let protocol = b.api.as_ref().and_then(|a| a.protocol.as_deref());
        if let Some(p) = protocol {
            if crate::policy::Protocol::parse(p).is_none() {
                let help = match did_you_mean(p, crate::policy::Protocol::NAMES) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use one of {}", ticks(&crate::policy::Protocol::NAMES)),
                };
                let path = [key("backends"), key(name), key("api"), key("protocol")];
                self.error_at(
                    &path,
                    "unknown-protocol",
                    format!("unknown protocol `{p}`"),
                    "not a protocol",
                    &help,
                );
            }
        }
        let (dialect, parameters) = self.videos_api(name, b.api.as_ref());
        let simulation = self.simulation(name, b);
        let key_missing = b
            .api
            .as_ref()
            .and_then(|a| a.key_env.as_ref())
            .filter(|var| (options.env)(var).is_none_or(|v| v.trim().is_empty()))
            .cloned();
        Backend {
            name: name.to_string(),
            enabled,
            enabled_by,
            priority: b.priority,
            kind: b.kind.clone(),
            cost,
            quality: b.quality.score,
            temporal_coherence: b.quality.temporal_coherence,
            prompt_adherence: b.quality.prompt_adherence,
            avg_latency: b.performance.avg_generation_time_seconds,
            max_latency: b.performance.max_generation_time_seconds,
            api: b.api.as_ref().map(|a| Api {
                dialect,
                parameters,
                ..api(a)
            }),
            criteria: criteria(&b.selection_criteria),
            models,
            breaker: breaker(b.circuit_breaker.as_ref()),
            simulation,
            key_missing,
            allow: self.allow_list(&b.allow, &[key("backends"), key(name), key("allow")]),
            default_cost: Fixed::ZERO,
        }
    }

    pub(super) fn feature_flag(
        &mut self,
        name: &str,
        enabled: bool,
        prefix: &str,
        options: &LoadOptions<'_>,
    ) -> (bool, Option<String>) {
        let var = flag_variable(prefix, name);
        let Some(value) = (options.env)(&var) else {
            return (enabled, None);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => (true, Some(var)),
            "0" | "false" | "no" | "off" => (false, Some(var)),
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        "invalid-env",
                        format!(
                            "environment variable `{var}` is `{}`; expected true or false",
                            value.escape_debug()
                        ),
                    )
                    .help(format!("set `{var}=true` or `{var}=false`, or unset it")),
                );
                (enabled, None)
            }
        }
    }
}

fn api(a: &RawApi) -> Api {
    Api {
        protocol: a
            .protocol
            .as_deref()
            .and_then(crate::policy::Protocol::parse),
        base_url: a.base_url.clone(),
        model: a.model.clone(),
        project: a.project.clone(),
        location: a.location.clone(),
        request_timeout: a
            .request_timeout_seconds
            .unwrap_or(Fixed::from_micros(30_000_000)),
        poll_interval: a
            .poll_interval_seconds
            .unwrap_or(Fixed::from_micros(2_000_000)),
        endpoints: a
            .endpoints
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        auth_type: a.auth_type.clone(),
        key_env: a.key_env.clone(),
        dialect: crate::policy::api::Dialect::default(),
        parameters: Vec::new(),
    }
}

fn breaker(b: Option<&crate::policy::raw::RawBreaker>) -> crate::breaker::BreakerConfig {
    let d = crate::breaker::BreakerConfig::default();
    let Some(b) = b else { return d };
    crate::breaker::BreakerConfig {
        failure_threshold: b.failure_threshold.unwrap_or(d.failure_threshold).max(1),
        timeout_ms: b
            .timeout_seconds
            .map_or(d.timeout_ms, |t| t.micros() / 1000),
        half_open_requests: b.half_open_requests.unwrap_or(d.half_open_requests).max(1),
    }
}

fn criteria(c: &RawCriteria) -> Criteria {
    Criteria {
        priority_high: c.priority_high,
        priority_balanced: c.priority_balanced,
        priority_speed: c.priority_speed,
        budget_available: c.budget_available.unwrap_or(false),
        fallback_failures: c.fallback_failures.unwrap_or(0),
    }
}
