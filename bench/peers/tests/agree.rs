//! Every engine gives the expected answer for every condition on its true and its false
//! context, both on a fresh context and with one scratch state reused across all cases (as
//! the benchmarks reuse it).

use genroute_peers::{cases, Ctx, Peer};

fn agree<P: Peer>() {
    let p = P::compile();
    let mut failures = Vec::new();
    for case in cases() {
        for (ctx, want) in case.contexts() {
            let got = p.check(case.index, &ctx);
            if got != want {
                failures.push(format!(
                    "{}: {} gave {got}, want {want} on {ctx:?}",
                    P::NAME,
                    case.name
                ));
            }
        }
    }
    // Twice round with one scratch state, alternating true and false contexts.
    let mut scratch = p.scratch();
    for _ in 0..2 {
        for case in cases() {
            for (ctx, want) in case.contexts() {
                let mut input = p.build(&ctx);
                let mut view = p.view(&mut input);
                let got = p.eval(&mut scratch, case.index, &mut view);
                if got != want {
                    failures.push(format!(
                        "{} (reused scratch): {} gave {got}, want {want} on {ctx:?}",
                        P::NAME,
                        case.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn contexts_keep_budget_available_consistent() {
    for case in cases() {
        for (c, _) in case.contexts() {
            assert_eq!(
                c.budget_available,
                c.monthly_spend + c.cost <= c.monthly_budget
            );
        }
    }
    assert!(Ctx::base().budget_available);
}

#[test]
fn native() {
    agree::<genroute_peers::native::Native>();
}

#[test]
fn genroute() {
    agree::<genroute_peers::genroute_engine::Genroute>();
}

#[test]
fn cel() {
    agree::<genroute_peers::cel_engine::Cel>();
}

#[test]
fn rhai() {
    agree::<genroute_peers::rhai_engine::Rhai>();
}

#[test]
fn regorus() {
    agree::<genroute_peers::regorus_engine::Regorus>();
}

#[test]
fn datalogic() {
    agree::<genroute_peers::datalogic_engine::Datalogic>();
}

#[test]
fn zen() {
    agree::<genroute_peers::zen_engine::Zen>();
}
