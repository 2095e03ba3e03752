//! `cost:` of a backend: one flat price or one per model variant, as exact money. Money is
//! data: a price that does not parse exactly is an error, never rounded or free.

use super::*;

impl Loader<'_> {
    /// `per_video_usd: 0.05`, or `{variant: {per_video_usd: 0.10}, ...}`.
    pub(super) fn cost(&mut self, backend: &str, map: &serde_yaml::Mapping) -> Cost {
        let base = [key("backends"), key(backend), key("cost")];
        let mut flat = None;
        let mut variants = Vec::new();
        let mut unknown = false;
        for (k, v) in map {
            let Some(k) = k.as_str() else {
                self.error_at(
                    &base,
                    "invalid-value",
                    "cost keys must be strings".into(),
                    "here",
                    "write `per_video_usd: 0.05`",
                );
                continue;
            };
            let mut p = base.to_vec();
            p.push(key(k));
            if k.starts_with("x-") {
                continue;
            }
            if k == "per_video_usd" {
                flat = self.money(&p, v);
                continue;
            }
            let inner = v.as_mapping().and_then(|m| m.get("per_video_usd"));
            match inner {
                Some(inner) => {
                    p.push(key("per_video_usd"));
                    if let Some(c) = self.money(&p, inner) {
                        variants.push((k.to_string(), c));
                    }
                }
                None => {
                    unknown = true;
                    let help = match did_you_mean(k, ["per_video_usd"]) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("a variant is written `{k}: {{per_video_usd: 0.10}}`"),
                    };
                    let d = Diagnostic::error("unknown-key", format!("`{k}` under `cost` is neither `per_video_usd` nor a model variant with a `per_video_usd`")).help(help);
                    let range = self
                        .tree
                        .as_ref()
                        .and_then(|t| t.key_at(&p))
                        .map(|n| n.range.clone());
                    self.diags.push(match range {
                        Some(r) => d.at(r, "not a cost"),
                        None => d,
                    });
                }
            }
        }
        match (flat, variants.is_empty()) {
            (Some(c), true) => Cost::Flat(c),
            (None, false) => Cost::PerVariant(variants),
            (Some(c), false) => {
                self.error_at(
                    &base,
                    "ambiguous-cost",
                    "`cost` has both `per_video_usd` and model variants".into(),
                    "ambiguous",
                    "use either one flat price or one price per variant",
                );
                Cost::Flat(c)
            }
            (None, true) => {
                if unknown {
                    return Cost::Flat(Fixed::ZERO);
                }
                self.error_at(
                    &base,
                    "missing-key",
                    "`cost` has no price".into(),
                    "no price",
                    "write `per_video_usd: 0.05`",
                );
                Cost::Flat(Fixed::ZERO)
            }
        }
    }

    pub(super) fn money(&mut self, path: &[Seg], v: &serde_yaml::Value) -> Option<Fixed> {
        let parsed: Result<Fixed, String> = match v {
            serde_yaml::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Fixed::from_int(i).ok_or_else(|| format!("`{i}` is too large")),
                (None, Some(f)) => Fixed::from_f64_exact(f).map_err(|e| e.to_string()),
                _ => Err(format!("`{n}` is not a price")),
            },
            serde_yaml::Value::String(s) => {
                s.parse().map_err(|e: crate::num::NumError| e.to_string())
            }
            _ => Err("a price must be a number".into()),
        };
        match parsed {
            Ok(c) if c.is_negative() => {
                self.error_at(
                    path,
                    "out-of-range",
                    format!("price {c} is negative"),
                    "negative",
                    "prices are in USD and at least 0",
                );
                None
            }
            Ok(c) => Some(c),
            Err(msg) => {
                self.error_at(
                    path,
                    "invalid-value",
                    msg,
                    "not a price",
                    "write the price in USD with at most 6 decimals, e.g. 0.05",
                );
                None
            }
        }
    }
}
