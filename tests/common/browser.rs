//! A browser stand-in: one WebRTC peer built on the full-stack `webrtc` crate.
//!
//! It shares no code with siphon on purpose: an independent implementation of
//! ICE, DTLS-SRTP and SDP is what makes an end-to-end test mean something.

use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_PCMA, MIME_TYPE_PCMU, MIME_TYPE_TELEPHONE_EVENT,
};
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{mpsc, watch, Mutex};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

use super::BoxError;

/// How long ICE gathering may take; host candidates on loopback are immediate.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// Received packets queued before the stand-in starts dropping (and a test notices).
const RECEIVE_QUEUE: usize = 4096;
/// Payload type Chrome uses for telephone-event/8000.
const TELEPHONE_EVENT_PT: u8 = 126;

/// An audio codec the stand-in can offer, with the payload types Chrome uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// opus/48000/2 on payload type 111.
    Opus,
    /// PCMU/8000 on payload type 0.
    Pcmu,
    /// PCMA/8000 on payload type 8.
    Pcma,
}

impl Codec {
    fn parameters(self) -> RTCRtpCodecParameters {
        let (mime, clock_rate, channels, fmtp, payload_type) = match self {
            Codec::Opus => (MIME_TYPE_OPUS, 48000, 2, "minptime=10;useinbandfec=1", 111),
            Codec::Pcmu => (MIME_TYPE_PCMU, 8000, 0, "", 0),
            Codec::Pcma => (MIME_TYPE_PCMA, 8000, 0, "", 8),
        };
        codec_parameters(mime, clock_rate, channels, fmtp, payload_type)
    }
}

fn codec_parameters(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    fmtp: &str,
    payload_type: u8,
) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type,
    }
}

/// One RTP packet received on the remote track.
#[derive(Debug, Clone)]
pub struct RtpIn {
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// Sequence number and timestamp of the next packet sent.
struct SendState {
    seq: u16,
    timestamp: u32,
}

/// One peer connection with one sendrecv audio transceiver.
pub struct Browser {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    send_state: Mutex<SendState>,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathering: watch::Receiver<RTCIceGatheringState>,
    received: Mutex<mpsc::Receiver<RtpIn>>,
    candidates: Mutex<mpsc::UnboundedReceiver<serde_json::Value>>,
}

/// Turns the crate's callbacks into channels the `Browser` methods wait on.
struct Events {
    state: watch::Sender<RTCPeerConnectionState>,
    gathering: watch::Sender<RTCIceGatheringState>,
    received: mpsc::Sender<RtpIn>,
    candidates: mpsc::UnboundedSender<serde_json::Value>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        // As a browser's `RTCIceCandidate.toJSON()`, for a `candidate` message.
        if let Ok(init) = event.candidate.to_json() {
            let json = serde_json::json!({
                "candidate": init.candidate,
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            });
            let _ = self.candidates.send(json);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // The remote track is a stream of events that must be drained by someone.
        tokio::spawn(forward_rtp(track, self.received.clone()));
    }
}

async fn forward_rtp(track: Arc<dyn TrackRemote>, out: mpsc::Sender<RtpIn>) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let header = &packet.header;
                let _ = out.try_send(RtpIn {
                    payload_type: header.payload_type,
                    sequence_number: header.sequence_number,
                    timestamp: header.timestamp,
                    ssrc: header.ssrc,
                    marker: header.marker,
                    payload: packet.payload.to_vec(),
                });
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

impl Browser {
    /// A peer that offers exactly `codecs` (in that order) plus telephone-event/8000,
    /// with host candidates on 127.0.0.1 only.
    pub async fn new(codecs: &[Codec]) -> Result<Self, BoxError> {
        Self::with_answer_role(codecs, RTCDtlsRole::Client).await
    }

    /// Like `new`, but an ICE restart rebinds its UDP socket, as a browser
    /// whose network changed does: the new candidates have a new port. Its
    /// checks go out every 50 ms, as Chrome paces them while connecting
    /// (the crate's own default is 200 ms).
    pub async fn moving(codecs: &[Codec]) -> Result<Self, BoxError> {
        Self::build(codecs, RTCDtlsRole::Client, true).await
    }

    /// A peer that answers DTLS as the crate does by itself: `passive`
    /// toward an ICE-lite offerer, like other pion-lineage stacks.
    pub async fn pion_style(codecs: &[Codec]) -> Result<Self, BoxError> {
        Self::with_answer_role(codecs, RTCDtlsRole::Auto).await
    }

    async fn with_answer_role(codecs: &[Codec], role: RTCDtlsRole) -> Result<Self, BoxError> {
        Self::build(codecs, role, false).await
    }

