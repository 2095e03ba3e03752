//! Circuit breakers: a pure state machine with the clock passed in.
//!
//! `failure_threshold` consecutive failures open a breaker for `timeout`. After that it is
//! half-open and admits up to `half_open_requests` probe calls; that many successes close it,
//! and any failure while half-open opens it again for another `timeout`.
//!
//! A probe that never reports back (its process died) would hold its slot forever, which is
//! resilience4j's "stuck half-open" trouble. Here a probe slot is reclaimed once `timeout` has
//! passed since the last probe was admitted.
//!
//! Times are milliseconds since the Unix epoch, supplied by the caller, so the same code runs
//! under a real clock, a test clock, or state loaded from a shared store.

/// Circuit breaker states, in the order of the `breaker` enum (one byte each, which the
/// condition JIT reads).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum BreakerState {
    /// Calls flow.
    #[default]
    Closed,
    /// Calls are refused until the timeout passes.
    Open,
    /// A limited number of probe calls are admitted.
    HalfOpen,
}

impl BreakerState {
    /// Its name in conditions and output.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Per-backend settings (seed defaults 5 / 60 s / 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open, in milliseconds.
    pub timeout_ms: i64,
    /// Probes admitted while half-open, and successes needed to close.
    pub half_open_requests: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            timeout_ms: 60_000,
            half_open_requests: 3,
        }
    }
}

/// The persisted state of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Breaker {
    /// Closed, open or half-open, as last written.
    pub state: BreakerState,
    /// Consecutive failures while closed.
    pub failures: u32,
    /// When it last opened.
    pub opened_at_ms: i64,
    /// Probes admitted and not yet reported while half-open.
    pub probes_in_flight: u32,
    /// Successful probes while half-open.
    pub probe_successes: u32,
    /// When the last probe was admitted.
    pub last_probe_at_ms: i64,
}

/// A call was refused; the breaker is open (or half-open with every probe slot taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Milliseconds until it may admit a call again.
    pub retry_in_ms: i64,
}

impl Breaker {
    /// The state as of `now`: an open breaker whose timeout has passed reads as half-open.
    pub fn state_at(&self, now_ms: i64, cfg: &BreakerConfig) -> BreakerState {
        match self.state {
            BreakerState::Open if now_ms >= self.opened_at_ms.saturating_add(cfg.timeout_ms) => {
                BreakerState::HalfOpen
            }
            s => s,
        }
    }

    /// Asks to make a call. Admitted calls must be followed by exactly one of
    /// [`Breaker::on_success`] or [`Breaker::on_failure`].
    pub fn try_acquire(&mut self, now_ms: i64, cfg: &BreakerConfig) -> Result<(), Refused> {
        match self.state_at(now_ms, cfg) {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => Err(Refused {
                retry_in_ms: self.opened_at_ms.saturating_add(cfg.timeout_ms) - now_ms,
            }),
            BreakerState::HalfOpen => {
                if self.state == BreakerState::Open {
                    self.state = BreakerState::HalfOpen;
                    self.probes_in_flight = 0;
                    self.probe_successes = 0;
                }
                if self.probes_in_flight > 0
                    && now_ms >= self.last_probe_at_ms.saturating_add(cfg.timeout_ms)
                {
                    self.probes_in_flight = 0;
                }
                if self.probes_in_flight + self.probe_successes >= cfg.half_open_requests {
                    return Err(Refused {
                        retry_in_ms: (self.last_probe_at_ms.saturating_add(cfg.timeout_ms)
                            - now_ms)
                            .max(0),
                    });
                }
                self.probes_in_flight += 1;
                self.last_probe_at_ms = now_ms;
                Ok(())
            }
        }
    }

    /// Reports a successful call.
    pub fn on_success(&mut self, _now_ms: i64, cfg: &BreakerConfig) {
        match self.state {
            BreakerState::Closed => self.failures = 0,
            BreakerState::HalfOpen => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                self.probe_successes += 1;
                if self.probe_successes >= cfg.half_open_requests {
                    *self = Breaker::default();
                }
            }
            // A call admitted before the breaker opened elsewhere: it does not close it.
            BreakerState::Open => {}
        }
    }

    /// Reports a failed call.
    pub fn on_failure(&mut self, now_ms: i64, cfg: &BreakerConfig) {
        match self.state {
            BreakerState::Closed => {
                self.failures += 1;
                if self.failures >= cfg.failure_threshold {
                    self.open(now_ms);
                }
            }
            BreakerState::HalfOpen => self.open(now_ms),
            BreakerState::Open => {}
        }
    }

    /// Reports a call that says nothing about the backend's health (a moderation refusal):
    /// a half-open probe slot is handed back, and nothing is counted.
    pub fn on_neutral(&mut self) {
        if self.state == BreakerState::HalfOpen {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
    }

    /// Forces it closed (an operator's reset).
    pub fn reset(&mut self) {
        *self = Breaker::default();
    }

    fn open(&mut self, now_ms: i64) {
        *self = Breaker {
            state: BreakerState::Open,
            opened_at_ms: now_ms,
            ..Breaker::default()
        };
    }
}

/// One change to a breaker, as data, so that a store can apply it inside its own transaction
/// (a SQLite write, a Redis compare-and-set) without carrying a closure across threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerChange {
    /// Ask to make a call ([`Breaker::try_acquire`]).
    Acquire,
    /// Report a success ([`Breaker::on_success`]).
    Success,
    /// Report a failure ([`Breaker::on_failure`]).
    Failure,
    /// Hand a permit back without a verdict ([`Breaker::on_neutral`]).
    Neutral,
    /// Force it closed ([`Breaker::reset`]).
    Reset,
}

