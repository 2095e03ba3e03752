//! `genroute simulate`: the seed's §4 scenarios come out at the seed's (Appendix B) totals,
//! runs are deterministic under a seed, and the HTML report is self-contained.

use std::process::Command;

#[path = "common/scratch.rs"]
mod scratch;

fn simulate(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_genroute"))
        .arg("simulate")
        .args(args)
        .args(["--format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scenario(name: &str, baseline: bool) -> serde_json::Value {
    let policy = format!("scenarios/{name}.yaml");
    let workload = format!("scenarios/workloads/{name}.jsonl");
    let mut args = vec!["--policy", &policy, "--workload", &workload];
    if baseline {
        args.extend(["--baseline", "scenarios/veo-only.yaml"]);
    }
    simulate(&args)
}

#[test]
fn seed_scenarios_cost_what_appendix_b_says() {
    for (name, total) in [
        ("veo-only", 120),
        ("veo-pixverse", 80),
        ("optimal-mix", 64),
        ("cogvideox-only", 20),
    ] {
        let v = scenario(name, false);
        assert_eq!(v["report"]["total_usd"], serde_json::json!(total), "{name}");
        assert_eq!(v["report"]["served"], 1000, "{name}");
    }
    let mix = scenario("optimal-mix", false);
    let b = &mix["report"]["backends"];
    assert_eq!(
        (
            b["veo"]["successes"].as_u64(),
            b["pixverse"]["successes"].as_u64(),
            b["cogvideox"]["successes"].as_u64()
        ),
        (Some(400), Some(400), Some(200))
    );
}

#[test]
fn optimal_mix_saves_fifty_six_dollars_against_veo_only() {
    let v = scenario("optimal-mix", true);
    assert_eq!(v["savings"]["baseline_usd"], serde_json::json!(120));
    assert_eq!(v["savings"]["savings_usd"], serde_json::json!(56));
    let pct = v["savings"]["savings_percent"].as_f64().unwrap();
    assert!((pct - 46.666).abs() < 0.01, "{pct}");
}

#[test]
fn generated_workloads_follow_the_mix_and_runs_are_deterministic() {
    let args = [
        "--policy",
        "policies/demo.yaml",
        "--mix",
        "quality=40,balanced=40,speed=20",
        "--count",
        "2000",
        "--month",
        "2026-11",
        "--seed",
        "7",
    ];
    let a = simulate(&args);
    let b = simulate(&args);
    assert_eq!(a, b, "same seed, same month");
    assert_eq!(a["report"]["requests"], 2000);
    let mut other = args.to_vec();
    let last = other.len() - 1;
    other[last] = "8";
    assert_ne!(
        simulate(&other)["report"],
        a["report"],
        "another seed draws other outcomes"
    );
    let backends = a["report"]["backends"].as_object().unwrap();
    let failures: u64 = backends
        .values()
        .map(|s| s["failures"].as_u64().unwrap())
        .sum();
    assert!(failures > 0, "the demo's failure rates show up");
    assert!(
        a["report"]["total_usd"].as_f64().unwrap() <= 100.0,
        "never over the budget"
    );
    // Every fallback call is one move from the backend before it in the chain.
    let moves = a["report"]["fallbacks"].as_array().unwrap();
    assert!(!moves.is_empty(), "the demo's failures move requests");
    for (name, s) in backends {
        let into: u64 = moves
            .iter()
            .filter(|t| t["to"] == name.as_str())
            .map(|t| t["count"].as_u64().unwrap())
            .sum();
        assert_eq!(into, s["fallbacks"].as_u64().unwrap(), "{name}");
    }
    assert!(moves.iter().all(|t| t["from"] != t["to"]), "{moves:?}");
    let counts: Vec<u64> = moves.iter().map(|t| t["count"].as_u64().unwrap()).collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most frequent first"
    );
}

/// The chart labelled `label` (its `aria-label`) in the page.
fn chart<'a>(html: &'a str, label: &str) -> &'a str {
    let start = html
        .find(&format!("<svg role=\"img\" aria-label=\"{label}\""))
        .unwrap_or_else(|| panic!("no chart {label:?}"));
    let len = html[start..].find("</svg>").unwrap();
    &html[start..start + len]
}

/// The text of each `<text>` element of an SVG.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = t.split_once('>')?.1;
            Some(body.split_once("</text>")?.0.trim().to_string())
        })
        .collect()
}

fn has(texts: &[String], want: &str) -> bool {
    texts.iter().any(|t| t == want)
}