    async fn build(codecs: &[Codec], role: RTCDtlsRole, moving: bool) -> Result<Self, BoxError> {
        let mut media = MediaEngine::default();
        for codec in codecs {
            media.register_codec(codec.parameters(), RtpCodecKind::Audio)?;
        }
        let dtmf = codec_parameters(MIME_TYPE_TELEPHONE_EVENT, 8000, 0, "", TELEPHONE_EVENT_PT);
        media.register_codec(dtmf, RtpCodecKind::Audio)?;

        // A concrete bind address yields exactly one host candidate; mDNS off keeps the
        // crate from opening a multicast socket on a real interface. `new` answers
        // DTLS `active` as Chrome, Firefox and Safari do; left to itself (Auto)
        // the crate answers `passive` to an ICE-lite offerer.
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_answering_dtls_role(role)
            .with_discard_local_candidates_during_ice_restart(moving);
        let settings = if moving {
            settings.with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
        } else {
            settings
        }
        .build();

        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathering_tx, gathering) = watch::channel(RTCIceGatheringState::New);
        let (received_tx, received) = mpsc::channel(RECEIVE_QUEUE);
        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        let events = Events {
            state: state_tx,
            gathering: gathering_tx,
            received: received_tx,
            candidates: candidates_tx,
        };
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_media_engine(media)
                .with_setting_engine(settings)
                .with_handler(Arc::new(events))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build()
                .await?,
        );

