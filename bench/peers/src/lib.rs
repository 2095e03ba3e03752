//! Shared definitions for comparing genroute's condition evaluation with peer engines.
//!
//! Six conditions (written in genroute's language in [`CONDITIONS`]) are translated into each
//! peer's own language in that peer's module. Every engine implements [`Peer`]: it compiles the
//! six conditions once ([`Peer::compile`]), builds its own context from a plain [`Ctx`]
//! ([`Peer::build`], then [`Peer::view`]), and evaluates one condition to a `bool`
//! ([`Peer::eval`]). [`cases`] gives, for every condition, a context that makes it true and one
//! that makes it false; `tests/agree.rs` checks every engine on all of them and
//! `benches/peers.rs` times them.

pub mod cel_engine;
pub mod datalogic_engine;
pub mod genroute_engine;
pub mod native;
pub mod regorus_engine;
pub mod rhai_engine;
pub mod zen_engine;

/// The six conditions in genroute's syntax, `c1` first.
pub const CONDITIONS: [&str; 6] = [
    "priority == 'quality' AND budget_available",
    "monthly_spend >= cost_threshold",
    "priority == 'speed' AND budget_available",
    "duration > 8 AND aspect_ratio in ['9:16', '1:1']",
    "(monthly_spend + cost) / monthly_budget < 0.8 OR priority == 'quality'",
    "priority != 'speed' AND budget_available AND duration <= 10 \
     AND aspect_ratio in ['16:9', '9:16'] AND monthly_spend < monthly_budget * 0.9 \
     AND quality_threshold <= 0.9 AND NOT (style == 'anime') AND failures < 3 \
     AND hour >= 6 AND day_of_month <= 28",
];

/// Condition names, as used in bench group names (`condition/c1` ...).
pub const NAMES: [&str; 6] = ["c1", "c2", "c3", "c4", "c5", "c6"];

/// The condition the `per_request` benchmark evaluates (c6, index 5).
pub const PER_REQUEST: usize = 5;

/// The plain request + state a decision sees, before any engine has touched it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ctx {
    pub priority: &'static str,
    /// Seconds.
    pub duration: f64,
    pub aspect_ratio: &'static str,
    pub quality_threshold: f64,
    pub style: &'static str,
    /// US dollars.
    pub monthly_spend: f64,
    pub monthly_budget: f64,
    pub cost_threshold: f64,
    /// The target backend's cost for this request.
    pub cost: f64,
    /// Always `monthly_spend + cost <= monthly_budget`.
    pub budget_available: bool,
    pub failures: u32,
    /// UTC, 0 to 23.
    pub hour: u32,
    /// UTC, 1 to 31.
    pub day_of_month: u32,
}

impl Ctx {
    /// The base context every case starts from.
    pub fn base() -> Ctx {
        Ctx {
            priority: "quality",
            duration: 8.0,
            aspect_ratio: "16:9",
            quality_threshold: 0.8,
            style: "cinematic",
            monthly_spend: 40.00,
            monthly_budget: 100.0,
            cost_threshold: 80.0,
            cost: 0.50,
            budget_available: true,
            failures: 0,
            hour: 12,
            day_of_month: 10,
        }
        .fix_budget()
    }

    fn fix_budget(mut self) -> Ctx {
        self.budget_available = self.monthly_spend + self.cost <= self.monthly_budget;
        self
    }

    pub fn priority(mut self, p: &'static str) -> Ctx {
        self.priority = p;
        self
    }

    pub fn spend(mut self, s: f64) -> Ctx {
        self.monthly_spend = s;
        self.fix_budget()
    }

    pub fn duration(mut self, d: f64) -> Ctx {
        self.duration = d;
        self
    }

    pub fn aspect_ratio(mut self, a: &'static str) -> Ctx {
        self.aspect_ratio = a;
        self
    }

    pub fn day_of_month(mut self, d: u32) -> Ctx {
        self.day_of_month = d;
        self
    }
}

/// One condition with a context that makes it true and one that makes it false.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// 0 for c1 ... 5 for c6.
    pub index: usize,
    pub name: &'static str,
    pub when_true: Ctx,
    pub when_false: Ctx,
}

impl Case {
    /// `(context, expected)` pairs: the true one first.
    pub fn contexts(&self) -> [(Ctx, bool); 2] {
        [(self.when_true, true), (self.when_false, false)]
    }
}

/// The six cases.
pub fn cases() -> [Case; 6] {
    let b = Ctx::base();
    let pairs = [
        (b, b.priority("balanced")),
        (b.spend(85.0), b),
        (b.priority("speed"), b),
        (b.duration(10.0).aspect_ratio("9:16"), b),
        (b, b.priority("balanced").spend(90.0)),
        // The false context fails on the last clause, so every clause is evaluated.
        (b, b.day_of_month(30)),
    ];
    std::array::from_fn(|i| {
        let (t, f) = pairs[i];
        for c in [t, f] {
            assert_eq!(
                c.budget_available,
                c.monthly_spend + c.cost <= c.monthly_budget
            );
        }
        Case {
            index: i,
            name: NAMES[i],
            when_true: t,
            when_false: f,
        }
    })
}

/// One engine: compiled conditions, a way to build its context from a [`Ctx`], evaluation.
///
/// Building is split in two because some engines' contexts borrow (genroute's `Context`
/// borrows the request and the state): [`Peer::build`] makes the owned part, [`Peer::view`]
/// the value evaluation reads. For most engines the view is just a reference.
pub trait Peer: Sized {
    /// The name used in bench ids.
    const NAME: &'static str;
    /// The engine's context, owned.
    type Input;
    /// What evaluation reads.
    type View<'a>
    where
        Self: 'a;
    /// Reusable mutable state evaluation needs (a VM, an arena); `()` when none.
    type Scratch;

    /// Compiles the six conditions. Panics with the engine's message if one does not compile.
    fn compile() -> Self;
    /// Fresh scratch state.
    fn scratch(&self) -> Self::Scratch;
    /// Builds the engine's context from the plain struct.
    fn build(&self, ctx: &Ctx) -> Self::Input;
    /// The value evaluation reads, borrowed from `input`.
    fn view<'a>(&'a self, input: &'a mut Self::Input) -> Self::View<'a>;
    /// Evaluates condition `cond` (0 for c1 ... 5 for c6). Panics on an engine error or a
    /// non-boolean result: a benchmark must never time a failure. Every engine marks it
    /// `#[inline(always)]`, so that no engine's timing depends on whether the optimizer chose
    /// to inline its adapter into the benchmark loop.
    fn eval(&self, scratch: &mut Self::Scratch, cond: usize, view: &mut Self::View<'_>) -> bool;

    /// Builds the context from `ctx` and evaluates `cond` on it, for tests.
    fn check(&self, cond: usize, ctx: &Ctx) -> bool {
        let mut scratch = self.scratch();
        let mut input = self.build(ctx);
        let mut view = self.view(&mut input);
        self.eval(&mut scratch, cond, &mut view)
    }
}

/// An engine gave a wrong or failed answer inside `Peer::eval`: panics with `what`. Cold and out
/// of line, so that no engine's timed path carries the formatting of a message it never prints.
#[cold]
#[inline(never)]
pub fn wrong_answer(engine: &str, cond: usize, what: &dyn std::fmt::Debug) -> ! {
    panic!("{engine}: c{}: {what:?}", cond + 1)
}
