//! Peers for siphon's tests, benches and load generator: a lightweight
//! browser (ICE, DTLS client, SRTP on a real UDP socket), the WebSocket
//! request a browser sends, and the ports tests bind. Nothing here is part
//! of the gateway, and nothing here depends on it, so siphon's own unit
//! tests can use it.

pub mod browser;
pub mod ports;
pub mod ws;
