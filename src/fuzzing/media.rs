//! Media entry points: the WebRTC port's `Endpoint::handle_receive`, SRTP
//! and SRTCP unprotect, and RTCP translation between the legs.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtc_srtp::crypto::providers::RingCrypto;

use crate::media::quality::{CallQuality, Leg};
use crate::media::rewrite::{PtMap, StreamRewriter};
use crate::media::rtcp;
use crate::srtp::{SrtpContext, SrtpProfile};
use crate::webrtc::{
    DtlsRole, Endpoint, Identity, LegConfig, Receive, DEFAULT_CONSENT_TIMEOUT,
    DEFAULT_DISCONNECT_TIMEOUT,
};

/// The relay's receive buffer and the most it lets one datagram fill.
const BUF: usize = 2048;
const MAX_RECV: usize = BUF - 64;

/// The browser's address, nominated by a valid check before the input.
pub(crate) const BROWSER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
    5000,
);
pub(crate) const GW_UFRAG: &str = "fuzzgw01";
pub(crate) const GW_PWD: &str = "fuzzgatewaypassword0123";
pub(crate) const BROWSER_UFRAG: &str = "fuzzbr01";
const BROWSER_PWD: &str = "fuzzbrowserpassword0123";

/// Every SRTP profile; the first input byte picks one.
pub(crate) const PROFILES: [SrtpProfile; 4] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::Aes128CmHmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AeadAes256Gcm,
];

/// Key generation is slow; every input shares one certificate.
pub(crate) fn identity() -> Option<Arc<Identity>> {
    static IDENTITY: OnceLock<Option<Arc<Identity>>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| Identity::generate().ok().map(Arc::new))
        .clone()
}

fn nominating_check() -> &'static [u8] {
    static CHECK: OnceLock<Vec<u8>> = OnceLock::new();
    CHECK.get_or_init(|| {
        let user = format!("{GW_UFRAG}:{BROWSER_UFRAG}");
        super::media_seeds::binding_request(&user, GW_PWD).unwrap_or_default()
    })
}

pub(crate) fn leg_config(dtls_role: DtlsRole) -> LegConfig {
    LegConfig {
        local_ufrag: GW_UFRAG.to_owned(),
        local_pwd: GW_PWD.to_owned(),
        remote_ufrag: BROWSER_UFRAG.to_owned(),
        remote_pwd: BROWSER_PWD.to_owned(),
        remote_fingerprint: ["AB"; 32].join(":"),
        consent_timeout: DEFAULT_CONSENT_TIMEOUT,
        disconnect_timeout: DEFAULT_DISCONNECT_TIMEOUT,
        dtls_role,
    }
}

/// Splits `data` into datagrams, each prefixed by its 16-bit length.
pub fn datagrams(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = match data {
            [] => return None,
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            // One byte left: too short for a length, so it is the datagram.
            _ => return Some(std::mem::take(&mut data)),
        };
        let (datagram, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        Some(datagram)
    })
}

/// The inverse of [`datagrams`], for seeds.
pub fn records(datagrams: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in datagrams {
        let len = u16::try_from(d.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&d[..usize::from(len)]);
    }
    out
}

/// The browser's SRTP master key (`key || salt`) in a keyed input, and
/// the gateway's; `srtp_unprotect` and the seeds use the browser's too.
pub(crate) fn srtp_key(profile: SrtpProfile, byte: u8) -> Vec<u8> {
    vec![byte; profile.key_len() + profile.salt_len()]
}
pub(crate) const BROWSER_KEY_BYTE: u8 = 0x5a;
const GW_KEY_BYTE: u8 = 0xa5;

/// The first byte of a [`webrtc_receive`] input: bit 0 picks the gateway's
/// DTLS role; bit 1 puts SRTP keys in place as if the handshake had
/// finished, bits 2–3 picking their profile.
pub(crate) fn webrtc_flags(client: bool, keyed: Option<usize>) -> u8 {
    let keyed = keyed.map_or(0, |p| 2 | (p as u8 & 3) << 2);
    u8::from(client) | keyed
}

/// Datagrams on the shared WebRTC port from a browser whose check already
/// nominated its address: the first byte is [`webrtc_flags`], the rest is
/// [`datagrams`] arriving 100 ms apart.
pub fn webrtc_receive(data: &[u8]) {
    webrtc_receive_each(data, |_| {});
}

