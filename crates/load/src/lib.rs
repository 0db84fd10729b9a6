//! The load generator behind `siphon-load`: lightweight browsers (the
//! testkit's, placing calls over siphon's WebSocket), siphon's echo UAS
//! with a tap that stamps each pass, and the orchestration and measurement
//! of a ramp and of a soak. A load generator, not a correctness peer.

pub mod client;
pub mod engine;
pub mod error;
pub mod flood;
pub mod plot;
pub mod procfs;
pub mod ramp;
pub mod report;
pub mod scrape;
pub mod soak;
pub mod stamp;
pub mod stats;
mod sys;

pub use error::RunError;
pub use ramp::{run, Plan};
pub use report::{Report, Step};
