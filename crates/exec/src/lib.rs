//! genroute's execution: the path from a decided request to a video.
//!
//! It holds the backend adapters ([`adapter`]), the IO of the output checks ([`output`]), the
//! walk along a decision's chain with its money and breakers ([`Router`], [`walk`]), the
//! caches of figures decisions read ([`snapshot`], [`levels`]), durable jobs and their
//! webhooks ([`jobs`]), and the simulator ([`simulate`]).
//!
//! **What it may depend on.** `genroute-core` (the language, the policy, decisions, output
//! judging: pure) and `genroute-store` (the ledger, breakers and job records every replica
//! shares), and the IO libraries the calls need (tokio, reqwest). Nothing here depends on the
//! HTTP service or the CLI: they depend on it.
//!
//! **What it must never do.** Define a stored record (the store keeps records, so it defines
//! them: the job record, the ledger's entries, the outcome strings of [`Attempt`]); serve
//! HTTP (that is `genroute-server`); or print for people (that is the CLI). A layout change
//! here must leave the stored and JSON forms as they are.
//!
//! The top-level modules form no cycle: `clock` and `sink` depend on nothing here;
//! `snapshot` on `clock`; `levels` on `snapshot`; `router` on all of those and on `adapter`
//! and `output`; `jobs` and `simulate` on what they drive.

pub mod adapter;
pub mod clock;
pub mod jobs;
pub mod levels;
pub mod output;
pub mod router;
pub mod simulate;
pub mod sink;
pub mod snapshot;

pub use clock::{Clock, ManualClock, SystemClock};
pub use genroute_store::job::{Attempt, Current, NotCalled, Phase, Step};
pub use levels::budget_summary;
pub use router::walk;
pub use router::walk::{NoProgress, Position, Progress, Walked};
pub use router::{
    not_eligible, ArmView, ExperimentView, Generation, PlanError, Router, BAD_OUTPUT, LEDGER_ERROR,
};
pub use sink::{data_dir, DirSink, VideoSink};
