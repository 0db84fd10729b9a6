//! One webhook POST over its own connection: TCP, TLS for `https` (rustls
//! with the host's CA store), and hyper's HTTP/1 client connection. No pool:
//! a record per call is too rare for a kept-alive connection to pay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::RecordsError;
use super::webhook::{Post, SIGNATURE_HEADER};
use crate::config::webhook_uri;

/// Where a webhook goes, taken apart once.
#[derive(Debug, Clone)]
pub(super) struct Target {
    https: bool,
    /// Host name or IP, without IPv6 brackets.
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: String,
    /// Path and query: the request target.
    path: String,
    /// `scheme://authority/path`, for logs.
    shown: String,
}

impl Target {
    /// Parses a `records.webhooks` URL.
    pub fn parse(url: &str) -> Result<Target, RecordsError> {
        let uri = webhook_uri(url).map_err(RecordsError::Url)?;
        let https = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        let authority = uri
            .authority()
            .ok_or_else(|| RecordsError::Url(format!("{url:?} names no host")))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let scheme = if https { "https" } else { "http" };
        Ok(Target {
            https,
            host: host.to_owned(),
            port,
            authority: authority.as_str().to_owned(),
            path: path.to_owned(),
            shown: format!("{scheme}://{authority}{}", uri.path()),
        })
    }

    /// Whether the URL is `https`.
    pub fn https(&self) -> bool {
        self.https
    }
}

/// A TLS client trusting `roots`, else the host's CA store.
pub(super) fn tls_connector(roots: Option<RootCertStore>) -> Result<TlsConnector, RecordsError> {
    let roots = roots.unwrap_or_else(host_roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(RecordsError::TlsConfig)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

fn host_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "reading the host's CA store");
    }
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            "records.webhooks: the host's CA store is empty, https webhooks will fail \
             (Debian: install ca-certificates)"
        );
    }
    roots
}

/// POSTs to one [`Target`].
pub(super) struct HttpPost {
    target: Target,
    tls: Option<TlsConnector>,
}

impl HttpPost {
    /// A poster for `target`; `tls` is used when it is `https`.
    pub fn new(target: Target, tls: Option<TlsConnector>) -> Self {
        HttpPost { target, tls }
    }

    fn request(
        &self,
        body: Bytes,
        signature: String,
    ) -> Result<Request<Full<Bytes>>, RecordsError> {
        let t = &self.target;
        Ok(Request::post(t.path.as_str())
            .header(HOST, t.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("siphon/", env!("CARGO_PKG_VERSION")))
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(body))?)
    }

    async fn connect(&self) -> Result<TcpStream, RecordsError> {
        let t = &self.target;
        let tcp = match t.host.parse::<IpAddr>() {
            Ok(ip) => TcpStream::connect(SocketAddr::new(ip, t.port)).await,
            Err(_) => TcpStream::connect((t.host.as_str(), t.port)).await,
        };
        let tcp = tcp.map_err(RecordsError::Connect)?;
        // The request goes out in one piece; no need to wait for an ACK.
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }
}

impl Post for HttpPost {
    async fn post(&self, body: Bytes, signature: String) -> Result<u16, RecordsError> {
        let request = self.request(body, signature)?;
        let tcp = self.connect().await?;
        match (&self.tls, self.target.https) {
            (Some(tls), true) => {
                let name = ServerName::try_from(self.target.host.clone())
                    .map_err(|e| RecordsError::Url(format!("{:?}: {e}", self.target.host)))?;
                let stream = tls.connect(name, tcp).await.map_err(RecordsError::Tls)?;
                exchange(TokioIo::new(stream), request).await
            }
            (None, true) => Err(RecordsError::Url(format!(
                "{}: no TLS client",
                self.target.shown
            ))),
            (_, false) => exchange(TokioIo::new(tcp), request).await,
        }
    }

    fn shown(&self) -> &str {
        &self.target.shown
    }
}

/// Sends `request` on a fresh HTTP/1 connection over `io` and returns the
/// answer's status; the connection is driven here and closed on return.
async fn exchange<T>(io: T, request: Request<Full<Bytes>>) -> Result<u16, RecordsError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let response = sender.send_request(request);
    tokio::pin!(response, connection);
    let mut connection_done = false;
    loop {
        tokio::select! {
            biased;
            answer = &mut response => return Ok(answer?.status().as_u16()),
            // A connection that ends fails the response too; wait for it.
            ended = &mut connection, if !connection_done => {
                ended?;
                connection_done = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_the_url_apart() {
        let t = Target::parse("https://hooks.example.com/siphon/calls?token=abc").unwrap();
        assert!(t.https());
        assert_eq!((t.host.as_str(), t.port), ("hooks.example.com", 443));
        assert_eq!(t.authority, "hooks.example.com");
        assert_eq!(t.path, "/siphon/calls?token=abc");
        assert_eq!(t.shown, "https://hooks.example.com/siphon/calls");

        let t = Target::parse("http://[::1]:8081").unwrap();
        assert!(!t.https());
        assert_eq!((t.host.as_str(), t.port), ("::1", 8081));
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("[::1]:8081", "/"));
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "ftp://example.com/",
            "example.com/x",
            "http://u:p@example.com/",
        ] {
            assert!(
                matches!(Target::parse(url), Err(RecordsError::Url(_))),
                "{url}"
            );
        }
    }
}
