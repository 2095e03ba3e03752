//! genroute's condition evaluation against peer engines.
//!
//! - `condition/c1` ... `condition/c6`, ids `<engine>/true` and `<engine>/false`: conditions
//!   compiled once, the engine's context built once; the timed loop only evaluates.
//! - `per_request`, ids `<engine>`: each iteration takes a fresh `Ctx`, builds the engine's
//!   context from it and evaluates c6.
//!
//! Every measured evaluation is first checked to give the expected answer.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};

use genroute_peers::cel_engine::Cel;
use genroute_peers::datalogic_engine::Datalogic;
use genroute_peers::genroute_engine::Genroute;
use genroute_peers::native::Native;
use genroute_peers::regorus_engine::Regorus;
use genroute_peers::rhai_engine::Rhai;
use genroute_peers::zen_engine::Zen;
use genroute_peers::{cases, Case, Peer, PER_REQUEST};

struct Engines {
    native: Native,
    genroute: Genroute,
    cel: Cel,
    rhai: Rhai,
    regorus: Regorus,
    datalogic: Datalogic,
    zen: Zen,
}

impl Engines {
    fn compile() -> Engines {
        Engines {
            native: Native::compile(),
            genroute: Genroute::compile(),
            cel: Cel::compile(),
            rhai: Rhai::compile(),
            regorus: Regorus::compile(),
            datalogic: Datalogic::compile(),
            zen: Zen::compile(),
        }
    }
}

/// `<engine>/true` and `<engine>/false` for one condition.
fn condition<P: Peer>(g: &mut BenchmarkGroup<'_, WallTime>, p: &P, case: &Case) {
    for (ctx, want) in case.contexts() {
        let mut scratch = p.scratch();
        let mut input = p.build(&ctx);
        let mut view = p.view(&mut input);
        let got = p.eval(&mut scratch, case.index, &mut view);
        assert_eq!(
            got,
            want,
            "{} {}: wrong answer; not measuring it",
            P::NAME,
            case.name
        );
        let cond = case.index;
        g.bench_function(format!("{}/{want}", P::NAME), |b| {
            b.iter(|| black_box(p.eval(&mut scratch, black_box(cond), black_box(&mut view))))
        });
    }
}

fn conditions(c: &mut Criterion) {
    let e = Engines::compile();
    for case in cases() {
        let mut g = c.benchmark_group(format!("condition/{}", case.name));
        condition(&mut g, &e.native, &case);
        condition(&mut g, &e.genroute, &case);
        condition(&mut g, &e.cel, &case);
        condition(&mut g, &e.rhai, &case);
        condition(&mut g, &e.regorus, &case);
        condition(&mut g, &e.datalogic, &case);
        condition(&mut g, &e.zen, &case);
        g.finish();
    }
}

/// `<engine>`: build the engine's context from a fresh `Ctx`, then evaluate c6.
fn request<P: Peer>(g: &mut BenchmarkGroup<'_, WallTime>, p: &P) {
    let case = cases()[PER_REQUEST];
    let ctx = case.when_true;
    let mut scratch = p.scratch();
    {
        let mut input = p.build(&ctx);
        let mut view = p.view(&mut input);
        let got = p.eval(&mut scratch, PER_REQUEST, &mut view);
        assert!(
            got,
            "{} {}: wrong answer; not measuring it",
            P::NAME,
            case.name
        );
    }
    g.bench_function(P::NAME, |b| {
        b.iter(|| {
            let fresh = black_box(ctx);
            let mut input = p.build(&fresh);
            let mut view = p.view(&mut input);
            black_box(p.eval(&mut scratch, PER_REQUEST, &mut view))
        })
    });
}

fn per_request(c: &mut Criterion) {
    let e = Engines::compile();
    let mut g = c.benchmark_group("per_request");
    request(&mut g, &e.native);
    request(&mut g, &e.genroute);
    request(&mut g, &e.cel);
    request(&mut g, &e.rhai);
    request(&mut g, &e.regorus);
    request(&mut g, &e.datalogic);
    request(&mut g, &e.zen);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = conditions, per_request
}
criterion_main!(benches);
