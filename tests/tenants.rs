//! The tenants file, API keys and `genroute keys`: load errors located at line and column,
//! authentication (right, wrong, unknown, malformed, revoked), scopes, budgets at every level,
//! and tokens that never leak into YAML, errors or Debug output.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use genroute::num::Fixed;
use genroute::tenant::{LevelBudget, LevelKind, Limits, Period, Token};
use genroute::{AuthError, Diagnostic, Policy, Scope, Source, Tenancy, Tenants};

fn usd(s: &str) -> Fixed {
    s.parse().unwrap()
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match Tenants::from_yaml("t.yaml", text) {
        Ok(_) => panic!("expected errors, it loaded:\n{text}"),
        Err(d) => d,
    }
}

/// The one diagnostic with `code`, which must be at `line`:`column`.
fn error_at(text: &str, code: &str, line: usize, column: usize) -> Diagnostic {
    let diags = errors(text);
    let found: Vec<&Diagnostic> = diags.iter().filter(|d| d.code == code).collect();
    assert_eq!(found.len(), 1, "one `{code}` in {diags:#?}");
    let d = found[0].clone();
    assert_eq!((d.line, d.column), (Some(line), Some(column)), "{d:#?}");
    assert!(d.help.is_some(), "every error has a help line: {d:#?}");
    let rendered = Source::new("t.yaml", text).render(&diags, false);
    assert!(
        rendered.contains(&format!("t.yaml:{line}:{column}")),
        "{rendered}"
    );
    d
}

const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// A key block with a valid (unusable) hash.
fn key_block(id: &str, team: &str, scopes: &str) -> String {
    format!("  {id}:\n    team: {team}\n    hash: \"{HASH}\"\n    scopes: {scopes}\n")
}

#[test]
fn an_unknown_key_is_an_error_with_a_did_you_mean() {
    let text = "teams:\n  growth:\n    budgte: {monthly_usd: 5}\n";
    let d = error_at(text, "unknown-key", 3, 5);
    assert_eq!(d.message, "unknown key `budgte`");
    assert_eq!(d.help.as_deref(), Some("did you mean `budget`?"));
    // Also deep inside: a per-backend cap, and a key's limits.
    let text = "teams:\n  growth:\n    budget:\n      backends: {pixverse: {montly_usd: 5}}\n";
    let d = error_at(text, "unknown-key", 4, 29);
    assert_eq!(d.help.as_deref(), Some("did you mean `monthly_usd`?"));
    let text = format!(
        "teams: {{growth: {{}}}}\nkeys:\n{}    limits: {{requests_per_mnute: 5}}\n",
        key_block("k", "growth", "[generate]")
    );
    let d = error_at(&text, "unknown-key", 7, 14);
    assert_eq!(
        d.help.as_deref(),
        Some("did you mean `requests_per_minute`?")
    );
    // At the top level, with nothing close: the keys that exist.
    let d = error_at("teams: {}\nusers: {}\n", "unknown-key", 2, 1);
    assert!(d.help.unwrap().contains("`orgs`, `teams`, `keys`"));
}

#[test]
fn notes_starting_with_x_are_ignored() {
    let text = format!(
        "x-owner: platform\nteams:\n  growth: {{x-slack: \"#growth\"}}\nkeys:\n{}    x-made: 2026-01-01\n",
        key_block("k", "growth", "[generate]")
    );
    let t = Tenants::from_yaml("t.yaml", &text).unwrap();
    assert!(t.team("growth").is_some());
    assert!(t.key("k").is_some());
}

