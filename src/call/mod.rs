//! Calls: routing, and the per-call state machines (events in, commands
//! out, through [`CallMachine`]). The registry of live calls and the IO
//! around the machines are `gateway`'s.

mod error;
pub mod hold;
pub mod inbound;
pub mod keys;
pub mod leg;
pub mod machine;
mod midcall;
pub mod outbound;
pub mod refusal;
pub mod reoffer;
pub mod route;
pub mod sdes;
mod signals;
pub mod transfer;

pub use error::{SdesError, SessionError};
pub use machine::{CallMachine, ClientInput, Command, Event, SipInput};
pub use route::{resolve, RouteConfig, RouteError, Target};
pub use signals::{MediaFailure, MediaSignal, Outcome, SessionFacts, StartError};

/// The `hangup` reason when the SIP peer stopped refreshing the session
/// (RFC 4028), or a refresh found its dialog gone.
pub const SESSION_EXPIRED: &str = "Session timer expired";
/// Hangup reason of calls still up when a drain ends (code 503).
pub const SHUTTING_DOWN: &str = "siphon is shutting down";
