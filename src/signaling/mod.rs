//! The WebSocket JSON signaling protocol: message types and the per-socket session.

pub mod auth;
pub mod early;
pub mod ending;
pub mod messages;
mod parse;
pub mod quality;
pub mod session;

pub use messages::{
    parse_client_message, ClientMessage, ErrorCode, IceCandidate, Incoming, Refusal, ServerMessage,
};
pub use quality::{DirectionQuality, QualityReport};
pub use session::{
    new_call_id, CallRequest, CallService, ClientControl, ClientEvent, DialogReply, OtherCall,
    RegisterRequest, Replacement, ResumeLink, SessionId, SessionLimits, SessionLink,
};
