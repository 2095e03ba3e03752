//! Loading `execution.quality_retry`: its condition is checked against the request's names
//! and the delivered video's (`video.*`), which only it can read.

use super::{key, Loader};
use crate::check::check_condition;
use crate::check::scope::Scope;
use crate::diag::Diagnostic;
use crate::lang::parse::parse_condition;
use crate::policy::raw::RawQualityRetry;
use crate::policy::yaml::{OffsetMap, Seg};
use crate::policy::QualityRetry;

/// The most retries a policy may ask for (each one is a paid video).
pub const MAX_QUALITY_RETRIES: u32 = 5;

impl Loader<'_> {
    pub(super) fn quality_retry(
        &mut self,
        raw: Option<&RawQualityRetry>,
        scope: Scope<'_>,
    ) -> Option<QualityRetry> {
        let raw = raw?;
        let path = |k: &str| vec![key("execution"), key("quality_retry"), key(k)];
        let max_retries = raw.max_retries.unwrap_or(1);
        if max_retries == 0 || max_retries > MAX_QUALITY_RETRIES {
            self.error_at(
                &path("max_retries"),
                "out-of-range",
                format!("`max_retries` is {max_retries}; it must be 1 to {MAX_QUALITY_RETRIES}"),
                "out of range",
                "each retry orders and pays for another video; remove `quality_retry` to turn retries off",
            );
        }
        let at: Vec<Seg> = path("when");
        let text = self.source.text.as_str();
        let map = self
            .tree
            .as_ref()
            .and_then(|t| t.get(&at))
            .map(|n| OffsetMap::new(text, n, &raw.when));
        let locate = |d: Diagnostic, span: crate::lang::ast::Span, label: &str| match &map {
            Some(m) => d.at(m.range(text, span.start as usize, span.end as usize), label),
            None => d,
        };
        let tree = match parse_condition(&raw.when) {
            Ok(t) => t,
            Err(e) => {
                let d = Diagnostic::error(
                    "syntax",
                    format!(
                        "syntax error in `execution.quality_retry.when`: {}",
                        e.message
                    ),
                )
                .help(e.help.clone());
                self.diags.push(locate(d, e.span, "here"));
                return None;
            }
        };
        let scope = Scope {
            target: None,
            video: true,
            ..scope
        };
        match check_condition(&tree, &scope) {
            Ok(c) => Some(QualityRetry {
                max_retries,
                program: crate::eval::Program::compile(&c),
                when_text: raw.when.clone(),
                when: c,
            }),
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
