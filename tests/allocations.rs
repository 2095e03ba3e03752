//! A decision allocates nothing once its output buffer has grown: counted with a counting
//! global allocator (a count is deterministic; a time is not).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use genroute::{BreakerState, Decision, RequestBuilder, State};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn deciding_on_videogen_allocates_nothing() {
    let p = common::videogen();
    let now = common::NOW.parse().unwrap();
    let mut cases = Vec::new();
    for (priority, aspect, spend) in [
        ("quality", "16:9", "0"),
        ("balanced", "9:16", "20"),
        ("speed", "16:9", "99.98"),
        ("balanced", "16:9", "60"),
    ] {
        let req = RequestBuilder::new("x")
            .set("priority", priority)
            .set("aspect_ratio", aspect)
            .set("tier", "enterprise")
            .build(&p)
            .unwrap();
        let mut state = State::new(&p, now).with_spend(spend.parse().unwrap());
        state
            .set_breaker(&p, "veo", BreakerState::HalfOpen)
            .unwrap();
        cases.push((req, state));
    }
    let mut out = Decision::default();
    for (req, state) in &cases {
        p.decide_into(req, state, &mut out); // grows the buffer once
    }
    let before = allocations();
    let mut chosen = 0;
    for _ in 0..1000 {
        for (req, state) in &cases {
            p.decide_into(req, state, &mut out);
            chosen += usize::from(out.backend.is_some());
        }
    }
    assert_eq!(allocations() - before, 0, "a decision allocated");
    assert_eq!(chosen, 3000, "speed at 99.98 has no eligible backend");
    // And the reused buffer gives the same answers as fresh decisions.
    for (req, state) in &cases {
        p.decide_into(req, state, &mut out);
        assert_eq!(out, p.decide(req, state));
    }
}

#[test]
fn tracing_into_a_reused_trace_allocates_nothing() {
    let p = common::videogen();
    let now = common::NOW.parse().unwrap();
    let cases: Vec<_> = [("quality", "0"), ("balanced", "20"), ("speed", "99.98")]
        .into_iter()
        .map(|(priority, spend)| {
            let req = RequestBuilder::new("x")
                .set("priority", priority)
                .set("tier", "enterprise")
                .build(&p)
                .unwrap();
            (req, State::new(&p, now).with_spend(spend.parse().unwrap()))
        })
        .collect();
    let mut trace = genroute::Trace::default();
    for (req, state) in &cases {
        p.trace_into(req, state, &mut trace); // grows the buffers
    }
    let before = allocations();
    let mut clauses = 0;
    for _ in 0..1000 {
        for (req, state) in &cases {
            p.trace_into(req, state, &mut trace);
            clauses += trace.clauses.len();
        }
    }
    assert_eq!(allocations() - before, 0, "recording a trace allocated");
    assert!(clauses > 3000, "every rule's clauses are recorded");
    for (req, state) in &cases {
        p.trace_into(req, state, &mut trace);
        assert_eq!(trace.decision, p.decide(req, state));
        assert_eq!(trace.rules.len(), p.rules.len());
        let rendered = genroute::explain::render(&p, req, state, &trace);
        assert_eq!(rendered, p.explain(req, state));
    }
}
