//! An INVITE with Replaces (RFC 3891): the PBX moves a browser's answered
//! call onto a new dialog (an attended transfer or a pickup done by the
//! PBX). The browser's WebRTC leg stays, the new party's audio reaches it,
//! and the old dialog gets BYE; a Replaces that names no answered call is
//! refused.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use common::{Browser, Signaling};
use siphon::config::UserConfig;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{SipEndpoint, Transport, UacEvent, UacHandle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

struct Rig {
    gateway: Gateway,
    pbx: SipEndpoint,
    _stop: CancellationToken,
}

impl Rig {
    async fn start() -> Rig {
        let stop = CancellationToken::new();
        let mut config = common::loopback_config();
        config.users = vec![UserConfig {
            name: "alice".into(),
            extension: "2001".into(),
            ..Default::default()
        }];
        let gateway = Gateway::start(config, Metrics::new()).await.unwrap();
        let pbx = common::test_pbx("127.0.0.1:0".parse().unwrap(), &stop).await;
        Rig {
            gateway,
            pbx,
            _stop: stop,
        }
    }

    /// The PBX's INVITE to 2001 with a PCMU offer on `rtp`, and `headers`.
    async fn invite(
        &self,
        rtp: &UdpSocket,
        headers: Vec<(String, String)>,
    ) -> (UacHandle, mpsc::Receiver<UacEvent>) {
        let port = rtp.local_addr().unwrap().port();
        let gw = self.gateway.sip_addr(Transport::Udp).unwrap();
        let invite = common::pbx_invite(gw, "2001", port, headers);
        self.pbx.invite(invite).await.unwrap()
    }
}

use common::uac_final as final_event;

/// A Replaces header naming `uac`'s dialog as the far end (siphon) sees it.
fn replaces(uac: &UacHandle) -> Vec<(String, String)> {
    let d = uac.dialog_ref().expect("answered");
    let value = format!(
        "{};to-tag={};from-tag={}",
        d.call_id, d.remote_tag, d.local_tag
    );
    vec![("Replaces".into(), value)]
}

/// The PBX calls alice, whose browser answers: the call, answered.
async fn answered(
    rig: &Rig,
    rtp: &UdpSocket,
) -> (
    Signaling,
    Arc<Browser>,
    UacHandle,
    mpsc::Receiver<UacEvent>,
    String,
) {
    let mut sig = common::online(&rig.gateway, "alice").await;
    let (uac, mut events) = rig.invite(rtp, Vec::new()).await;
    let (browser, call_id) = common::accept_incoming(&mut sig).await;
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Answered { .. }
    ));
    browser.wait_connected(T).await.unwrap();
    (sig, browser, uac, events, call_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacing_invite_takes_the_call_and_the_old_dialog_gets_bye() {
    let rig = Rig::start().await;
    let old_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut sig, browser, old, mut old_events, call_id) = answered(&rig, &old_rtp).await;

    let new_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (new, mut new_events) = rig.invite(&new_rtp, replaces(&old)).await;
    let UacEvent::Answered { sdp } = final_event(&mut new_events).await else {
        panic!("the replacing INVITE was not answered")
    };
    assert_eq!(
        final_event(&mut old_events).await,
        UacEvent::Ended { by_remote: true },
        "siphon ends the replaced dialog"
    );
    // The browser's leg is the same: the new party's audio goes through it.
    let back = common::pbx_round_trip(browser.clone(), new_rtp, common::media_addr(&sdp), 50).await;
    assert!(
        back >= 40,
        "only {back} of 50 frames came back through the browser"
    );
    // The call is the new dialog's now: its BYE ends it for the browser.
    new.hangup().await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["call_id"], call_id.as_str());
    assert_eq!(hangup["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaces_that_names_no_call_is_refused_and_the_call_goes_on() {
    let rig = Rig::start().await;
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut sig, browser, old, _old_events, call_id) = answered(&rig, &rtp).await;
    let d = old.dialog_ref().unwrap();
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    for value in [
        "nope@x;to-tag=a;from-tag=b".to_string(),
        // The right Call-ID with the tags the wrong way round.
        format!(
            "{};to-tag={};from-tag={}",
            d.call_id, d.local_tag, d.remote_tag
        ),
    ] {
        let (_, mut events) = rig
            .invite(&other, vec![("Replaces".into(), value.clone())])
            .await;
        let ev = final_event(&mut events).await;
        assert!(
            matches!(ev, UacEvent::Failed { code: 481, .. }),
            "{value}: {ev:?}"
        );
    }
    old.hangup().await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(
        hangup["call_id"],
        call_id.as_str(),
        "the first call was still up"
    );
    browser.close().await;
}
