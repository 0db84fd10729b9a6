//! Why a signaling socket ended: the close frame the client gets, and the
//! label `siphon_ws_closed_total` counts it under.

use axum::extract::ws::{close_code, CloseFrame};
use tungstenite::error::{CapacityError, Error as WsError};

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client closed the socket, or the connection went away (a read
    /// or a write failed).
    Client,
    /// A message over the transport cap: refused at its frame header,
    /// before its payload is read.
    TooLarge {
        /// The size the frame header announced.
        size: usize,
        /// The cap it exceeds.
        max: usize,
    },
    /// The client broke the WebSocket protocol (unmasked or bad frames).
    Protocol,
    /// A text frame that is not UTF-8.
    InvalidText,
    /// The token was missing or refused.
    Unauthorized,
    /// siphon is exiting.
    Shutdown,
    /// siphon is draining and the session had no call left: the client is
    /// to reconnect, and the balancer sends it to another instance.
    Moved,
}

/// The reason of the close frame that asks a client to move.
pub const MOVED: &str = "siphon is draining: reconnect";

impl Ending {
    /// The ending a failed read stands for.
    pub fn of_read_error(error: &axum::Error) -> Ending {
        let source = std::error::Error::source(error);
        match source.and_then(|e| e.downcast_ref::<WsError>()) {
            Some(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
                Ending::TooLarge {
                    size: *size,
                    max: *max_size,
                }
            }
            Some(WsError::Protocol(_) | WsError::Capacity(_)) => Ending::Protocol,
            Some(WsError::Utf8(_)) => Ending::InvalidText,
            _ => Ending::Client,
        }
    }

    /// The close frame owed to the client, when the session still has
    /// to send one (shutdown and refusals send their own).
    pub fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Ending::TooLarge { size, max } => (
                close_code::SIZE,
                format!("message of {size} bytes exceeds {max}"),
            ),
            Ending::Protocol => (close_code::PROTOCOL, "protocol error".to_owned()),
            Ending::InvalidText => (close_code::INVALID, "text frame is not UTF-8".to_owned()),
            Ending::Moved => (close_code::RESTART, MOVED.to_owned()),
            _ => return None,
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }

    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Ending::Client => "client",
            Ending::TooLarge { .. } => "too_large",
            Ending::Protocol | Ending::InvalidText => "protocol",
            Ending::Unauthorized => "unauthorized",
            Ending::Shutdown => "shutdown",
            Ending::Moved => "moved",
        }
    }
}

#[cfg(test)]
mod tests {
    use tungstenite::error::ProtocolError;

    use super::*;

    fn ending(e: WsError) -> Ending {
        Ending::of_read_error(&axum::Error::new(e))
    }

    #[test]
    fn an_oversize_frame_gets_1009_naming_both_sizes() {
        let too_long = CapacityError::MessageTooLong {
            size: 10_000_000,
            max_size: 131_072,
        };
        let e = ending(WsError::Capacity(too_long));
        assert_eq!(e.label(), "too_large");
        let frame = e.close_frame().unwrap();
        assert_eq!(frame.code, 1009);
        assert_eq!(
            frame.reason.as_str(),
            "message of 10000000 bytes exceeds 131072"
        );
    }

    #[test]
    fn protocol_faults_get_1002_and_a_lost_peer_nothing() {
        let e = ending(WsError::Protocol(ProtocolError::UnmaskedFrameFromClient));
        assert_eq!(
            (e.label(), e.close_frame().map(|f| f.code)),
            ("protocol", Some(1002))
        );
        let gone = ending(WsError::ConnectionClosed);
        assert_eq!((gone.label(), gone.close_frame()), ("client", None));
        let text = ending(WsError::Utf8("bad".into()));
        assert_eq!(text.close_frame().map(|f| f.code), Some(1007));
        let io = ending(WsError::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(io, Ending::Client);
    }

    #[test]
    fn a_move_gets_1012_service_restart() {
        let frame = Ending::Moved.close_frame().unwrap();
        assert_eq!((frame.code, frame.reason.as_str()), (1012, MOVED));
        assert_eq!(Ending::Moved.label(), "moved");
    }
}
