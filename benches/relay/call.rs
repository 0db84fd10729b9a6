//! One lightweight browser: places a call over `/ws`, connects ICE and
//! DTLS-SRTP, then sends G.711 packets at 50 pps and counts what the echo
//! sends back, until the orchestrator moves the phase on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::peer::{self, Answer, ClientIdentity, Offer, Srtp};

/// G.711 at 8 kHz: 20 ms is 160 samples of one byte.
const PAYLOAD: usize = 160;
const PTIME: Duration = Duration::from_millis(20);
/// Browsers refresh consent every 5 s or so (RFC 7675).
const CONSENT_EVERY: Duration = Duration::from_secs(5);
const SIGNALING_TIMEOUT: Duration = Duration::from_secs(30);
const HANGUP_TIMEOUT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the orchestrator tells every call to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Set up, then wait.
    Setup,
    /// Send media from this instant on.
    Media(Instant),
    /// Stop sending; keep counting what is still in flight.
    Drain,
    /// Hang up and report.
    Hangup,
}

/// What every call shares.
pub struct Shared {
    pub ws_url: String,
    /// Where calls go, round robin (one entry per echo UAS).
    pub destinations: Vec<String>,
    pub identity: ClientIdentity,
    /// Caps how many calls are being set up at once.
    pub setup_gate: Semaphore,
    /// Spreads the calls' send instants over one packet time.
    pub calls: usize,
    /// Send timestamps in payloads are microseconds since this instant.
    pub epoch: Instant,
}

/// Setup timings of one call.
#[derive(Debug, Clone)]
pub struct SetupTimes {
    /// From sending `call` to receiving `answered`.
    pub answered: Duration,
    /// From sending `call` to SRTP keys (ICE nominated, DTLS done).
    pub ready: Duration,
    pub profile: &'static str,
}

/// Everything one call measured.
#[derive(Debug, Default)]
pub struct CallReport {
    pub setup: Option<SetupTimes>,
    pub setup_error: Option<String>,
    pub sent: u64,
    pub received: u64,
    /// Packets that failed SRTP or did not carry our payload.
    pub bad: u64,
    /// Echo round trips in microseconds.
    pub rtt_us: Vec<u32>,
    /// A `hangup` from siphon before we hung up: (code, reason).
    pub dropped: Option<String>,
    /// The code of the `hangup` answering ours.
    pub hangup_code: Option<u64>,
}

/// Runs call `index` to its end; reports setup on `ready` as soon as known.
pub async fn run(
    shared: Arc<Shared>,
    index: usize,
    mut phase: watch::Receiver<Phase>,
    ready: mpsc::UnboundedSender<Result<SetupTimes, String>>,
) -> CallReport {
    let mut report = CallReport::default();
    let setup = {
        let _permit = shared.setup_gate.acquire().await;
        set_up(&shared, index).await
    };
    let mut leg = match setup {
        Ok((leg, times)) => {
            let _ = ready.send(Ok(times.clone()));
            report.setup = Some(times);
            leg
        }
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            report.setup_error = Some(e);
            return report;
        }
    };
    let stagger = PTIME * index as u32 / shared.calls.max(1) as u32;
    leg.media(&shared, stagger, &mut phase, &mut report).await;
    report.hangup_code = leg.hang_up(index).await;
    report
}

/// A connected call.
struct Leg {
    ws: Ws,
    sock: UdpSocket,
    offer: Offer,
    answer: Answer,
    srtp: Srtp,
    ssrc: u32,
}

async fn set_up(shared: &Shared, index: usize) -> Result<(Leg, SetupTimes), String> {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("udp bind: {e}"))?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let mut ws = connect_ws(&shared.ws_url).await?;
    expect_type(&mut ws, "welcome").await?;
    let ssrc = rand::random::<u32>();
    let offer = peer::offer(&shared.identity, local, ssrc);
    let to = &shared.destinations[index % shared.destinations.len()];
    let started = Instant::now();
    let call = json!({"type": "call", "call_id": format!("c{index}"), "to": to, "sdp": offer.sdp});
    send_json(&mut ws, &call).await?;
    let answered = expect_type(&mut ws, "answered").await?;
    let answered_after = started.elapsed();
    let sdp = answered["sdp"].as_str().ok_or("answered without sdp")?;
    let answer = peer::parse_answer(sdp)?;
    let deadline = started + SIGNALING_TIMEOUT;
    peer::connect_ice(&sock, &offer, &answer, deadline).await?;
    let srtp = peer::connect_dtls(&sock, &shared.identity, &answer, deadline).await?;
    let times = SetupTimes {
        answered: answered_after,
        ready: started.elapsed(),
        profile: srtp.profile,
    };
    let leg = Leg {
        ws,
        sock,
        offer,
        answer,
        srtp,
        ssrc,
    };
    Ok((leg, times))
}

async fn connect_ws(url: &str) -> Result<Ws, String> {
    // Small buffers: the browser's memory is not what this bench measures.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| format!("ws connect: {e}"))?;
    Ok(ws)
}

async fn send_json(ws: &mut Ws, v: &Value) -> Result<(), String> {
    ws.send(WsMessage::text(v.to_string()))
        .await
        .map_err(|e| format!("ws send: {e}"))
}

/// Next text frame as JSON, or an error when the socket ends.
async fn next_json(ws: &mut Ws) -> Result<Value, String> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                return serde_json::from_str(&t).map_err(|e| format!("bad json {t}: {e}"))
            }
            Some(Ok(WsMessage::Close(_))) | None => return Err("ws closed".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("ws: {e}")),
        }
    }
}