        let ssrc = rand::random::<u32>();
        let track = Arc::new(audio_track(ssrc));
        let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
        Ok(Self {
            pc,
            track,
            sender,
            ssrc,
            send_state: Mutex::new(SendState {
                seq: rand::random(),
                timestamp: rand::random(),
            }),
            state,
            gathering,
            received: Mutex::new(received),
            candidates: Mutex::new(candidates),
        })
    }

    /// Trickle ICE: applies an offer and returns it at once, before any
    /// candidate is gathered; candidates follow from `next_candidate`.
    pub async fn create_offer_trickle(&self) -> Result<String, BoxError> {
        let offer = self.pc.create_offer(None).await?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(offer).await?;
        Ok(sdp)
    }

    /// The next gathered candidate as `RTCIceCandidateInit` JSON.
    pub async fn next_candidate(&self, timeout: Duration) -> Result<serde_json::Value, BoxError> {
        let mut rx = self.candidates.lock().await;
        let next = tokio::time::timeout(timeout, rx.recv()).await;
        Ok(next
            .map_err(|_| "no candidate gathered")?
            .ok_or("gathering stopped")?)
    }

    /// `pc.restartIce()` and a new offer, returned once it carries the
    /// restart's candidates (new ufrag, and candidates unlike the last ones).
    pub async fn restart_ice_offer(&self) -> Result<String, BoxError> {
        let ufrag = |sdp: &str| {
            sdp.lines()
                .find(|l| l.starts_with("a=ice-ufrag:"))
                .map(str::to_owned)
        };
        let candidates = |sdp: &str| -> Vec<String> {
            let lines = sdp.lines().filter(|l| l.starts_with("a=candidate:"));
            lines.map(|l| l.split(' ').skip(4).collect()).collect()
        };
        let before = self.pc.local_description().await.map(|d| d.sdp);
        let old = before.as_deref().and_then(ufrag);
        let old_candidates = before.as_deref().map(candidates).unwrap_or_default();
        self.pc.restart_ice().await?;
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let deadline = tokio::time::Instant::now() + GATHER_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Some(local) = self.pc.local_description().await {
                let now = candidates(&local.sdp);
                let fresh = ufrag(&local.sdp) != old && !now.is_empty() && now != old_candidates;
                if fresh {
                    return Ok(local.sdp);
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err("the restart gathered no candidates".into())
    }

    /// Creates and applies an offer; returns it once it carries the gathered candidates.
    pub async fn create_offer(&self) -> Result<String, BoxError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        self.gathered_local_sdp().await
    }

    /// Applies a remote offer and returns the answer, candidates included.
    pub async fn accept_offer(&self, sdp: &str) -> Result<String, BoxError> {
        let offer = RTCSessionDescription::offer(sdp.to_owned())?;
        self.pc.set_remote_description(offer).await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        self.gathered_local_sdp().await
    }

    /// Applies the remote answer to our offer.
    pub async fn apply_answer(&self, sdp: &str) -> Result<(), BoxError> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())?;
        self.pc.set_remote_description(answer).await?;
        Ok(())
    }

    /// Non-trickle signaling: the SDP is only useful once gathering is complete.
    async fn gathered_local_sdp(&self) -> Result<String, BoxError> {
        let mut gathering = self.gathering.clone();
        tokio::time::timeout(
            GATHER_TIMEOUT,
            gathering.wait_for(|s| *s == RTCIceGatheringState::Complete),
        )
        .await
        .map_err(|_| "ICE gathering did not complete")??;
        let local = self.pc.local_description().await;
        Ok(local.ok_or("no local description")?.sdp)
    }

    /// Waits until ICE and DTLS are up (peer connection state `connected`).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), BoxError> {
        let mut state = self.state.clone();
        let settled = tokio::time::timeout(
            timeout,
            state.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await;
        let last = *self.state.borrow();
        match settled {
            Ok(Ok(_)) if last == RTCPeerConnectionState::Connected => Ok(()),
            Ok(_) => Err(format!("peer connection ended in state {last}").into()),
            Err(_) => Err(format!("not connected after {timeout:?} (state {last})").into()),
        }
    }

    /// The payload type and clock rate of the first negotiated voice codec.
    pub async fn negotiated_codec(&self) -> Result<(u8, u32), BoxError> {
        let parameters = self.sender.get_parameters().await?;
        parameters
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| {
                !c.rtp_codec
                    .mime_type
                    .eq_ignore_ascii_case(MIME_TYPE_TELEPHONE_EVENT)
            })
            .map(|c| (c.payload_type, c.rtp_codec.clock_rate))
            .ok_or_else(|| "no voice codec negotiated".into())
    }

    /// Sends one 20 ms RTP packet of `payload` with the negotiated voice codec.
    pub async fn send_rtp(&self, payload: &[u8]) -> Result<(), BoxError> {
        let (payload_type, clock_rate) = self.negotiated_codec().await?;
        self.send_rtp_as(payload_type, false, payload, clock_rate / 50)
            .await
    }

    /// Sends one RTP packet with an explicit payload type and marker bit, then
    /// advances the timestamp by `ticks` (0 keeps it, as RFC 4733 events do).
    pub async fn send_rtp_as(
        &self,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        ticks: u32,
    ) -> Result<(), BoxError> {
        let mut next = self.send_state.lock().await;
        let packet = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker,
                payload_type,
                sequence_number: next.seq,
                timestamp: next.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: bytes::Bytes::copy_from_slice(payload),
        };
        // The driver drops packets it cannot send with only a log line, so a wrong
        // payload type shows up as silence at the far end, not as an error here.
        self.track.write_rtp(packet).await?;
        next.seq = next.seq.wrapping_add(1);
        next.timestamp = next.timestamp.wrapping_add(ticks);
        Ok(())
    }

    /// Sends an RTCP sender report at NTP time `ntp` with one report block
    /// about `about` that answers the SR whose NTP middle bits were `lsr`.
    pub async fn send_sender_report(&self, ntp: u64, about: u32, lsr: u32) -> Result<(), BoxError> {
        use rtc::rtcp::reception_report::ReceptionReport;
        let report = ReceptionReport {
            ssrc: about,
            last_sender_report: lsr,
            ..Default::default()
        };
        let sr = rtc::rtcp::sender_report::SenderReport {
            ssrc: self.ssrc,
            ntp_time: ntp,
            reports: vec![report],
            ..Default::default()
        };
        self.track.write_rtcp(vec![Box::new(sr)]).await?;
        Ok(())
    }

    /// Loses one packet on purpose: its sequence number and timestamp go
    /// by, as if it had been sent and lost on the way.
    pub async fn skip_rtp(&self, ticks: u32) {
        let mut next = self.send_state.lock().await;
        next.seq = next.seq.wrapping_add(1);
        next.timestamp = next.timestamp.wrapping_add(ticks);
    }

    /// The next RTP packet received on the remote track.
    pub async fn recv_rtp(&self, timeout: Duration) -> Result<RtpIn, BoxError> {
        let mut received = self.received.lock().await;
        match tokio::time::timeout(timeout, received.recv()).await {
            Ok(Some(packet)) => Ok(packet),
            Ok(None) => Err("remote track closed".into()),
            Err(_) => Err(format!("no RTP within {timeout:?}").into()),
        }
    }

    /// The payload of the next RTP packet received on the remote track.
    pub async fn recv_payload(&self, timeout: Duration) -> Result<Vec<u8>, BoxError> {
        Ok(self.recv_rtp(timeout).await?.payload)
    }

    /// The SDP currently applied locally, if any (e.g. to inspect an answer).
    pub async fn local_sdp(&self) -> Option<String> {
        self.pc.local_description().await.map(|d| d.sdp)
    }

    /// Closes the peer connection; errors are moot at teardown.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// An audio track whose one encoding names no codec, so the crate offers every
/// registered codec (as a browser does) instead of pinning the first one.
fn audio_track(ssrc: u32) -> TrackLocalStaticRTP {
    let encoding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            ssrc: Some(ssrc),
            ..Default::default()
        },
        ..Default::default()
    };
    let id = format!("audio-{ssrc:08x}");
    TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{ssrc:08x}"),
        id.clone(),
        id,
        RtpCodecKind::Audio,
        vec![encoding],
    ))
}
