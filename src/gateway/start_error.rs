//! Why the gateway could not start, worded for the operator: a listener
//! that cannot bind names its config key and address.

use std::io;
use std::net::SocketAddr;

use crate::media::RelayError;
use crate::records::RecordsError;
use crate::sip::{SipError, Transport};
use crate::webrtc::WebRtcError;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind its address, e.g. `sip.udp 0.0.0.0:5060: address already in use`.
    #[error("{key} {addr}: {}", bind_reason(.source))]
    Bind {
        /// The config key that set the address.
        key: String,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The SIP stack failed to start.
    #[error("sip: {0}")]
    Sip(SipError),
    /// The relay loops failed to start.
    #[error("media: {0}")]
    Media(RelayError),
    /// Certificate generation failed.
    #[error("webrtc: {0}")]
    WebRtc(#[from] WebRtcError),
    /// A TLS certificate or key could not be loaded.
    #[error("{key}: {reason}")]
    Tls {
        /// The config key naming the file.
        key: &'static str,
        /// What is wrong with it, naming the path.
        reason: String,
    },
    /// `records.file` could not be opened (the error names the key).
    #[error("{0}")]
    Records(RecordsError),
}

impl StartError {
    /// A failed bind of the listener configured at `key`.
    pub fn bind(key: &str, addr: SocketAddr, source: io::Error) -> Self {
        let key = key.to_owned();
        StartError::Bind { key, addr, source }
    }

    /// The gateway's SIP endpoint failed; a bind failure names `sip.udp` or `sip.tcp`.
    pub(super) fn sip(e: SipError) -> Self {
        match e {
            SipError::Bind {
                transport,
                addr,
                source,
            } => Self::bind(sip_key(transport), addr, source),
            e => StartError::Sip(e),
        }
    }

    /// The echo extension failed; a bind failure names `echo.listen`.
    pub(super) fn echo(e: SipError) -> Self {
        match e {
            SipError::Bind { addr, source, .. } => Self::bind("echo.listen", addr, source),
            e => StartError::Sip(e),
        }
    }

    /// A relay loop failed; a bind failure names `webrtc.port` (loop `i` binds
    /// `webrtc.port + i`), or `webrtc.bind` for an address this host lacks.
    pub(super) fn media(e: RelayError) -> Self {
        match e {
            RelayError::Bind { addr, source }
                if source.kind() == io::ErrorKind::AddrNotAvailable =>
            {
                Self::bind("webrtc.bind", addr, source)
            }
            RelayError::Bind { addr, source } => Self::bind("webrtc.port", addr, source),
            e => StartError::Media(e),
        }
    }
}

/// The config key of a SIP listener.
fn sip_key(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "sip.udp",
        Transport::Tcp => "sip.tcp",
        Transport::Tls => "sip.tls",
    }
}

/// The OS error in words an operator acts on.
fn bind_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => "address already in use".into(),
        io::ErrorKind::AddrNotAvailable => "address not available: no interface has it".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)".into()
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_port_in_use_names_the_key_and_the_address() {
        let source = io::Error::from(io::ErrorKind::AddrInUse);
        let e = StartError::sip(SipError::Bind {
            transport: Transport::Udp,
            addr: addr("0.0.0.0:5060"),
            source,
        });
        assert_eq!(
            e.to_string(),
            "sip.udp 0.0.0.0:5060: address already in use"
        );
    }

    #[test]
    fn each_listener_has_its_key() {
        let in_use = || io::Error::from(io::ErrorKind::AddrInUse);
        let tcp = StartError::sip(SipError::Bind {
            transport: Transport::Tcp,
            addr: addr("[::]:5060"),
            source: in_use(),
        });
        assert_eq!(tcp.to_string(), "sip.tcp [::]:5060: address already in use");
        let echo = StartError::echo(SipError::Bind {
            transport: Transport::Udp,
            addr: addr("127.0.0.1:5062"),
            source: in_use(),
        });
        assert!(echo.to_string().starts_with("echo.listen 127.0.0.1:5062: "));
        let relay = StartError::media(RelayError::Bind {
            addr: addr("0.0.0.0:10001"),
            source: in_use(),
        });
        assert!(relay.to_string().starts_with("webrtc.port 0.0.0.0:10001: "));
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let http = StartError::bind("http.listen", addr("0.0.0.0:443"), denied);
        assert!(http.to_string().contains("CAP_NET_BIND_SERVICE"), "{http}");
    }

    #[test]
    fn other_failures_keep_their_own_words() {
        let e = StartError::sip(SipError::Shutdown);
        assert_eq!(e.to_string(), "sip: shutting down");
    }
}