#[test]
fn ids_follow_the_rule_and_the_error_names_the_id_and_the_rule() {
    let d = error_at("teams:\n  Growth_1: {}\n", "invalid-id", 2, 3);
    assert_eq!(d.message, "`Growth_1` is not a valid team id");
    assert!(
        d.help.unwrap().contains("`^[a-z0-9][a-z0-9-]{0,62}$`"),
        "the rule"
    );
    let d = error_at("orgs:\n  \"-acme\": {}\n", "invalid-id", 2, 3);
    assert_eq!(d.message, "`-acme` is not a valid organisation id");
    let text = format!(
        "teams: {{growth: {{}}}}\nkeys:\n{}",
        key_block("web:1", "growth", "[generate]")
    );
    error_at(&text, "invalid-id", 3, 3);
    // 63 characters are allowed, 64 are not.
    let ok = format!("teams: {{{}: {{}}}}\n", "a".repeat(63));
    assert!(Tenants::from_yaml("t.yaml", &ok).is_ok());
    let long = format!("teams: {{{}: {{}}}}\n", "a".repeat(64));
    error_at(&long, "invalid-id", 1, 9);
}

#[test]
fn a_key_must_name_a_team_that_exists() {
    let text = format!(
        "teams:\n  growth: {{}}\nkeys:\n{}",
        key_block("web", "grwoth", "[generate]")
    );
    let d = error_at(&text, "unknown-team", 5, 11);
    assert_eq!(d.message, "key `web` belongs to unknown team `grwoth`");
    assert_eq!(d.help.as_deref(), Some("did you mean `growth`?"));
    // The team is required.
    let text = format!(
        "teams: {{growth: {{}}}}\nkeys:\n  web: {{hash: \"{HASH}\", scopes: [generate]}}\n"
    );
    let d = error_at(&text, "missing-key", 3, 8);
    assert!(d.message.contains("missing field `team`"), "{d:?}");
}