impl Breaker {
    /// Applies `change` at `now_ms`; returns whether the call is admitted (always true for
    /// anything but [`BreakerChange::Acquire`]).
    pub fn apply(&mut self, change: BreakerChange, now_ms: i64, cfg: &BreakerConfig) -> bool {
        match change {
            BreakerChange::Acquire => return self.try_acquire(now_ms, cfg).is_ok(),
            BreakerChange::Success => self.on_success(now_ms, cfg),
            BreakerChange::Failure => self.on_failure(now_ms, cfg),
            BreakerChange::Neutral => self.on_neutral(),
            BreakerChange::Reset => self.reset(),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CFG: BreakerConfig = BreakerConfig {
        failure_threshold: 5,
        timeout_ms: 60_000,
        half_open_requests: 3,
    };

    #[test]
    fn seed_semantics_five_failures_sixty_seconds_three_successes() {
        let mut b = Breaker::default();
        for i in 0..5 {
            assert!(b.try_acquire(i, &CFG).is_ok());
            b.on_failure(i, &CFG);
        }
        assert_eq!(b.state_at(10, &CFG), BreakerState::Open);
        assert_eq!(
            b.try_acquire(59_000, &CFG),
            Err(Refused {
                retry_in_ms: 4 + 60_000 - 59_000
            })
        );
        assert_eq!(b.state_at(60_004, &CFG), BreakerState::HalfOpen);
        for t in 0..3 {
            assert!(b.try_acquire(60_010 + t, &CFG).is_ok());
        }
        assert!(
            b.try_acquire(60_020, &CFG).is_err(),
            "a fourth probe is refused"
        );
        for t in 0..3 {
            b.on_success(60_100 + t, &CFG);
        }
        assert_eq!(b.state_at(60_200, &CFG), BreakerState::Closed);
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let mut b = Breaker {
            state: BreakerState::Open,
            opened_at_ms: 0,
            ..Breaker::default()
        };
        assert!(b.try_acquire(60_000, &CFG).is_ok());
        b.on_failure(60_001, &CFG);
        assert_eq!(b.state_at(60_002, &CFG), BreakerState::Open);
        assert_eq!(b.opened_at_ms, 60_001);
    }

    #[test]
    fn success_resets_the_consecutive_count() {
        let mut b = Breaker::default();
        for _ in 0..4 {
            b.on_failure(0, &CFG);
        }
        b.on_success(0, &CFG);
        for _ in 0..4 {
            b.on_failure(0, &CFG);
        }
        assert_eq!(b.state, BreakerState::Closed);
    }

    #[test]
    fn a_lost_probe_slot_is_reclaimed_after_the_timeout() {
        let mut b = Breaker {
            state: BreakerState::Open,
            opened_at_ms: 0,
            ..Breaker::default()
        };
        let one = BreakerConfig {
            half_open_requests: 1,
            ..CFG
        };
        assert!(b.try_acquire(60_000, &one).is_ok());
        assert!(b.try_acquire(61_000, &one).is_err());
        assert!(
            b.try_acquire(120_000, &one).is_ok(),
            "the dead probe's slot came back"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Acquire,
        Success,
        Failure,
        Wait(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Acquire),
            2 => Just(Op::Success),
            2 => Just(Op::Failure),
            1 => (0i64..90_000).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// No call is admitted while open; at most N probes are in flight while half-open;
        /// N successes close it; a failure while half-open reopens it.
        #[test]
        fn breaker_invariants_hold_for_any_history(ops in prop::collection::vec(op(), 1..200),
                                                   threshold in 1u32..6, probes in 1u32..4) {
            let cfg = BreakerConfig { failure_threshold: threshold, timeout_ms: 60_000, half_open_requests: probes };
            let mut b = Breaker::default();
            let mut now = 0i64;
            let mut outstanding = 0u32;
            for op in ops {
                match op {
                    Op::Wait(ms) => now += ms,
                    Op::Acquire => {
                        let before = b.state_at(now, &cfg);
                        let admitted = b.try_acquire(now, &cfg).is_ok();
                        if before == BreakerState::Open {
                            prop_assert!(!admitted, "admitted while open");
                        }
                        if admitted {
                            outstanding += 1;
                        }
                        if b.state == BreakerState::HalfOpen {
                            prop_assert!(b.probes_in_flight + b.probe_successes <= probes);
                        }
                    }
                    Op::Success if outstanding > 0 => {
                        outstanding -= 1;
                        let was = b.state;
                        let successes = b.probe_successes;
                        b.on_success(now, &cfg);
                        if was == BreakerState::HalfOpen && successes + 1 >= probes {
                            prop_assert_eq!(b.state, BreakerState::Closed);
                        }
                        if was == BreakerState::Closed {
                            prop_assert_eq!(b.failures, 0);
                        }
                    }
                    Op::Failure if outstanding > 0 => {
                        outstanding -= 1;
                        let was = b.state;
                        let failures = b.failures;
                        b.on_failure(now, &cfg);
                        if was == BreakerState::HalfOpen {
                            prop_assert_eq!(b.state, BreakerState::Open);
                            prop_assert_eq!(b.opened_at_ms, now);
                        }
                        if was == BreakerState::Closed && failures + 1 >= threshold {
                            prop_assert_eq!(b.state, BreakerState::Open);
                        }
                    }
                    _ => {}
                }
                if b.state == BreakerState::Closed {
                    prop_assert!(b.failures < threshold);
                }
            }
        }
    }
}
