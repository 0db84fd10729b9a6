//! The entry points run clean on every seed, and the seeds reach the code
//! behind the first checks (a fuzzer stuck at a signature learns nothing).

use std::time::Instant;

use super::media::{BROWSER, GW_PWD, GW_UFRAG};
use super::*;
use crate::signaling::auth;
use crate::webrtc::Receive;

#[test]
fn every_target_has_seeds_that_run_clean() {
    for target in TARGETS {
        let seeds = seeds(target);
        assert!(!seeds.is_empty(), "{target} has no seeds");
        for (name, data) in seeds {
            assert!(run(target, &data), "{target} is not dispatched");
            // Every cut of a seed too: truncation is the commonest mutation.
            for cut in (0..data.len()).step_by(data.len() / 16 + 1) {
                assert!(run(target, &data[..cut]), "{target}/{name} cut at {cut}");
            }
        }
    }
    assert!(!run("nothing", b""));
}

#[test]
fn datagram_records_round_trip() {
    let parts: [&[u8]; 3] = [b"abc", b"", &[7; 300]];
    let joined = records(&parts);
    assert_eq!(datagrams(&joined).collect::<Vec<_>>(), parts);
    // A short tail is one last datagram, never an error.
    assert_eq!(datagrams(&[9]).collect::<Vec<_>>(), [&[9u8][..]]);
    assert_eq!(datagrams(&[0, 5, 1]).collect::<Vec<_>>(), [&[1u8][..]]);
}

#[test]
fn webrtc_check_nominates_so_dtls_is_reached() {
    let identity = super::media::identity().expect("identity");
    let mut ep = crate::webrtc::Endpoint::new(identity);
    let now = Instant::now();
    let cfg = super::media::leg_config(crate::webrtc::DtlsRole::Server);
    ep.add_leg(1, cfg, now).expect("leg");
    let check = super::media_seeds::binding_request(&format!("{GW_UFRAG}:fuzzbr01"), GW_PWD);
    let mut buf = check.expect("check");
    let len = buf.len();
    buf.resize(len + 64, 0);
    assert_eq!(
        ep.handle_receive(now, BROWSER, &mut buf, len),
        Receive::Handled
    );
    let hello = seeds("webrtc_receive")
        .into_iter()
        .find(|(n, _)| n == "hello12_server")
        .expect("hello seed");
    let dtls = datagrams(&hello.1[1..]).nth(1).expect("client hello");
    let mut buf = dtls.to_vec();
    buf.resize(dtls.len() + 64, 0);
    assert_eq!(
        ep.handle_receive(now, BROWSER, &mut buf, dtls.len()),
        Receive::Handled
    );
    let _stun_response = ep.poll_transmit().expect("binding response");
    assert!(
        ep.poll_transmit().is_some(),
        "the server flight answers the hello"
    );
}

/// A keyed seed reaches SRTP and SRTCP behind `handle_receive`: what the
/// browser protected comes out, a replay and a clear packet do not.
#[test]
fn keyed_webrtc_seeds_reach_srtp() {
    use crate::webrtc::DropReason;
    let seeds = seeds("webrtc_receive");
    for pick in ["keyed_0", "keyed_2"] {
        let (_, seed) = seeds.iter().find(|(n, _)| n == pick).expect("keyed seed");
        let mut got = Vec::new();
        super::media::webrtc_receive_each(seed, |r| got.push(r));
        let kinds: Vec<&str> = got
            .iter()
            .map(|r| match r {
                Receive::Handled => "handled",
                Receive::Rtp { .. } => "rtp",
                Receive::Rtcp { .. } => "rtcp",
                Receive::Dropped(DropReason::SrtpReplay) => "replay",
                Receive::Dropped(_) => "dropped",
            })
            .collect();
        assert_eq!(
            kinds,
            ["handled", "rtp", "rtp", "rtcp", "rtcp", "replay", "dropped"],
            "{pick}: {got:?}"
        );
    }
}

#[test]
fn jwt_seed_verifies_and_resigning_keeps_it_valid() {
    let (_, token) = seeds("jwt")
        .into_iter()
        .find(|(n, _)| n == "valid")
        .expect("valid token seed");
    let token = String::from_utf8(token).expect("ascii");
    let now = 1_700_000_000;
    assert!(auth::verify(&token, JWT_SECRET, now).is_ok());
    let (signing_input, _) = token.rsplit_once('.').expect("three parts");
    assert_eq!(sign(signing_input), token);
}

#[test]
fn srtp_seeds_authenticate_under_the_target_key() {
    use crate::srtp::{SrtpContext, SrtpProfile};
    use rtc_srtp::crypto::providers::RingCrypto;
    let seeds = seeds("srtp_unprotect");
    let (_, rtp) = seeds.iter().find(|(n, _)| n == "rtp_0").expect("rtp seed");
    let profile = SrtpProfile::Aes128CmHmacSha1_80;
    let key = super::media::srtp_key(profile, super::media::BROWSER_KEY_BYTE);
    let mut rx = SrtpContext::new(profile, &key, &RingCrypto).expect("context");
    let mut buf = rtp[1..].to_vec();
    let len = buf.len();
    assert!(rx.unprotect_rtp(&mut buf, len).is_ok());
}

#[test]
fn sip_seeds_pass_the_guard() {
    for (name, data) in seeds("sip_datagram") {
        let verdict = crate::sip::ingress::check_message(&data, 65_535);
        assert!(
            matches!(verdict, crate::sip::ingress::Verdict::Accept(..)),
            "{name}: {verdict:?}"
        );
    }
}

/// `SIPHON_FUZZ_SEEDS=dir cargo test --lib fuzzing::` writes the corpus
/// seeds there (scripts/fuzz does); without it this only checks the names.
#[test]
fn writes_seeds_when_asked() {
    let Some(dir) = std::env::var_os("SIPHON_FUZZ_SEEDS") else {
        let targets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
        for target in TARGETS {
            let file = targets.join(format!("{target}.rs"));
            assert!(file.exists(), "no fuzz target file for {target}");
        }
        return;
    };
    let written = write_seeds(std::path::Path::new(&dir)).expect("write seeds");
    assert!(written >= TARGETS.len());
}
