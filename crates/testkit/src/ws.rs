//! The WebSocket side of a browser.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A WebSocket handshake request.
pub type WsRequest = tokio_tungstenite::tungstenite::handshake::client::Request;

/// A WebSocket request for `url` with the Origin of siphon's own page, as
/// the web phone's browser sends it: siphon refuses an upgrade without
/// Origin unless tokens are required.
pub fn ws_request(url: &str) -> Result<WsRequest, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    let scheme = if url.starts_with("wss:") {
        "https"
    } else {
        "http"
    };
    let origin = request
        .uri()
        .authority()
        .and_then(|a| format!("{scheme}://{a}").parse().ok());
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin);
    }
    Ok(request)
}
