//! `selection_rules:`: each rule's condition (parsed and checked against the policy's scope),
//! its target backends, allow-lists and split.

use super::*;

impl Loader<'_> {
    pub(super) fn rules(
        &mut self,
        raw: &[RawRule],
        backends: &[Backend],
        scope: Scope<'_>,
    ) -> Vec<Rule> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let by_name: BTreeMap<&str, usize> = backends
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let mut rules = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let path = |k: &str| [key("selection_rules"), Seg::Index(i), key(k)];
            if let Some(first) = seen.insert(&r.name, i) {
                let line = self
                    .range_of(&[key("selection_rules"), Seg::Index(first), key("name")])
                    .map(|r| self.source.line_col(r.start).0);
                let help = match line {
                    Some(l) => format!(
                        "the first rule named `{}` is at line {l}; rule names must be unique",
                        r.name
                    ),
                    None => "rule names must be unique".to_string(),
                };
                self.error_at(
                    &path("name"),
                    "duplicate-rule",
                    format!("duplicate rule name `{}`", r.name),
                    "used before",
                    &help,
                );
            }
            if r.action != "select_backend" {
                let help = match did_you_mean(&r.action, ["select_backend"]) {
                    Some(_) => "did you mean `select_backend`?".to_string(),
                    None => "the only action is `select_backend`".to_string(),
                };
                self.error_at(
                    &path("action"),
                    "unknown-action",
                    format!("unknown action `{}`", r.action),
                    "not an action",
                    &help,
                );
            }
            let target_name = match (&r.backend, r.split.is_empty()) {
                (Some(b), true) => b.as_str(),
                (None, false) => {
                    let split = self.split(i, r, backends, &by_name, scope.fields);
                    let Some(split) = split else {
                        self.condition(i, r, &scope);
                        continue;
                    };
                    let first = &split.arms[0];
                    let Some(condition) = self.condition(i, r, &scope) else {
                        continue;
                    };
                    let (line, column) = self
                        .range_of(&path("condition"))
                        .map_or((0, 0), |rg| self.source.line_col(rg.start));
                    rules.push(Rule {
                        name: r.name.clone(),
                        condition_text: r.condition.clone(),
                        program: crate::eval::Program::compile(&condition),
                        condition,
                        backend: first.backend,
                        model: first.model.clone(),
                        cost: first.cost,
                        split: Some(Box::new(split)),
                        line,
                        column,
                        allow: self.allow_list(
                            &r.allow,
                            &[key("selection_rules"), Seg::Index(i), key("allow")],
                        ),
                    });
                    continue;
                }
                (Some(_), false) => {
                    self.error_at(
                        &path("split"),
                        "backend-and-split",
                        format!("rule `{}` has both `backend` and `split`", r.name),
                        "here",
                        "a rule targets one `backend`, or several with weights under `split`; keep one",
                    );
                    self.condition(i, r, &scope);
                    continue;
                }
                (None, true) => {
                    self.error_at(
                        &[key("selection_rules"), Seg::Index(i)],
                        "missing-target",
                        format!("rule `{}` has no `backend`", r.name),
                        "this rule",
                        "add `backend: <name>`, or `split:` with `{backend, weight}` arms",
                    );
                    self.condition(i, r, &scope);
                    continue;
                }
            };
            let Some(target) = by_name.get(target_name).copied() else {
                let help = match did_you_mean(target_name, backends.iter().map(|b| b.name.as_str()))
                {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "backends are {}",
                        ticks(&backends.iter().map(|b| b.name.as_str()).collect::<Vec<_>>())
                    ),
                };
                self.error_at(
                    &path("backend"),
                    "unknown-backend",
                    format!(
                        "rule `{}` targets unknown backend `{}`",
                        r.name, target_name
                    ),
                    "no such backend",
                    &help,
                );
                self.condition(i, r, &scope);
                continue;
            };
            let backend = &backends[target];
            if let Some(m) = &r.model_preference {
                self.check_model(backend, m, &path("model_preference"));
            }
            let cost = backend.cost_of(r.model_preference.as_deref());
            let scope = Scope {
                target: Some(Target {
                    backend: target as u16,
                    cost,
                }),
                ..scope
            };
            let Some(condition) = self.condition(i, r, &scope) else {
                continue;
            };
            let (line, column) = self
                .range_of(&path("condition"))
                .map_or((0, 0), |rg| self.source.line_col(rg.start));
            rules.push(Rule {
                name: r.name.clone(),
                condition_text: r.condition.clone(),
                program: crate::eval::Program::compile(&condition),
                condition,
                backend: target as u16,
                model: r.model_preference.clone(),
                cost,
                split: None,
                line,
                column,
                allow: self.allow_list(
                    &r.allow,
                    &[key("selection_rules"), Seg::Index(i), key("allow")],
                ),
            });
        }
        rules
    }

    /// Validates `allow:` lint names.
    pub(super) fn allow_list(&mut self, names: &[String], path: &[Seg]) -> Vec<String> {
        let known: Vec<&str> = crate::policy::lint::LINTS.iter().map(|(n, _)| *n).collect();
        for (i, name) in names.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                let help = match did_you_mean(name, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("lints are {}", ticks(&known)),
                };
                let mut p = path.to_vec();
                p.push(Seg::Index(i));
                self.error_at(
                    &p,
                    "unknown-lint",
                    format!("unknown lint `{name}`"),
                    "not a lint",
                    &help,
                );
            }
        }
        names.to_vec()
    }

    /// Parses and checks one rule's condition, mapping its diagnostics into the file.
    pub(super) fn condition(
        &mut self,
        i: usize,
        r: &RawRule,
        scope: &Scope<'_>,
    ) -> Option<crate::expr::CExpr> {
        let path = [key("selection_rules"), Seg::Index(i), key("condition")];
        let text = self.source.text.as_str();
        let map = self
            .tree
            .as_ref()
            .and_then(|t| t.get(&path))
            .map(|n| OffsetMap::new(text, n, &r.condition));
        let locate = |d: Diagnostic, span: crate::lang::ast::Span, label: &str| match &map {
            Some(m) => d.at(m.range(text, span.start as usize, span.end as usize), label),
            None => d,
        };
        let tree = match parse_condition(&r.condition) {
            Ok(t) => t,
            Err(e) => {
                let d = Diagnostic::error(
                    "syntax",
                    format!("syntax error in rule `{}`: {}", r.name, e.message),
                )
                .help(e.help.clone());
                self.diags.push(locate(d, e.span, "here"));
                return None;
            }
        };
        match check_condition(&tree, scope) {
            Ok(c) => Some(c),
            Err(errors) => {
                for e in errors {
                    let d = Diagnostic::error(e.code, e.message).help(e.help);
                    self.diags.push(locate(d, e.span, &e.label));
                }
                None
            }
        }
    }
}