#[test]
fn a_team_may_name_only_an_org_that_exists_and_needs_none() {
    let d = error_at(
        "orgs:\n  acme: {}\nteams:\n  growth: {org: acme}\n  research: {org: acne}\n",
        "unknown-org",
        5,
        19,
    );
    assert_eq!(
        d.message,
        "team `research` belongs to unknown organisation `acne`"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `acme`?"));
    let t = Tenants::from_yaml("t.yaml", "teams:\n  solo: {}\n").unwrap();
    assert_eq!(t.team("solo").unwrap().org, None);
}

#[test]
fn budgets_must_not_be_negative_at_any_level_or_backend() {
    let d = error_at(
        "teams:\n  growth:\n    budget: {monthly_usd: -5.00}\n",
        "out-of-range",
        3,
        27,
    );
    assert_eq!(
        d.message,
        "`monthly_usd` of team `growth` is -5; it must not be negative"
    );
    let d = error_at(
        "orgs:\n  acme:\n    budget:\n      backends:\n        veo: {daily_usd: -0.01}\n",
        "out-of-range",
        5,
        26,
    );
    assert_eq!(
        d.message,
        "`daily_usd` of organisation `acme` is -0.01; it must not be negative"
    );
    // Money is exact: more than six decimals is refused, not rounded.
    let d = error_at(
        "teams:\n  growth:\n    budget: {monthly_usd: 0.0000001}\n",
        "invalid-value",
        3,
        27,
    );
    assert!(d.message.contains("monthly_usd"), "{d:?}");
    // Zero is a budget (nothing may be spent), not an error.
    let t = Tenants::from_yaml("t.yaml", "teams:\n  growth: {budget: {daily_usd: 0}}\n").unwrap();
    assert_eq!(
        t.team("growth").unwrap().budget.total.daily_usd,
        Some(Fixed::ZERO)
    );
}

#[test]
fn scopes_must_exist_and_a_key_needs_at_least_one() {
    let text = format!(
        "teams: {{growth: {{}}}}\nkeys:\n{}",
        key_block("web", "growth", "[generate, jobs:reed]")
    );
    let d = error_at(&text, "unknown-scope", 6, 24);
    assert_eq!(d.message, "unknown scope `jobs:reed`");
    assert_eq!(d.help.as_deref(), Some("did you mean `jobs:read`?"));
    let text = format!(
        "teams: {{growth: {{}}}}\nkeys:\n{}",
        key_block("web", "growth", "[]")
    );
    let d = error_at(&text, "no-scopes", 6, 13);
    assert_eq!(d.message, "key `web` has no scopes");
    let text = format!(
        "teams: {{growth: {{}}}}\nkeys:\n{}",
        key_block("web", "growth", "[decide, decide]")
    );
    error_at(&text, "duplicate-scope", 6, 22);
}

#[test]
fn hashes_limits_and_attributes_are_checked() {
    let file = |key_extra: &str| {
        format!(
            "teams: {{growth: {{}}}}\nkeys:\n{}{key_extra}",
            key_block("web", "growth", "[generate]")
        )
    };
    let d = error_at(
        &file("    limits: {jobs_in_flight: 0}\n"),
        "out-of-range",
        7,
        30,
    );
    assert_eq!(
        d.message,
        "`jobs_in_flight` of key `web` is 0; it must be at least 1"
    );
    error_at(
        &file("    limits: {requests_per_minute: -1}\n"),
        "invalid-value",
        7,
        35,
    );
    error_at(
        &file("    attributes: {tier: [a, b]}\n"),
        "invalid-value",
        7,
        24,
    );
    let d = error_at(
        &file("    attributes: {team: other}\n"),
        "reserved-attribute",
        7,
        18,
    );
    assert!(d.message.contains("`team`"));
    error_at(
        &file("    attributes: {\"my-tier\": pro}\n"),
        "invalid-name",
        7,
        18,
    );

    let bad_hash = "teams: {growth: {}}\nkeys:\n  web:\n    team: growth\n    hash: \"sha256:ABC\"\n    scopes: [generate]\n";
    error_at(bad_hash, "invalid-hash", 5, 11);

    // A token pasted where its hash goes: refused, and the message does not repeat it.
    let token = Token::generate("web");
    let pasted = bad_hash.replace("sha256:ABC", token.expose());
    let d = errors(&pasted);
    assert_eq!(d.len(), 1, "{d:?}");
    let d = &d[0];
    assert_eq!(d.code, "token-in-file");
    assert_eq!((d.line, d.column), (Some(5), Some(11)));
    assert_eq!(
        d.message,
        "the `hash` of key `web` is a token, not the hash of one (`t.yaml:5:11`)"
    );
    let secret = &token.expose()["gr_web_".len()..];
    // Rendered, it does not show the line: that would copy the token into a log.
    let rendered = Source::new("t.yaml", pasted.as_str()).render(std::slice::from_ref(d), false);
    assert!(!rendered.contains(secret), "{rendered}");
    assert!(rendered.contains("help: the file must never hold a token"));

    // Another key's hash can never match (the token names its key): refused.
    let twice = format!(
        "teams: {{growth: {{}}}}\nkeys:\n{}{}",
        key_block("a", "growth", "[generate]"),
        key_block("b", "growth", "[generate]")
    );
    let d = error_at(&twice, "duplicate-hash", 9, 11);
    assert_eq!(d.message, "keys `a` and `b` have the same hash");
}

#[test]
fn every_error_is_reported_at_once_in_file_order() {
    let text = format!(
        "orgs:\n  Acme: {{}}\nteams:\n  growth: {{org: nope, budget: {{monthly_usd: -1}}}}\nkeys:\n{}",
        key_block("web", "ghost", "[fly]")
    );
    let codes: Vec<&str> = errors(&text).iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        [
            "invalid-id",
            "unknown-org",
            "out-of-range",
            "unknown-team",
            "unknown-scope"
        ]
    );
}

