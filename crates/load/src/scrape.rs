//! siphon's own figures, read from its `/metrics` over plain HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The families the load tool reads, summed over their labels.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// `siphon_media_packets_total` by flow (rtp and rtcp together).
    pub relayed: BTreeMap<String, f64>,
    /// `siphon_media_dropped_total`, every side and reason.
    pub dropped: f64,
    /// `siphon_media_dropped_total` by reason.
    pub dropped_by_reason: BTreeMap<String, f64>,
    /// `siphon_calls_active`, both directions.
    pub calls_active: f64,
}

impl Scrape {
    /// Add `other`'s figures to these (another instance of a cluster).
    pub fn add(&mut self, other: &Scrape) {
        for (flow, n) in &other.relayed {
            *self.relayed.entry(flow.clone()).or_default() += n;
        }
        for (reason, n) in &other.dropped_by_reason {
            *self.dropped_by_reason.entry(reason.clone()).or_default() += n;
        }
        self.dropped += other.dropped;
        self.calls_active += other.calls_active;
    }

    /// Every packet relayed, both flows.
    pub fn relayed_total(&self) -> f64 {
        self.relayed.values().sum()
    }
}

/// Why siphon's `/metrics` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No connection to siphon's HTTP listener.
    #[error("metrics at {addr}: {source}")]
    Connect {
        /// The listener's address.
        addr: SocketAddr,
        /// Why the connection failed.
        source: std::io::Error,
    },
    /// The request could not be written.
    #[error("metrics request: {0}")]
    Request(#[source] std::io::Error),
    /// The response could not be read.
    #[error("metrics response: {0}")]
    Response(#[source] std::io::Error),
    /// The response has no header/body separator.
    #[error("metrics: no HTTP body")]
    NoBody,
    /// Any status but 200, by its status line.
    #[error("metrics: {0}")]
    Status(String),
}

/// GET `/metrics` from `addr` and read it.
pub async fn fetch(addr: SocketAddr) -> Result<Scrape, ScrapeError> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|source| ScrapeError::Connect { addr, source })?;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(ScrapeError::Request)?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)
        .await
        .map_err(ScrapeError::Response)?;
    let text = String::from_utf8_lossy(&body);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or(ScrapeError::NoBody)?;
    if !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(ScrapeError::Status(status.to_owned()));
    }
    Ok(parse(rest))
}

/// Read the families from Prometheus text (chunked framing lines, if any,
/// do not parse as samples and are skipped).
pub fn parse(text: &str) -> Scrape {
    let mut out = Scrape::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        match name {
            "siphon_media_packets_total" => {
                *out.relayed.entry(label(labels, "flow")).or_default() += value;
            }
            "siphon_media_dropped_total" => {
                out.dropped += value;
                *out.dropped_by_reason
                    .entry(label(labels, "reason"))
                    .or_default() += value;
            }
            "siphon_calls_active" => out.calls_active += value,
            _ => {}
        }
    }
    out
}

fn label(labels: &str, key: &str) -> String {
    labels
        .trim_end_matches('}')
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_summed_over_labels() {
        let text = "# HELP x\n\
siphon_media_packets_total{flow=\"webrtc_to_sip\",kind=\"rtp\"} 100\n\
siphon_media_packets_total{flow=\"webrtc_to_sip\",kind=\"rtcp\"} 2\n\
siphon_media_packets_total{flow=\"sip_to_webrtc\",kind=\"rtp\"} 99\n\
siphon_media_dropped_total{reason=\"srtp_auth\",side=\"webrtc\"} 7\n\
siphon_media_dropped_total{reason=\"held\",side=\"relay\"} 1\n\
siphon_calls_active{direction=\"webrtc_to_sip\"} 3\n\
siphon_calls_total{direction=\"webrtc_to_sip\",outcome=\"answered\"} 9\n";
        let s = parse(text);
        assert_eq!(s.relayed["webrtc_to_sip"], 102.0);
        assert_eq!(s.relayed_total(), 201.0);
        assert_eq!(s.dropped, 8.0);
        assert_eq!(s.dropped_by_reason["srtp_auth"], 7.0);
        assert_eq!(s.calls_active, 3.0);
    }
}
