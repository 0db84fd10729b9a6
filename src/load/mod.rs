//! The load generator behind `siphon-load`: lightweight browsers (ICE as
//! the controlling agent, DTLS client, SRTP) placing calls over siphon's
//! WebSocket, a SIP UAS that answers and echoes, and the orchestration and
//! measurement of a ramp. It shares siphon's building blocks (its echo UAS,
//! rtc-stun, dimpl, rtc-srtp): a load generator, not a correctness peer.

pub mod client;
pub mod flood;
pub mod peer;
pub mod plot;
pub mod procfs;
pub mod ramp;
pub mod report;
pub mod scrape;
pub mod soak;
pub mod stamp;
pub mod stats;

pub use ramp::{run, Plan};
pub use report::{Report, Step};
