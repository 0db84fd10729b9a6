//! The media plane: RTP port pool, per-direction header rewriting, RTCP
//! translation and the relay loops that move packets between the legs.

pub mod pool;
pub mod rewrite;
pub mod rtcp;

pub use pool::{PoolError, PortPair, PortPool};
pub use rewrite::{PtMap, RewriteDrop, StreamRewriter};
