//! Seeds for the media targets, built with the libraries a browser uses:
//! a signed ICE check (rtc-stun), DTLS ClientHellos (dimpl), SRTP and SRTCP
//! protected by siphon's own contexts, and RTCP compounds.

use std::sync::Arc;
use std::time::Instant;

use rtc_srtp::crypto::providers::RingCrypto;
use rtc_stun::attributes::{
    AttrType, RawAttribute, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc_stun::textattrs::TextAttribute;

use super::media::{
    records, srtp_key, webrtc_flags, BROWSER_KEY_BYTE, BROWSER_UFRAG, GW_PWD, GW_UFRAG, PROFILES,
};
use super::seeds::Seeds;
use crate::srtp::{SrtpContext, SrtpProfile};
use crate::webrtc::Identity;

/// A binding request from a controlling browser, signed with `pwd`.
pub(crate) fn binding_request(username: &str, pwd: &str) -> Option<Vec<u8>> {
    let raw = |typ: AttrType, value: &[u8]| RawAttribute {
        typ,
        length: value.len() as u16,
        value: value.to_vec(),
    };
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        Box::new(raw(ATTR_PRIORITY, &1_853_817_087u32.to_be_bytes())),
        Box::new(raw(ATTR_ICE_CONTROLLING, &42u64.to_be_bytes())),
        Box::new(raw(ATTR_USE_CANDIDATE, &[])),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_owned(),
            &RingCrypto,
        )),
        Box::new(FINGERPRINT),
    ];
    let mut m = Message::new();
    m.build(&setters).ok()?;
    Some(m.raw)
}

/// The first flight of a DTLS client (1.2 or 1.3), as a browser sends it.
fn client_hello(dtls13: bool) -> Vec<Vec<u8>> {
    let Ok(identity) = Identity::generate() else {
        return Vec::new();
    };
    let now = Instant::now();
    let config = Arc::new(dimpl::Config::default());
    let cert = identity.dtls_certificate();
    let mut dtls = match dtls13 {
        true => dimpl::Dtls::new_13(config, cert, now),
        false => dimpl::Dtls::new_12(config, cert, now),
    };
    dtls.set_active(true);
    let _ = dtls.handle_timeout(now);
    let mut out = vec![0u8; 4096];
    let mut flight = Vec::new();
    while let dimpl::Output::Packet(p) = dtls.poll_output(&mut out) {
        flight.push(p.to_vec());
    }
    flight
}

pub(super) fn webrtc_seeds() -> Seeds {
    let check = binding_request(&format!("{GW_UFRAG}:{BROWSER_UFRAG}"), GW_PWD).unwrap_or_default();
    let mut out = Vec::new();
    for (name, dtls13) in [("hello12", false), ("hello13", true)] {
        let flight = client_hello(dtls13);
        let mut datagrams: Vec<&[u8]> = vec![&check];
        datagrams.extend(flight.iter().map(Vec::as_slice));
        for (role, flag) in [("server", 0u8), ("client", 1)] {
            let mut seed = vec![flag];
            seed.extend(records(&datagrams));
            out.push((format!("{name}_{role}"), seed));
        }
    }
    let media: [&[u8]; 2] = [&rtp_packet(7), &sr_sdes()];
    out.push(("rtp_rtcp".into(), [&[0u8][..], &records(&media)].concat()));
    out.extend(keyed_media_seeds());
    out
}

fn rtp_packet(seq: u8) -> Vec<u8> {
    let mut p = vec![0x80, 111, 0, seq, 0, 0, 3, 0xc0, 0, 0, 0xde, 0xad];
    p.extend_from_slice(&[0xfc; 40]);
    p
}

/// An SR with one report block, then an SDES with a CNAME (RFC 3550 §6.4.1, §6.5).
pub(super) fn sr_sdes() -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12, 0, 0, 0x11, 0x11];
    p.extend_from_slice(&[0; 20]); // NTP, RTP timestamp, counts
    p.extend_from_slice(&[0, 0, 0x22, 0x22]); // report block: source
    p.extend_from_slice(&[0; 20]);
    p.extend_from_slice(&[
        0x81, 202, 0, 3, 0, 0, 0x11, 0x11, 1, 4, b'a', b'b', b'c', b'd', 0, 0,
    ]);
    p
}

/// An RR without blocks, a PLI and a BYE.
pub(super) fn rr_bye() -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1, 0, 0, 0x11, 0x11];
    p.extend_from_slice(&[0x81, 206, 0, 2, 0, 0, 0x11, 0x11, 0, 0, 0x22, 0x22]);
    p.extend_from_slice(&[0x81, 203, 0, 1, 0, 0, 0x11, 0x11]);
    p
}

/// What the browser sends under `profile` with the targets' browser key:
/// each plain packet protected in turn, as SRTP or (`rtcp`) SRTCP.
fn protected(profile: SrtpProfile, packets: &[(bool, Vec<u8>)]) -> Vec<Vec<u8>> {
    let key = srtp_key(profile, BROWSER_KEY_BYTE);
    let Ok(mut tx) = SrtpContext::new(profile, &key, &RingCrypto) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (rtcp, plain) in packets {
        let mut buf = plain.clone();
        buf.resize(plain.len() + 64, 0);
        let sent = match rtcp {
            false => tx.protect_rtp(&mut buf, plain.len()),
            true => tx.protect_rtcp(&mut buf, plain.len()),
        };
        if let Ok(n) = sent {
            out.push(buf[..n].to_vec());
        }
    }
    out
}

/// The two profile picks the seeds use: AES-CM with an 80-bit tag, and GCM.
const SEED_PROFILES: [usize; 2] = [0, 2];

/// Media on a keyed leg: two packets, the first again (a replay), SRTCP,
/// and a packet sent in the clear.
fn keyed_media_seeds() -> Seeds {
    let mut out = Vec::new();
    for pick in SEED_PROFILES {
        let sent = [
            (false, rtp_packet(7)),
            (false, rtp_packet(8)),
            (true, sr_sdes()),
            (true, rr_bye()),
        ];
        let mut datagrams = protected(PROFILES[pick], &sent);
        if let Some(first) = datagrams.first().cloned() {
            datagrams.push(first);
        }
        datagrams.push(rtp_packet(9));
        let refs: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
        let flags = webrtc_flags(false, Some(pick));
        out.push((
            format!("keyed_{pick}"),
            [&[flags][..], &records(&refs)].concat(),
        ));
    }
    out
}

pub(super) fn srtp_seeds() -> Seeds {
    let mut out = Vec::new();
    for pick in SEED_PROFILES {
        let profile = PROFILES[pick];
        let sent = [(false, rtp_packet(7)), (true, sr_sdes())];
        for (kind, packet) in ["rtp", "rtcp"].into_iter().zip(protected(profile, &sent)) {
            out.push((
                format!("{kind}_{pick}"),
                [&[pick as u8][..], &packet].concat(),
            ));
        }
        out.push((
            format!("plain_{pick}"),
            [&[pick as u8][..], &rtp_packet(7)].concat(),
        ));
    }
    out
}
