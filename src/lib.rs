//! siphon: a SIP <-> WebRTC media gateway.
//!
//! Module map (docs/architecture.md has what each may import and a call's
//! path): `config`, `sdp`, `sip`, `webrtc`, `media`, `call`, `signaling`,
//! `http`, `metrics`, `srtp` (in-place SRTP for both media legs), `records`
//! (a record per call, to the log, a file and webhooks), `gateway` (the
//! calls, the registry and the shutdown), `connections` and `tls`;
//! `fuzzing` (tests and the `fuzzing` feature only) is the door for the
//! fuzz targets in `fuzz/`. The load generator
//! is its own crate, `siphon-load` (crates/load), and the test peers live in
//! `siphon-testkit` (crates/testkit).

pub mod call;
pub mod config;
pub mod connections;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod http;
pub mod media;
pub mod metrics;
pub mod records;
pub mod sdp;
pub mod signaling;
pub mod sip;
pub mod srtp;
pub mod tls;
pub mod webrtc;
