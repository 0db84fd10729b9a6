//! A WebSocket client for siphon's JSON signaling protocol, written from the
//! protocol document rather than from siphon's own message types.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::BoxError;

/// How long the server may take to greet a new connection.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(5);

/// A byte stream a WebSocket runs over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One signaling connection (`/ws`).
pub struct Signaling {
    ws: WebSocketStream<Box<dyn Io>>,
}

impl Signaling {
    /// Connects and checks the server's `welcome` (protocol version 1).
    pub async fn connect(url: &str) -> Result<Self, BoxError> {
        let request = siphon_testkit::ws::ws_request(url)?;
        let authority = request
            .uri()
            .authority()
            .ok_or("no host in url")?
            .to_string();
        let tcp = TcpStream::connect(authority).await?;
        Self::over(url, Box::new(tcp)).await
    }

    /// Like `connect`, over a stream the caller opened (a TLS one for `wss:`).
    pub async fn over(url: &str, stream: Box<dyn Io>) -> Result<Self, BoxError> {
        let request = siphon_testkit::ws::ws_request(url)?;
        let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
        let mut signaling = Self { ws };
        let welcome = signaling.recv(WELCOME_TIMEOUT).await?;
        if welcome["type"] != "welcome" || welcome["version"] != 1 {
            return Err(format!("expected welcome version 1, got {welcome}").into());
        }
        Ok(signaling)
    }

    /// Sends one message as a text frame.
    pub async fn send(&mut self, msg: Value) -> Result<(), BoxError> {
        self.ws.send(Message::text(msg.to_string())).await?;
        Ok(())
    }

    /// Sends a raw text frame, for tests of malformed input.
    pub async fn send_text(&mut self, text: &str) -> Result<(), BoxError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next JSON message; control frames are skipped, a close is an error.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Value, BoxError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| format!("no signaling message within {timeout:?}"))?;
            match frame.ok_or("signaling socket closed")?? {
                Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
                Message::Close(Some(frame)) => {
                    let (code, reason) = (u16::from(frame.code), frame.reason);
                    return Err(format!("server closed: {code} {reason}").into());
                }
                Message::Close(None) => return Err("server closed: no frame".into()),
                Message::Binary(_) => return Err("unexpected binary frame".into()),
                _ => continue,
            }
        }
    }

    /// Skips messages until one of type `ty` arrives. A `hangup` or `error` that was
    /// not asked for ends the wait with the message in the error text.
    pub async fn recv_type(&mut self, ty: &str, timeout: Duration) -> Result<Value, BoxError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self
                .recv(left)
                .await
                .map_err(|e| format!("waiting for {ty}: {e}"))?;
            match msg["type"].as_str() {
                Some(t) if t == ty => return Ok(msg),
                Some("hangup" | "error") => {
                    return Err(format!("waiting for {ty}, got {msg}").into());
                }
                _ => continue,
            }
        }
    }

    /// Closes the socket, which ends every call it carried.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
