//! One lightweight browser of the load tool: places a call over `/ws`,
//! connects ICE and DTLS-SRTP, then hands its media to the media thread
//! (`engine`: G.711 at 50 packets/s with a send stamp in each payload, and
//! what comes back counted) and follows the signaling until told to stop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::engine;
use super::stamp::{self, Stamps};
use super::stats::Counters;
use siphon::media::rx_time;
use siphon_testkit::browser::{self as peer, Answer, ClientIdentity, Offer, Srtp};

/// G.711 at 8 kHz: 20 ms is 160 samples of one byte.
const PAYLOAD: usize = 160;
const SIGNALING_TIMEOUT: Duration = Duration::from_secs(30);
const HANGUP_TIMEOUT: Duration = Duration::from_secs(5);

mod error;

pub use error::ClientError;

/// A browser's signaling socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What every call of a run shares.
pub struct Shared {
    /// siphon's WebSocket URLs (with `?token=` where siphon wants one): one,
    /// or an instance's each in a cluster, taken round robin by call.
    pub ws_urls: Vec<String>,
    /// Where calls go, round robin.
    pub destinations: Vec<String>,
    /// The browsers' certificate (one for all: setup stays cheap).
    pub identity: ClientIdentity,
    /// Every call's packet counts and round trips.
    pub counters: Counters,
    /// Send RTP (false: calls stay up silent, consent checks only).
    pub media: bool,
    /// Established calls' media sockets and siphon's address for each,
    /// for the flood of forged SRTP.
    pub legs: Mutex<Vec<(Arc<std::net::UdpSocket>, SocketAddr)>>,
}

impl Shared {
    /// The WebSocket URL call `index` connects to.
    pub fn ws_url(&self, index: usize) -> &str {
        &self.ws_urls[index % self.ws_urls.len()]
    }
}

/// Setup timings of one call.
#[derive(Debug, Clone)]
pub struct SetupTimes {
    /// From sending `call` to receiving `answered`.
    pub answered: Duration,
    /// From sending `call` to SRTP keys (ICE nominated, DTLS done).
    pub ready: Duration,
    /// The SRTP profile DTLS chose.
    pub profile: &'static str,
}

/// How a call that was set up ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// We hung up; siphon's `hangup` code (`None`: no answer in time).
    HungUp(Option<u64>),
    /// siphon ended the call first (its message, or the socket's error).
    Dropped(String),
}

/// Run call `index`: report its setup on `ready` as soon as known, stream
/// until `stop` turns true, hang up. `None` when the setup failed.
pub async fn run(
    shared: Arc<Shared>,
    index: usize,
    mut stop: watch::Receiver<bool>,
    ready: mpsc::UnboundedSender<Result<SetupTimes, ClientError>>,
) -> Option<End> {
    let to = &shared.destinations[index % shared.destinations.len()];
    let (leg, times) = match set_up(shared.ws_url(index), to, &shared.identity, index).await {
        Ok(up) => up,
        Err(e) => {
            let _ = ready.send(Err(e));
            return None;
        }
    };
    let _ = ready.send(Ok(times));
    let Leg {
        mut ws,
        sock,
        media,
        index,
    } = leg;
    let target = media.target();
    // The media thread streams and counts; this task keeps the signaling.
    let gone = Arc::new(AtomicBool::new(false));
    let handed = sock
        .into_std()
        .and_then(|sock| engine::add_browser(media, sock, shared.clone(), gone.clone()));
    let end = match handed {
        Ok(flood) => {
            if let Ok(mut legs) = shared.legs.lock() {
                legs.push((Arc::new(flood), target));
            }
            signaling(&mut ws, &mut stop).await
        }
        Err(e) => Some(format!("media: {e}")),
    };
    gone.store(true, Relaxed);
    if let Some(dropped) = end {
        shared.counters.dropped_calls.fetch_add(1, Relaxed);
        return Some(End::Dropped(dropped));
    }
    Some(End::HungUp(hang_up(ws, index).await))
}