/// Waits for a message of type `want`; `hangup` or `error` first is a failure.
async fn expect_type(ws: &mut Ws, want: &str) -> Result<Value, String> {
    let wait = async {
        loop {
            let v = next_json(ws).await?;
            match v["type"].as_str() {
                Some(t) if t == want => return Ok(v),
                Some("hangup" | "error") => return Err(format!("waiting for {want}: {v}")),
                _ => {}
            }
        }
    };
    tokio::time::timeout(SIGNALING_TIMEOUT, wait)
        .await
        .map_err(|_| format!("no {want} within {SIGNALING_TIMEOUT:?}"))?
}

impl Leg {
    /// Sends and receives until the phase reaches `Hangup` (or siphon hangs up).
    async fn media(
        &mut self,
        shared: &Shared,
        stagger: Duration,
        phase: &mut watch::Receiver<Phase>,
        report: &mut CallReport,
    ) {
        let start = loop {
            match *phase.borrow_and_update() {
                Phase::Setup => {}
                Phase::Media(at) => break at,
                Phase::Drain | Phase::Hangup => return,
            }
            if phase.changed().await.is_err() {
                return;
            }
        };
        let mut ticker = tokio::time::interval_at((start + stagger).into(), PTIME);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut consent = tokio::time::interval(CONSENT_EVERY);
        let mut sending = true;
        let mut seq: u16 = rand::random();
        let mut buf = vec![0u8; 2048];
        loop {
            tokio::select! {
                _ = ticker.tick(), if sending => {
                    self.send_rtp(shared, seq, report).await;
                    seq = seq.wrapping_add(1);
                }
                r = self.sock.recv_from(&mut buf) => {
                    if let Ok((n, _)) = r {
                        self.on_datagram(shared, &buf[..n], report);
                    }
                }
                _ = consent.tick() => {
                    let check = peer::binding_request(&self.offer, &self.answer, false);
                    let _ = self.sock.send_to(&check, self.answer.candidate).await;
                }
                msg = next_json(&mut self.ws) => {
                    report.dropped = Some(match msg {
                        Ok(v) if v["type"] == "hangup" => v.to_string(),
                        Ok(_) => continue,
                        Err(e) => e,
                    });
                    return;
                }
                changed = phase.changed() => {
                    let now = *phase.borrow_and_update();
                    sending = matches!(now, Phase::Media(_));
                    if changed.is_err() || now == Phase::Hangup {
                        return;
                    }
                }
            }
        }
    }

    async fn send_rtp(&mut self, shared: &Shared, seq: u16, report: &mut CallReport) {
        let mut pkt = [0xffu8; 12 + PAYLOAD];
        pkt[0] = 0x80;
        pkt[1] = 0; // PCMU
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        let ts = (report.sent as u32).wrapping_mul(PAYLOAD as u32);
        pkt[4..8].copy_from_slice(&ts.to_be_bytes());
        pkt[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let sent_at = shared.epoch.elapsed().as_micros() as u64;
        pkt[12..20].copy_from_slice(&MAGIC.to_be_bytes());
        pkt[20..28].copy_from_slice(&sent_at.to_be_bytes());
        let Ok(srtp) = self.srtp.tx.encrypt_rtp(&pkt) else {
            return;
        };
        if self
            .sock
            .send_to(&srtp, self.answer.candidate)
            .await
            .is_ok()
        {
            report.sent += 1;
        }
    }

    fn on_datagram(&mut self, shared: &Shared, data: &[u8], report: &mut CallReport) {
        // STUN answers to consent checks need nothing; only RTP is counted.
        if data.is_empty() || peer::is_stun(data[0]) || !(128..192).contains(&data[0]) {
            return;
        }
        let Ok(plain) = self.srtp.rx.decrypt_rtp(data) else {
            report.bad += 1;
            return;
        };
        match payload_stamp(&plain) {
            Some(sent_at) => {
                report.received += 1;
                let now = shared.epoch.elapsed().as_micros() as u64;
                report
                    .rtt_us
                    .push(now.saturating_sub(sent_at).min(u32::MAX as u64) as u32);
            }
            None => report.bad += 1,
        }
    }

    /// Sends `hangup` and waits for siphon's reply; returns its code.
    async fn hang_up(mut self, index: usize) -> Option<u64> {
        let msg = json!({"type": "hangup", "call_id": format!("c{index}")});
        send_json(&mut self.ws, &msg).await.ok()?;
        let reply = tokio::time::timeout(HANGUP_TIMEOUT, async {
            loop {
                let v = next_json(&mut self.ws).await.ok()?;
                if v["type"] == "hangup" {
                    return v["code"].as_u64();
                }
            }
        })
        .await
        .ok()
        .flatten();
        let _ = self.ws.close(None).await;
        reply
    }
}

/// Marks our payloads so that anything else is counted as bad.
const MAGIC: u64 = 0x5349_5048_4f4e_2142;

/// The send timestamp in an echoed packet, if the payload is ours.
fn payload_stamp(rtp: &[u8]) -> Option<u64> {
    if rtp.len() < 12 {
        return None;
    }
    let mut at = 12 + 4 * (rtp[0] & 0x0f) as usize;
    if rtp[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*rtp.get(at + 2)?, *rtp.get(at + 3)?]) as usize;
        at += 4 + 4 * words;
    }
    let p = rtp.get(at..at + 16)?;
    let magic = u64::from_be_bytes(p[..8].try_into().ok()?);
    (magic == MAGIC).then(|| u64::from_be_bytes(p[8..16].try_into().unwrap_or_default()))
}