#[test]
fn the_html_report_is_one_self_contained_page() {
    let dir = scratch::scratch();
    let path = dir.join("report.html");
    let p = path.to_str().unwrap();
    simulate(&[
        "--policy",
        "scenarios/optimal-mix.yaml",
        "--workload",
        "scenarios/workloads/optimal-mix.jsonl",
        "--baseline",
        "scenarios/veo-only.yaml",
        "--report",
        p,
    ]);
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(
        html.matches("<svg").count(),
        6,
        "cumulative and daily spend, two mix charts, latency, fallbacks"
    );
    assert!(html.contains("<table>") && html.contains("Savings: <b>$56</b>"));
    assert!(!html.contains("<script"), "no scripts");
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !without_ns.contains("http://") && !without_ns.contains("https://"),
        "nothing fetched from anywhere"
    );

    // The cumulative spend of a $64 month (baseline $120) under a $1,000 budget: a legend
    // naming both lines, ticks on both axes, a scale that shows the data, and the budget as a
    // note at the top edge.
    let spend = texts(chart(&html, "Cumulative spend"));
    for want in [
        "Cumulative spend",
        "policy: $64",
        "baseline: $120",
        "budget $1,000 ↑ (far above)",
        "day of month",
        "spend so far ($)",
        "1",
        "15",
        "30",
        "$0",
    ] {
        assert!(has(&spend, want), "{want:?} not in {spend:?}");
    }
    let dollars: Vec<f64> = spend
        .iter()
        .filter_map(|t| t.strip_prefix('$')?.replace(',', "").parse().ok())
        .collect();
    assert!(dollars.len() >= 4, "y ticks: {dollars:?}");
    let top = dollars.iter().copied().fold(0.0, f64::max);
    assert!(
        (120.0..=180.0).contains(&top),
        "the top y tick {top} is near the data's maximum ($120), not the budget"
    );
    let daily = texts(chart(&html, "Daily spend"));
    for want in ["Daily spend", "day of month", "spend that day ($)", "$0"] {
        assert!(has(&daily, want), "{want:?} not in {daily:?}");
    }
    assert!(daily.iter().any(|t| t.starts_with("policy: ")), "{daily:?}");
    assert!(
        daily.iter().any(|t| t.starts_with("baseline: ")),
        "{daily:?}"
    );
    for (label, want) in [
        (
            "Videos per backend",
            ["policy", "baseline", "veo", "videos"],
        ),
        (
            "Spend per backend",
            ["policy", "baseline", "cogvideox", "spend ($)"],
        ),
        (
            "Latency per backend",
            ["p50 (median)", "p95", "pixverse", "latency (seconds)"],
        ),
    ] {
        let t = texts(chart(&html, label));
        for w in std::iter::once(label).chain(want) {
            assert!(has(&t, w), "{label}: {w:?} not in {t:?}");
        }
    }
    let moves = texts(chart(&html, "Fallbacks between backends"));
    assert!(
        has(&moves, "no fallbacks: every call went to the first choice"),
        "{moves:?}"
    );
}

/// A budget within reach of the spend is a dashed line with its label, and the fallbacks
/// chart names each move.
#[test]
fn the_report_draws_a_budget_within_reach_as_a_line_and_names_fallbacks() {
    let dir = scratch::scratch();
    let path = dir.join("report.html");
    simulate(&[
        "--policy",
        "policies/demo.yaml",
        "--mix",
        "quality=40,balanced=40,speed=20",
        "--count",
        "1000",
        "--month",
        "2026-11",
        "--report",
        path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&path).unwrap();
    let spend = texts(chart(&html, "Cumulative spend"));
    assert!(has(&spend, "budget: $100"), "legend entry: {spend:?}");
    assert!(has(&spend, "budget $100"), "label on the line: {spend:?}");
    assert!(!spend.iter().any(|t| t.contains("far above")), "{spend:?}");
    let moves = texts(chart(&html, "Fallbacks between backends"));
    assert!(moves.iter().any(|t| t.contains(" → ")), "{moves:?}");
    assert!(has(&moves, "requests moved from → to"), "{moves:?}");
}

/// Loads the report in headless Chromium (Debian's `chromium`, which `.ci/run` installs):
/// no console messages, and a screenshot that is not blank.
#[test]
fn the_report_renders_in_a_browser_without_errors() {
    let dir = scratch::scratch();
    let report = dir.join("report.html");
    let shot = dir.join("shot.png");
    simulate(&[
        "--policy",
        "policies/demo.yaml",
        "--mix",
        "quality=40,balanced=40,speed=20",
        "--count",
        "1000",
        "--month",
        "2026-11",
        "--report",
        report.to_str().unwrap(),
    ]);
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=900,1600",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("chromium is not installed: `apt-get install -y chromium` (.ci/run does)");
    let log = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Failed to load resource"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("a screenshot"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..info.buffer_size()];
    let distinct: std::collections::HashSet<&[u8]> = pixels
        .chunks(info.color_type.samples())
        .take(2_000_000)
        .collect();
    assert!(
        distinct.len() > 20,
        "the screenshot is blank ({} colours)",
        distinct.len()
    );
}
