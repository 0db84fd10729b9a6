//! Per-call media quality: what the relay counts of each direction (RFC
//! 3550 loss and jitter), each leg's round trip from the RTCP passing
//! through, what each far end reports, and the E-model estimate (R, MOS)
//! worked out from them. Pure: time comes in as values.

mod call;
pub mod emodel;
mod figures;
mod receive;
mod rtcp_scan;
mod rtt;

pub use call::{CallQuality, FarReport, Leg, QualitySnapshot, StreamSnapshot};
pub use figures::{figures, Figures};
pub use receive::{ReceiveStats, Received, RtpFields};
pub use rtcp_scan::{scan, Found, ReportBlock};
pub use rtt::RttProbe;

/// RTCP builders for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) use rtcp_scan::tests::{block, rr, sr};
