//! lmsd-projector: keeps the learning projections live (docs/events.md).
//!
//! It is the hot path of learning activity: every learning event a campus records passes
//! through it once. `lmsd/learning/projections.py` holds the same projections in Python, which
//! `lmsd events replay` and `lmsd events dlq replay` use; the integration tests rebuild the
//! tables with them and require the result to equal what this projector wrote.
//!
//! Module map, from the pure parts to the edges:
//! - [`event`]: decoding and checking envelopes; subjects.
//! - [`projection`]: progress, lesson progress, gradebook and xAPI facts of a batch.
//! - [`store`]: one batch, one transaction (locks, claims, upserts, course completions).
//! - [`consumer`]: the JetStream lanes, acknowledgements and dead letters.
//! - [`config`]: command line and `LMSD_PROJECTOR_*` environment.

pub mod config;
pub mod consumer;
pub mod event;
pub mod projection;
pub mod store;

pub use config::{Cli, Command, ServeConfig};