/// [`webrtc_receive`], telling `seen` what became of each datagram (the
/// nominating check first).
pub(crate) fn webrtc_receive_each(data: &[u8], mut seen: impl FnMut(Receive)) {
    let (Some(identity), Some((&flags, rest))) = (identity(), data.split_first()) else {
        return;
    };
    let role = match flags & 1 {
        0 => DtlsRole::Server,
        _ => DtlsRole::Client,
    };
    let t0 = Instant::now();
    let mut ep = Endpoint::new(identity);
    if ep.add_leg(1, leg_config(role), t0).is_err() {
        return;
    }
    if flags & 2 != 0 {
        let profile = PROFILES[usize::from(flags >> 2) & 3];
        let (local, remote) = (
            srtp_key(profile, GW_KEY_BYTE),
            srtp_key(profile, BROWSER_KEY_BYTE),
        );
        if ep.install_srtp_keys(1, profile, local, remote).is_err() {
            return;
        }
    }
    let mut buf = [0u8; BUF];
    let mut now = t0;
    for datagram in std::iter::once(nominating_check()).chain(datagrams(rest)) {
        let len = datagram.len().min(MAX_RECV);
        buf[..len].copy_from_slice(&datagram[..len]);
        seen(ep.handle_receive(now, BROWSER, &mut buf, len));
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
        now += Duration::from_millis(100);
    }
}

/// A packet as SRTP and as SRTCP (first byte: the profile), then the same
/// packet protected with the right key, which must come back unchanged.
pub fn srtp_unprotect(data: &[u8]) {
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    let profile = PROFILES[usize::from(pick) % PROFILES.len()];
    let key = srtp_key(profile, BROWSER_KEY_BYTE);
    let context = || SrtpContext::new(profile, &key, &RingCrypto).ok();
    let (Some(mut rx), Some(mut tx), Some(mut rx_ok)) = (context(), context(), context()) else {
        return;
    };
    let len = packet.len().min(MAX_RECV);
    let mut buf = [0u8; BUF];
    let load = |buf: &mut [u8; BUF]| buf[..len].copy_from_slice(&packet[..len]);
    load(&mut buf);
    let _ = rx.unprotect_rtp(&mut buf, len);
    load(&mut buf);
    let _ = rx.unprotect_rtcp(&mut buf, len);
    load(&mut buf);
    if let Ok(n) = tx.protect_rtp(&mut buf, len) {
        assert_eq!(rx_ok.unprotect_rtp(&mut buf, n), Ok(len), "SRTP round trip");
        assert_eq!(&buf[..len], &packet[..len], "SRTP round trip");
    }
    load(&mut buf);
    if let Ok(n) = tx.protect_rtcp(&mut buf, len) {
        assert_eq!(
            rx_ok.unprotect_rtcp(&mut buf, n),
            Ok(len),
            "SRTCP round trip"
        );
        assert_eq!(&buf[..len], &packet[..len], "SRTCP round trip");
    }
}

/// A compound RTCP packet from the browser, read for the call's quality
/// figures (as from either leg, and as RTP) and translated for the SIP side
/// on a bridge whose sources have switched once (so every offset is
/// non-zero).
pub fn rtcp_translate(data: &[u8]) {
    let mut quality = CallQuality::default();
    let now = Instant::now();
    quality.rtcp_from(Leg::Browser, data, 0xB0B0, now, 8000);
    quality.rtcp_from(Leg::Sip, data, 0xA0A0, now, 0);
    quality.rtp_from(Leg::Sip, data, now, 48000, true);
    let _ = quality.snapshot();
    let rewriter = |ssrc| {
        let mut map = PtMap::empty();
        map.insert(0, 0);
        map.insert(111, 8);
        StreamRewriter::new(ssrc, map, 160)
    };
    let a_to_b = rewriter(0xA0A0);
    let mut b_to_a = rewriter(0xB0B0);
    for (seq, ts, ssrc) in [(100u16, 1000u32, 0x1111u32), (500, 7000, 0x2222)] {
        let mut rtp = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        rtp[2..4].copy_from_slice(&seq.to_be_bytes());
        rtp[4..8].copy_from_slice(&ts.to_be_bytes());
        rtp[8..12].copy_from_slice(&ssrc.to_be_bytes());
        let _ = b_to_a.rewrite(&mut rtp);
    }
    let mut pkt = data.to_vec();
    let _ = rtcp::translate(&mut pkt, &a_to_b, &b_to_a);
}
