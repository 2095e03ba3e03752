//! `request_fields:`, `tenant_fields:` and `defaults:`: the fields a request may carry, their
//! types and defaults, checked with the same rules a request's values meet ([`crate::input`]).

use super::*;

impl Loader<'_> {
    /// Declared fields of `section` (`request_fields` or `tenant_fields`); their enum types
    /// join `enums`. Tenant fields come after the built-in `team`, `org` and `key`.
    pub(super) fn fields(
        &mut self,
        section: &str,
        raw: &BTreeMap<String, RawField>,
        enums: &mut Vec<EnumDef>,
    ) -> Vec<FieldDef> {
        let tenant = section == "tenant_fields";
        let mut fields: Vec<FieldDef> = if tenant {
            crate::check::scope::TENANT_BUILTINS
                .iter()
                .map(|name| FieldDef {
                    name: name.to_string(),
                    ty: Type::Str,
                    default: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let reserved: &[&str] = if tenant {
            crate::check::scope::TENANT_BUILTINS
        } else {
            &[
                "prompt",
                "negative_prompt",
                "priority",
                "duration",
                "aspect_ratio",
                "quality_threshold",
                "style",
            ]
        };
        let what = if tenant { "tenant" } else { "request" };
        for (name, f) in raw {
            let path = [key(section), key(name)];
            if reserved.contains(&name.as_str()) {
                self.error_at(
                    &path,
                    "reserved-field",
                    format!("`{name}` is a built-in {what} field"),
                    "already defined",
                    "choose another name for your own field",
                );
                continue;
            }
            if !is_identifier(name) {
                self.error_at(
                    &path,
                    "invalid-name",
                    format!("`{name}` is not a valid field name"),
                    "invalid name",
                    "use letters, digits and `_`, starting with a letter",
                );
                continue;
            }
            let ty = match f.kind.as_str() {
                "string" => Type::Str,
                "number" => Type::Num,
                "bool" | "boolean" => Type::Bool,
                "money" => Type::Money,
                "enum" if f.values.is_empty() => {
                    self.error_at(
                        &path,
                        "empty-enum",
                        format!("enum field `{name}` has no values"),
                        "no values",
                        "add `values: [a, b]`",
                    );
                    continue;
                }
                "enum" => {
                    enums.push(EnumDef {
                        name: name.clone(),
                        values: f.values.clone(),
                    });
                    Type::Enum(EnumId((enums.len() - 1) as u16))
                }
                other => {
                    let kinds = ["string", "number", "bool", "money", "enum"];
                    let help = match did_you_mean(other, kinds) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("use one of {}", ticks(&kinds)),
                    };
                    let p = [key(section), key(name), key("type")];
                    self.error_at(
                        &p,
                        "unknown-type",
                        format!("unknown field type `{other}`"),
                        "not a type",
                        &help,
                    );
                    continue;
                }
            };
            let mut def = FieldDef {
                name: name.clone(),
                ty,
                default: None,
            };
            if let Some(v) = &f.default {
                match crate::input::field_value(enums, &def, v.clone()) {
                    Ok(value) => def.default = Some(value),
                    Err(e) => {
                        let p = [key(section), key(name), key("default")];
                        self.error_at(
                            &p,
                            "invalid-value",
                            format!("default of `{name}`: {}", e.message),
                            "invalid default",
                            "give a value of the field's type",
                        );
                    }
                }
            }
            fields.push(def);
        }
        fields
    }

    pub(super) fn defaults(&mut self, d: Option<&RawDefaults>, enums: &[EnumDef]) -> Defaults {
        let mut out = Defaults {
            quality_threshold: Fixed::from_micros(800_000),
            duration: Fixed::from_micros(5_000_000),
            aspect_ratio: 0,
            priority: 1,
        };
        let Some(d) = d else { return out };
        if let Some(q) = d.quality_threshold {
            out.quality_threshold = q;
        }
        if let Some(s) = d.duration {
            out.duration = s;
        }
        let mut pick = |k: &str, id: EnumId, v: &Option<String>| -> Option<u16> {
            let v = v.as_ref()?;
            let values = &enums[id.0 as usize].values;
            match values.iter().position(|x| x == v) {
                Some(i) => Some(i as u16),
                None => {
                    let help = match did_you_mean(v, values.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "use one of {}",
                            ticks(&values.iter().map(String::as_str).collect::<Vec<_>>())
                        ),
                    };
                    self.error_at(
                        &[key("defaults"), key(k)],
                        "unknown-enum-value",
                        format!("`{v}` is not a value of `{k}`"),
                        "unknown value",
                        &help,
                    );
                    None
                }
            }
        };
        if let Some(i) = pick("aspect_ratio", EnumId::ASPECT_RATIO, &d.aspect_ratio) {
            out.aspect_ratio = i;
        }
        if let Some(i) = pick("priority", EnumId::PRIORITY, &d.priority) {
            out.priority = i;
        }
        out
    }
}
