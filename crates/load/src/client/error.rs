//! Why a browser of the load tool failed.

use serde_json::Value;
use siphon_testkit::browser::BrowserError;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::SIGNALING_TIMEOUT;

/// Why a browser's call was not set up, or its signaling ended; the report
/// lists the text.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The media socket could not be bound.
    #[error("udp bind: {0}")]
    UdpBind(#[source] std::io::Error),
    /// Kernel receive times could not be turned on.
    #[error("SO_TIMESTAMPNS: {0}")]
    Timestamps(#[source] std::io::Error),
    /// The media socket has no local address.
    #[error(transparent)]
    LocalAddr(std::io::Error),
    /// The WebSocket could not be opened.
    #[error("ws connect: {0}")]
    WsConnect(#[source] WsError),
    /// A message could not be sent.
    #[error("ws send: {0}")]
    WsSend(#[source] WsError),
    /// The socket failed while reading.
    #[error("ws: {0}")]
    Ws(#[source] WsError),
    /// The socket was closed.
    #[error("ws closed")]
    WsClosed,
    /// A text frame that is not JSON.
    #[error("bad json {text}: {source}")]
    BadJson {
        /// The frame.
        text: String,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// `hangup` or `error` came while waiting for another message.
    #[error("waiting for {want}: {got}")]
    Refused {
        /// The message type waited for.
        want: String,
        /// What came instead.
        got: Value,
    },
    /// The awaited message did not come in time.
    #[error("no {want} within {SIGNALING_TIMEOUT:?}")]
    Timeout {
        /// The message type waited for.
        want: String,
    },
    /// `answered` without an SDP.
    #[error("answered without sdp")]
    NoSdp,
    /// ICE or DTLS-SRTP failed, or siphon's answer lacks what they need.
    #[error(transparent)]
    Browser(#[from] BrowserError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_before() {
        let refused = ClientError::Refused {
            want: "answered".into(),
            got: serde_json::json!({"type": "hangup"}),
        };
        assert_eq!(
            refused.to_string(),
            r#"waiting for answered: {"type":"hangup"}"#
        );
        let late = ClientError::Timeout {
            want: "welcome".into(),
        };
        assert_eq!(late.to_string(), "no welcome within 30s");
        let browser = ClientError::from(BrowserError::IceTimeout);
        assert_eq!(
            browser.to_string(),
            "ICE: no binding success before the deadline"
        );
    }
}