#[test]
fn files_that_are_empty_too_deep_too_large_or_not_yaml_are_refused() {
    let d = errors("# nothing yet\n");
    assert_eq!(d[0].code, "empty");
    let deep = format!("x-note: {}{}\n", "[".repeat(80), "]".repeat(80));
    assert_eq!(errors(&deep)[0].code, "too-deep");
    let large = format!(
        "x-note: \"{}\"\n",
        "a".repeat(genroute::tenant::MAX_TENANTS_BYTES)
    );
    assert_eq!(errors(&large)[0].code, "too-large");
    let d = errors("teams:\n  growth: {org: acme\nkeys: {}\n");
    assert_eq!(d[0].code, "yaml-syntax", "{d:?}");
    assert!(d[0].help.is_some() && d[0].line.is_some());
    let d = error_at("teams: [growth]\n", "invalid-value", 1, 8);
    assert_eq!(d.message, "teams: invalid type: sequence, expected a map");
    // A duplicate id is a duplicate YAML key (serde_yaml alone would keep the last).
    let d = error_at(
        "teams:\n  growth: {}\n  growth: {}\n",
        "duplicate-key",
        3,
        3,
    );
    assert_eq!(d.message, "duplicate key `growth`");
    assert!(d
        .help
        .unwrap()
        .starts_with("the first `growth` is at line 2"));
    let text = format!(
        "teams: {{growth: {{}}}}\nkeys:\n{}{}",
        key_block("web", "growth", "[generate]"),
        key_block("web", "growth", "[admin]")
    );
    error_at(&text, "duplicate-key", 7, 3);
}

/// A file with tokens made for it: acme > growth > growth-web (every kind of budget), a
/// revoked key, an admin key, a jobs:read key, and a team without an org.
struct Fixture {
    tenants: Tenants,
    web: Token,
    revoked: Token,
    admin: Token,
    reader: Token,
}

fn fixture() -> Fixture {
    let web = Token::generate("growth-web");
    let revoked = Token::generate("growth-old");
    let admin = Token::generate("ops-admin");
    let reader = Token::generate("solo-reader");
    let text = format!(
        r#"orgs:
  acme:
    budget: {{monthly_usd: 500.00, daily_usd: 40.00}}
    attributes: {{tier: enterprise, region: eu, seats: 40}}
teams:
  growth:
    org: acme
    budget:
      monthly_usd: 50.00
      backends: {{pixverse: {{monthly_usd: 10.00}}, veo: {{daily_usd: 3}}}}
    attributes: {{tier: pro}}
  solo: {{}}
keys:
  growth-web:
    team: growth
    hash: "{}"
    scopes: [generate, decide, jobs:read]
    budget: {{monthly_usd: 20.00, daily_usd: 2.00}}
    limits: {{requests_per_minute: 60, jobs_in_flight: 4}}
    attributes: {{channel: web, beta: true}}
  growth-old:
    team: growth
    hash: "{}"
    scopes: [generate]
    revoked: true
  ops-admin:
    team: growth
    hash: "{}"
    scopes: [admin]
  solo-reader:
    team: solo
    hash: "{}"
    scopes: [jobs:read]
"#,
        web.hash(),
        revoked.hash(),
        admin.hash(),
        reader.hash()
    );
    Fixture {
        tenants: Tenants::from_yaml("fixture.yaml", &text).unwrap(),
        web,
        revoked,
        admin,
        reader,
    }
}

fn level(
    kind: LevelKind,
    id: &str,
    backend: Option<&str>,
    period: Period,
    amount: &str,
) -> LevelBudget {
    LevelBudget {
        kind,
        id: id.into(),
        backend: backend.map(Into::into),
        period,
        budget: usd(amount),
    }
}

