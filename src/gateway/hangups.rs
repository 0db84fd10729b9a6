//! siphon's own BYEs and CANCELs run beside the call, not in it: the
//! browser hears `hangup` and the call's resources are freed at once, while
//! a SIP peer that stopped answering holds only this task until its
//! transaction times out (32 s). Each outcome is counted.

use std::future::Future;

use super::Inner;
use crate::sip::HangupOutcome;

/// Run `hangup` (a `UacHandle` or `UasHandle` hangup) in the background,
/// tracked so that shutdown can give it a moment, and count its outcome.
pub(super) fn spawn<F>(gw: &Inner, hangup: F)
where
    F: Future<Output = HangupOutcome> + Send + 'static,
{
    let counter = gw.metrics.sip_hangups_total.clone();
    gw.hangups.spawn(async move {
        let outcome = hangup.await;
        counter.with_label_values(&[outcome.label()]).inc();
    });
}