/// A connected call: signaling socket, media socket, keys.
pub struct Leg {
    /// The call's signaling socket.
    pub ws: Ws,
    /// Its media socket.
    pub sock: UdpSocket,
    /// Its media's keys and state.
    pub media: Media,
    index: usize,
}

/// A keyed call's media: what the browser sends and how it opens what
/// comes back.
pub struct Media {
    offer: Offer,
    answer: Answer,
    srtp: Srtp,
    ssrc: u32,
    sent: u32,
    seq: u16,
}

/// What a datagram from siphon turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram {
    /// STUN (consent answers) or anything not RTP: nothing to count.
    Other,
    /// RTP that failed SRTP or did not carry our stamp.
    Bad,
    /// One of our packets back, with its stamps.
    Echo(Stamps),
}

/// Place call `index` to `to` over `ws_url` and connect its media.
pub async fn set_up(
    ws_url: &str,
    to: &str,
    identity: &ClientIdentity,
    index: usize,
) -> Result<(Leg, SetupTimes), ClientError> {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(ClientError::UdpBind)?;
    rx_time::enable(&sock).map_err(ClientError::Timestamps)?;
    let local = sock.local_addr().map_err(ClientError::LocalAddr)?;
    let mut ws = connect_ws(ws_url).await?;
    expect_type(&mut ws, "welcome").await?;
    let ssrc = rand::random::<u32>();
    let offer = peer::offer(identity, local, ssrc);
    let started = Instant::now();
    let call = json!({"type": "call", "call_id": format!("c{index}"), "to": to, "sdp": offer.sdp});
    send_json(&mut ws, &call).await?;
    let answered = expect_type(&mut ws, "answered").await?;
    let answered_after = started.elapsed();
    let sdp = answered["sdp"].as_str().ok_or(ClientError::NoSdp)?;
    let answer = peer::parse_answer(sdp)?;
    let deadline = started + SIGNALING_TIMEOUT;
    peer::connect_ice(&sock, &offer, &answer, deadline).await?;
    let srtp = peer::connect_dtls(&sock, identity, &answer, deadline).await?;
    let times = SetupTimes {
        answered: answered_after,
        ready: started.elapsed(),
        profile: srtp.profile,
    };
    let media = Media {
        offer,
        answer,
        srtp,
        ssrc,
        sent: 0,
        seq: rand::random(),
    };
    let leg = Leg {
        ws,
        sock,
        media,
        index,
    };
    Ok((leg, times))
}

pub use siphon_testkit::ws::{ws_request, WsRequest};

/// Open siphon's WebSocket with small buffers.
pub async fn connect_ws(url: &str) -> Result<Ws, ClientError> {
    // Small buffers: a thousand browsers' memory is not what is measured.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let request = ws_request(url).map_err(ClientError::WsConnect)?;
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(ClientError::WsConnect)?;
    Ok(ws)
}

/// Send one JSON message.
pub async fn send_json(ws: &mut Ws, v: &Value) -> Result<(), ClientError> {
    ws.send(WsMessage::text(v.to_string()))
        .await
        .map_err(ClientError::WsSend)
}

/// Next text frame as JSON, or an error when the socket ends.
pub async fn next_json(ws: &mut Ws) -> Result<Value, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                return serde_json::from_str(&t).map_err(|source| ClientError::BadJson {
                    text: t.to_string(),
                    source,
                })
            }
            Some(Ok(WsMessage::Close(_))) | None => return Err(ClientError::WsClosed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ClientError::Ws(e)),
        }
    }
}

