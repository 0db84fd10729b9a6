//! What both call drivers do the same way around their machines: the
//! resources a call holds and their release, answering the SIP side's
//! re-offers and sending the browser's (counted as hold or resume), glare,
//! DTMF counts, and the media plane's events as the machines' signals.

use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::slots::Slot;
use super::Inner;
use crate::call::{MediaFailure, MediaSignal};
use crate::media::{MediaEvent, Press, SilentSide};
use crate::sip;
use crate::webrtc::LegId;

/// A call's admission under the limits: its `limits.max_calls` permit and
/// its user's `limits.per_user_calls` slot. A driver drops it as soon as
/// its machine finishes, before the browser hears the `hangup`: a browser
/// (or PBX) that calls again on that `hangup` must not be refused for a
/// limit the ended call still held while its resources were being released.
pub(super) struct Admission {
    _permit: OwnedSemaphorePermit,
    _slot: Option<Slot>,
}

impl Admission {
    pub(super) fn new(permit: OwnedSemaphorePermit, slot: Option<Slot>) -> Admission {
        Admission {
            _permit: permit,
            _slot: slot,
        }
    }
}

/// Everything the call holds that must be released.
#[derive(Clone, Copy)]
pub(super) struct Resources {
    pub(super) relay: usize,
    pub(super) leg: LegId,
}

/// The re-offer counters' label for an SDP siphon sends.
fn hold_or_resume(sdp: &str) -> &'static str {
    match crate::sdp::is_hold(sdp) {
        true => "hold",
        false => "resume",
    }
}

/// Answer a SIP re-offer (200 with SDP, or 488), counting holds.
pub(super) async fn answer_reoffer(
    gw: &Inner,
    reoffer: &sip::Reoffer,
    answer: Result<String, crate::call::SessionError>,
) {
    match answer {
        Ok(sdp) => {
            let kind = hold_or_resume(&sdp);
            gw.metrics.reoffers_total.with_label_values(&[kind]).inc();
            reoffer.accept(sdp).await;
        }
        Err(reason) => {
            tracing::info!(%reason, method = reoffer.method, "re-offer refused");
            gw.metrics
                .reoffers_total
                .with_label_values(&["refused"])
                .inc();
            reoffer.refuse(488, &reason.to_string()).await;
        }
    }
}

/// Send a browser's hold or resume (`sdp`) as a re-INVITE without holding
/// up the call (its answer may take a while, and the far end's own
/// requests must be answered meanwhile); after a 491 wait 2.1-4 s first
/// (RFC 3261 section 14.1). Counted by outcome.
pub(super) fn spawn_reinvite<F>(
    gw: &Inner,
    sdp: &str,
    go: F,
    after_glare: bool,
    tx: mpsc::UnboundedSender<Option<(u16, String)>>,
) where
    F: std::future::Future<Output = Option<(u16, String)>> + Send + 'static,
{
    let kind = hold_or_resume(sdp);
    let counter = gw.metrics.browser_reoffers_total.clone();
    tokio::spawn(async move {
        if after_glare {
            tokio::time::sleep(sip::glare_backoff()).await;
        }
        let result = go.await;
        let outcome = match &result {
            Some((200..=299, _)) => kind,
            Some((491, _)) => "glare",
            _ => "refused",
        };
        counter.with_label_values(&[outcome]).inc();
        let _ = tx.send(result);
    });
}

/// A re-offer while siphon's own re-INVITE is pending: 491 (glare).
pub(super) async fn refuse_glare(gw: &Inner, reoffer: &sip::Reoffer) {
    gw.metrics
        .reoffers_total
        .with_label_values(&["glare"])
        .inc();
    reoffer.refuse(491, "Request Pending").await;
}

/// Count a generated key press by where it goes.
pub(super) fn count_dtmf(gw: &Inner, press: &Press) {
    let to = if press.to_sip {
        "sip_rtp"
    } else {
        "webrtc_rtp"
    };
    gw.metrics.dtmf_total.with_label_values(&[to]).inc();
}

/// Count (and log a refusal of) a key press sent as SIP INFO.
pub(super) fn record_info(gw: &Inner, digit: char, code: Option<u16>) {
    gw.metrics.dtmf_total.with_label_values(&["sip_info"]).inc();
    if !code.is_some_and(|c| (200..300).contains(&c)) {
        tracing::info!(%digit, ?code, "the SIP peer did not take the INFO");
    }
}

pub(super) async fn release(gw: &Inner, res: &Resources) -> Option<crate::media::CallStats> {
    let relay = gw.relays.get(res.relay);
    match relay.remove(res.leg).await {
        Ok(stats) => {
            tracing::info!(
                to_sip = stats.to_sip_packets,
                to_webrtc = stats.to_webrtc_packets,
                dropped = stats.dropped,
                "call media released"
            );
            Some(stats)
        }
        Err(e) => {
            tracing::error!(error = %e, "relay did not release the call");
            None
        }
    }
}

/// The media plane's event as a call machine's signal; `None` for those
/// only logged.
pub(super) fn media_signal(ev: MediaEvent) -> Option<MediaSignal> {
    match ev {
        MediaEvent::WebRtcConnected => Some(MediaSignal::Connected),
        MediaEvent::IceDisconnected => Some(MediaSignal::Disconnected),
        MediaEvent::BrowserKey(code, ms) => {
            crate::media::dtmf::digit(code).map(|d| MediaSignal::Key(d, ms))
        }
        MediaEvent::ConsentExpired => Some(MediaSignal::ConsentExpired),
        MediaEvent::WebRtcFailed(e) => Some(MediaSignal::Failed(MediaFailure::WebRtc(e))),
        MediaEvent::WebRtcClosed => Some(MediaSignal::Closed),
        MediaEvent::RelayFailed(why) => Some(MediaSignal::Failed(MediaFailure::RelayLoop(why))),
        MediaEvent::MediaTimeout(side) => {
            let from = match side {
                SilentSide::Sip => "the SIP peer",
                SilentSide::WebRtc => "the browser",
            };
            Some(MediaSignal::Timeout(format!(
                "Media timeout: no media from {from}"
            )))
        }
        MediaEvent::SipLatched(addr) => {
            tracing::debug!(%addr, "SIP media source latched");
            None
        }
    }
}