#[test]
fn the_right_token_gives_the_whole_tenancy() {
    let f = fixture();
    let t = f.tenants.authenticate(f.web.expose()).unwrap();
    let attributes: BTreeMap<String, serde_json::Value> = [
        ("beta", serde_json::json!(true)),
        ("channel", serde_json::json!("web")),
        ("region", serde_json::json!("eu")),
        ("seats", serde_json::json!(40)),
        ("tier", serde_json::json!("pro")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    use LevelKind::*;
    use Period::*;
    let expected = Tenancy {
        key: "growth-web".into(),
        team: "growth".into(),
        org: Some("acme".into()),
        scopes: vec![Scope::Generate, Scope::Decide, Scope::JobsRead],
        attributes,
        limits: Limits {
            requests_per_minute: Some(60),
            jobs_in_flight: Some(4),
        },
        budgets: vec![
            level(Org, "acme", None, Month, "500"),
            level(Org, "acme", None, Day, "40"),
            level(Team, "growth", None, Month, "50"),
            level(Team, "growth", Some("pixverse"), Month, "10"),
            level(Team, "growth", Some("veo"), Day, "3"),
            level(Key, "growth-web", None, Month, "20"),
            level(Key, "growth-web", None, Day, "2"),
        ],
    };
    assert_eq!(t, expected);
    // Surrounding whitespace (as a header may carry) does not matter.
    assert_eq!(
        f.tenants.authenticate(&format!(" {} \n", f.web.expose())),
        Ok(expected.clone())
    );
    // The tenancy is stored with job records: it survives JSON.
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(
        json["scopes"],
        serde_json::json!(["generate", "decide", "jobs:read"])
    );
    assert_eq!(json["budgets"][3]["kind"], "team");
    assert_eq!(json["budgets"][3]["period"], "month");
    assert_eq!(json["budgets"][3]["budget"], serde_json::json!(10));
    let back: Tenancy = serde_json::from_value(json).unwrap();
    assert_eq!(back, t);
    // A team without an org has no org levels.
    let solo = f.tenants.authenticate(f.reader.expose()).unwrap();
    assert_eq!((solo.org, solo.budgets), (None, vec![]));
}

#[test]
fn budgets_for_a_backend_are_the_general_ones_and_its_own() {
    let f = fixture();
    let t = f.tenants.authenticate(f.web.expose()).unwrap();
    let names = |b: &str| -> Vec<String> {
        t.budgets_for(b)
            .map(|l| format!("{} {:?}", l.name(), l.period))
            .collect()
    };
    assert_eq!(
        names("pixverse"),
        [
            "org:acme Month",
            "org:acme Day",
            "team:growth Month",
            "team:growth/backend:pixverse Month",
            "key:growth-web Month",
            "key:growth-web Day"
        ]
    );
    assert!(names("mochi").iter().all(|n| !n.contains("backend:")));
    assert!(names("veo").contains(&"team:growth/backend:veo Day".to_string()));
    let described: Vec<String> = t.budgets.iter().map(LevelBudget::describe).collect();
    assert_eq!(
        described,
        [
            "org `acme`",
            "org `acme` (daily)",
            "team `growth`",
            "team `growth` on `pixverse`",
            "team `growth` on `veo` (daily)",
            "key `growth-web`",
            "key `growth-web` (daily)"
        ]
    );
}

#[test]
fn a_wrong_secret_and_an_unknown_id_are_both_unknown() {
    let f = fixture();
    let good = f.web.expose();
    // Change the secret's last character: same id, wrong secret.
    let mut wrong = good.to_string();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(f.tenants.authenticate(&wrong), Err(AuthError::Unknown));
    // Same secret, an id that does not exist.
    let other = good.replacen("gr_growth-web_", "gr_growth-wob_", 1);
    assert_eq!(f.tenants.authenticate(&other), Err(AuthError::Unknown));
    // A token for another key's id, even a valid one elsewhere.
    let stranger = Token::generate("growth-web");
    assert_eq!(
        f.tenants.authenticate(stranger.expose()),
        Err(AuthError::Unknown)
    );
}

#[test]
fn malformed_and_missing_tokens_are_told_so() {
    let f = fixture();
    let secret = &f.web.expose()["gr_growth-web_".len()..];
    for bad in [
        secret.to_string(),                           // no prefix
        format!("growth-web_{secret}"),               // no prefix
        "gr_growth-web".to_string(),                  // no `_` after the id
        "gr_growth-web_".to_string(),                 // no secret
        format!("Bearer {}", f.web.expose()),         // the header's scheme left in
        format!("gr_Growth-Web_{secret}"),            // not an id
        format!("gr_growth-web_{}", "a".repeat(300)), // too long to be a token
    ] {
        assert_eq!(
            f.tenants.authenticate(&bad),
            Err(AuthError::Malformed),
            "{bad}"
        );
    }
    assert_eq!(f.tenants.authenticate(""), Err(AuthError::Missing));
    assert_eq!(f.tenants.authenticate("  "), Err(AuthError::Missing));
}

#[test]
fn a_revoked_key_is_revoked_only_with_its_right_secret() {
    let f = fixture();
    assert_eq!(
        f.tenants.authenticate(f.revoked.expose()),
        Err(AuthError::Revoked {
            key: "growth-old".into()
        })
    );
    let mut wrong = f.revoked.expose().to_string();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'z' { 'y' } else { 'z' });
    assert_eq!(f.tenants.authenticate(&wrong), Err(AuthError::Unknown));
    // `budget show --key` still sees it.
    let t = f.tenants.tenancy_of("growth-old").unwrap();
    assert_eq!((t.key.as_str(), t.team.as_str()), ("growth-old", "growth"));
    assert!(f.tenants.key("growth-old").unwrap().revoked);
    assert_eq!(f.tenants.tenancy_of("nope"), None);
}

#[test]
fn admin_allows_every_scope_and_jobs_read_allows_only_reading() {
    let f = fixture();
    let admin = f.tenants.authenticate(f.admin.expose()).unwrap();
    for s in Scope::ALL {
        assert!(admin.allows(s), "{s}");
    }
    let reader = f.tenants.authenticate(f.reader.expose()).unwrap();
    assert!(reader.allows(Scope::JobsRead));
    for s in [Scope::Generate, Scope::Decide, Scope::Metrics, Scope::Admin] {
        assert!(!reader.allows(s), "{s}");
    }
    let web = f.tenants.authenticate(f.web.expose()).unwrap();
    assert!(
        web.allows(Scope::Generate) && !web.allows(Scope::Metrics) && !web.allows(Scope::Admin)
    );
    assert_eq!("jobs:read".parse::<Scope>(), Ok(Scope::JobsRead));
    assert_eq!(Scope::JobsRead.to_string(), "jobs:read");
    let e = "job:read".parse::<Scope>().unwrap_err();
    assert_eq!(e, "unknown scope `job:read`; did you mean `jobs:read`?");
}

#[test]
fn team_levels_lookups_and_backend_names() {
    let f = fixture();
    let t = &f.tenants;
    assert_eq!(t.teams().collect::<Vec<_>>(), ["growth", "solo"]);
    assert_eq!(
        t.key_ids(),
        ["growth-old", "growth-web", "ops-admin", "solo-reader"]
    );
    let levels: Vec<String> = t
        .team_budgets("growth")
        .unwrap()
        .iter()
        .map(LevelBudget::describe)
        .collect();
    assert_eq!(
        levels,
        [
            "org `acme`",
            "org `acme` (daily)",
            "team `growth`",
            "team `growth` on `pixverse`",
            "team `growth` on `veo` (daily)"
        ]
    );
    assert_eq!(t.team_budgets("solo"), Some(vec![]));
    assert_eq!(t.team_budgets("nope"), None);
    assert_eq!(
        t.backend_names().into_iter().collect::<Vec<_>>(),
        ["pixverse", "veo"]
    );
    assert!(t.check_backends(["veo", "pixverse", "mochi"]).is_empty());
    let d = t.check_backends(["veo", "pixverse2"]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, "unknown-backend");
    assert_eq!(
        d[0].message,
        "the budget of team `growth` caps backend `pixverse`, which the policy does not have"
    );
    assert_eq!(d[0].help.as_deref(), Some("did you mean `pixverse2`?"));
    assert_eq!((d[0].line, d[0].column), (Some(10), Some(18)));
    assert!(t.source().render(&d, false).contains("fixture.yaml:10:18"));
}

#[test]
fn secrets_never_appear_in_errors_debug_or_tenancies() {
    let f = fixture();
    let tokens = [&f.web, &f.revoked, &f.admin, &f.reader];
    let mut shown = vec![format!("{:?}", f.tenants)];
    for token in tokens {
        let text = token.expose();
        shown.push(format!("{token:?}"));
        if let Ok(t) = f.tenants.authenticate(text) {
            shown.push(format!("{t:?}"));
            shown.push(serde_json::to_string(&t).unwrap());
        }
        let mut wrong = text.to_string();
        wrong.push('x');
        let cut = &text[..text.len() - 1];
        for e in [
            f.tenants.authenticate(&wrong).unwrap_err(),
            f.tenants.authenticate(cut).unwrap_err(),
            f.tenants
                .authenticate(&text.replacen("gr_", "gx_", 1))
                .unwrap_err(),
        ] {
            shown.push(format!("{e} {e:?} {}", e.code()));
        }
    }
    if let Err(e) = f.tenants.authenticate(f.revoked.expose()) {
        shown.push(format!("{e} {e:?}"));
        assert!(e.to_string().contains("growth-old"));
    }
    for token in tokens {
        let secret =
            &token.expose()[token.expose().rfind(token.id()).unwrap() + token.id().len() + 1..];
        assert_eq!(secret.len(), 43);
        // Any 8 characters of the secret would be a leak.
        for window in secret.as_bytes().windows(8) {
            let w = std::str::from_utf8(window).unwrap();
            for s in &shown {
                assert!(!s.contains(w), "`{s}` holds part of a secret");
            }
        }
    }
    // The messages are lowercase and say what to do.
    for e in [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::Unknown,
        AuthError::Revoked { key: "k".into() },
    ] {
        let m = e.to_string();
        assert!(m.starts_with(|c: char| c.is_lowercase()), "{m}");
        assert!(m.contains('`'), "{m}");
    }
}

#[test]
fn the_shipped_example_loads_and_fits_the_demo_policy() {
    let t = Tenants::from_yaml("policies/tenants.yaml", genroute::tenant::EXAMPLE).unwrap();
    assert_eq!(
        t.teams().collect::<Vec<_>>(),
        ["growth", "research", "sandbox"]
    );
    assert!(t.key("research-old").unwrap().revoked);
    let policy = Policy::from_yaml("demo.yaml", genroute::DEMO_POLICY).unwrap();
    assert!(t
        .check_backends(policy.backends.iter().map(|b| b.name.as_str()))
        .is_empty());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/tenants.yaml");
    let loaded = Tenants::load(&path).unwrap();
    assert_eq!(loaded.key_ids(), t.key_ids());
    let missing = Tenants::load(std::path::Path::new("/nonexistent/tenants.yaml")).unwrap_err();
    assert_eq!(missing[0].code, "unreadable");
}

// ---- `genroute keys` through the binary ----

fn genroute(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genroute"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("binary runs");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn keys_create_prints_a_token_that_authenticates_with_the_printed_block() {
    let o = genroute(
        &["keys", "create", "--team", "growth", "--format", "json"],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (id, token, hash, yaml) = (
        out["id"].as_str().unwrap(),
        out["token"].as_str().unwrap(),
        out["hash"].as_str().unwrap(),
        out["yaml"].as_str().unwrap(),
    );
    assert!(
        id.starts_with("growth-") && id.len() == "growth-".len() + 6,
        "{id}"
    );
    assert!(token.starts_with(&format!("gr_{id}_")));
    assert_eq!(hash, genroute::tenant::token::hash(token));
    assert!(!yaml.contains(token) && !yaml.contains(&token[token.len() - 20..]));
    let file = format!("teams:\n  growth: {{}}\nkeys:\n{yaml}");
    let tenants = Tenants::from_yaml("made.yaml", &file).unwrap();
    let t = tenants.authenticate(token).unwrap();
    assert_eq!((t.key.as_str(), t.team.as_str()), (id, "growth"));
    assert_eq!(t.scopes, [Scope::Generate, Scope::Decide, Scope::JobsRead]);

    // The text form: a line saying it is shown once, the token, the block.
    let o = genroute(
        &[
            "keys",
            "create",
            "--team",
            "research",
            "--id",
            "ops-1",
            "--scopes",
            "admin,metrics",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("shown once"), "{stdout}");
    let token = lines.iter().find(|l| l.starts_with("gr_ops-1_")).unwrap();
    let block = stdout
        .split("under `keys:` in the tenants file:\n\n")
        .nth(1)
        .unwrap();
    assert_eq!(stdout.matches(*token).count(), 1, "printed once");
    assert!(!block.contains(*token));
    let file = format!("teams:\n  research: {{}}\nkeys:\n{block}");
    let t = Tenants::from_yaml("made.yaml", &file)
        .unwrap()
        .authenticate(token)
        .unwrap();
    assert_eq!(t.scopes, [Scope::Metrics, Scope::Admin]);

    // `keys hash` gives the same hash from the token on stdin.
    let o = genroute(&["keys", "hash"], Some(&format!("{token}\n")));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), genroute::tenant::token::hash(token));
    let o = genroute(&["keys", "hash"], Some("not-a-token-at-all\n"));
    assert_eq!(o.status.code(), Some(2));
    assert!(!text(&o.stderr).contains("not-a-token-at-all"));
}

#[test]
fn keys_create_with_a_tenants_file_checks_the_team_and_the_id() {
    let o = genroute(
        &[
            "keys",
            "create",
            "--tenants",
            "policies/tenants.yaml",
            "--team",
            "nope",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "no token is printed");
    assert_eq!(
        text(&o.stderr),
        "error: team `nope` is not in `policies/tenants.yaml`; declare it under `teams:` first\n"
    );
    let o = genroute(
        &[
            "keys",
            "create",
            "--tenants",
            "policies/tenants.yaml",
            "--team",
            "growht",
        ],
        None,
    );
    assert!(text(&o.stderr).contains("did you mean `growth`?"));
    let o = genroute(
        &[
            "keys",
            "create",
            "--tenants",
            "policies/tenants.yaml",
            "--team",
            "growth",
            "--id",
            "research-old",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr)
            .contains("key id `research-old` is already taken in `policies/tenants.yaml`"),
        "{}",
        text(&o.stderr)
    );
    let o = genroute(
        &[
            "keys",
            "create",
            "--tenants",
            "policies/tenants.yaml",
            "--team",
            "growth",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = genroute(
        &["keys", "create", "--team", "growth", "--id", "Bad_Id"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("`Bad_Id` is not a valid key id"));
    let o = genroute(
        &["keys", "create", "--team", "growth", "--scopes", "generat"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("did you mean `generate`?"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn keys_check_reports_problems_with_their_place_and_exits_1() {
    let o = genroute(
        &[
            "keys",
            "check",
            "--tenants",
            "policies/tenants.yaml",
            "--policy",
            "policies/demo.yaml",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "policies/tenants.yaml: ok (1 organisation, 3 teams, 4 keys, 1 revoked)\n"
    );
    let dir = std::env::temp_dir().join(format!("genroute-tenants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "teams:\n  growth:\n    budget: {monthly_usd: -1, backends: {pixvers: {monthly_usd: 1}}}\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let o = genroute(&["keys", "check", "--tenants", bad], None);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.contains(&format!("{bad}:3:27")), "{stderr}");
    assert!(stderr.contains("help: amounts are in USD"), "{stderr}");
    assert!(stderr.ends_with(&format!("{bad}: 1 error\n")), "{stderr}");
    // With the policy, a cap on a backend it does not have.
    std::fs::write(
        dir.join("bad.yaml"),
        "teams:\n  growth:\n    budget: {backends: {pixvers: {monthly_usd: 1}}}\n",
    )
    .unwrap();
    let o = genroute(
        &[
            "keys",
            "check",
            "--tenants",
            bad,
            "--policy",
            "policies/demo.yaml",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["diagnostics"][0]["code"], "unknown-backend");
    assert_eq!(report["diagnostics"][0]["help"], "did you mean `pixverse`?");
    assert_eq!(report["diagnostics"][0]["line"], 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