/// Waits for a message of type `want`; `hangup` or `error` first is a failure.
pub async fn expect_type(ws: &mut Ws, want: &str) -> Result<Value, ClientError> {
    let wait = async {
        loop {
            let got = next_json(ws).await?;
            match got["type"].as_str() {
                Some(t) if t == want => return Ok(got),
                Some("hangup" | "error") => {
                    let want = want.to_owned();
                    return Err(ClientError::Refused { want, got });
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(SIGNALING_TIMEOUT, wait)
        .await
        .map_err(|_| ClientError::Timeout {
            want: want.to_owned(),
        })?
}

impl Leg {
    /// Sends `hangup` and waits for siphon's reply; returns its code.
    pub async fn hang_up(self) -> Option<u64> {
        hang_up(self.ws, self.index).await
    }

    /// The next packet, as [`Media::next_packet`].
    pub fn next_packet(&mut self) -> Option<(impl AsRef<[u8]> + Send, u64)> {
        self.media.next_packet()
    }

    /// A consent check, as [`Media::consent_check`].
    pub fn consent_check(&self) -> Vec<u8> {
        self.media.consent_check()
    }

    /// Classify a datagram, as [`Media::open`].
    pub fn open(&mut self, data: &[u8]) -> Datagram {
        self.media.open(data)
    }

    /// Send `data` to siphon's candidate (for a leg driven by its own
    /// task, as the in-process bench's are).
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> bool {
        let to = self.media.target();
        self.sock.send_to(data.as_ref(), to).await.is_ok()
    }
}

impl Media {
    /// siphon's candidate, where the media goes.
    pub fn target(&self) -> SocketAddr {
        self.answer.candidate
    }

    /// The next G.711 packet, stamped with the time (µs since the UNIX
    /// epoch) and SRTP-protected, and its stamp; `None` if protection failed.
    pub fn next_packet(&mut self) -> Option<(impl AsRef<[u8]> + Send, u64)> {
        let mut pkt = [0xffu8; 12 + PAYLOAD];
        pkt[0] = 0x80;
        pkt[1] = 0; // PCMU
        pkt[2..4].copy_from_slice(&self.seq.to_be_bytes());
        let ts = self.sent.wrapping_mul(PAYLOAD as u32);
        pkt[4..8].copy_from_slice(&ts.to_be_bytes());
        pkt[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let sent_at = stamp::now_us();
        stamp::write_sent(&mut pkt[12..], sent_at);
        self.seq = self.seq.wrapping_add(1);
        self.sent = self.sent.wrapping_add(1);
        let srtp = self.srtp.tx.encrypt_rtp(&pkt).ok()?;
        Some((srtp, sent_at))
    }

    /// A consent-freshness check (RFC 7675), as browsers send every ~5 s.
    pub fn consent_check(&self) -> Vec<u8> {
        peer::binding_request(&self.offer, &self.answer, false)
    }

    /// Classify (and decrypt) a datagram from siphon.
    pub fn open(&mut self, data: &[u8]) -> Datagram {
        // STUN answers to consent checks need nothing; only RTP is counted.
        if data.is_empty() || peer::is_stun(data[0]) || !(128..192).contains(&data[0]) {
            return Datagram::Other;
        }
        let Ok(plain) = self.srtp.rx.decrypt_rtp(data) else {
            return Datagram::Bad;
        };
        stamp::read(&plain).map_or(Datagram::Bad, Datagram::Echo)
    }
}

/// Sends `hangup` for call `index` and waits for siphon's reply; returns
/// its code.
async fn hang_up(mut ws: Ws, index: usize) -> Option<u64> {
    let msg = json!({"type": "hangup", "call_id": format!("c{index}")});
    send_json(&mut ws, &msg).await.ok()?;
    let reply = tokio::time::timeout(HANGUP_TIMEOUT, async {
        loop {
            let v = next_json(&mut ws).await.ok()?;
            if v["type"] == "hangup" {
                return v["code"].as_u64();
            }
        }
    })
    .await
    .ok()
    .flatten();
    let _ = ws.close(None).await;
    reply
}

/// Follow the signaling until `stop`; `Some` if siphon hung up first.
async fn signaling(ws: &mut Ws, stop: &mut watch::Receiver<bool>) -> Option<String> {
    loop {
        tokio::select! {
            msg = next_json(ws) => match msg {
                Ok(v) if v["type"] == "hangup" => return Some(v.to_string()),
                Ok(_) => {}
                Err(e) => return Some(e.to_string()),
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return None;
                }
            }
        }
    }
}
