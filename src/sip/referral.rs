//! A REFER from the far end on an established call (RFC 3515): the PBX
//! transfers the browser's call elsewhere. siphon checks the Refer-To,
//! hands the referral to the call to accept (202) or refuse, and reports
//! the new call's progress with NOTIFYs on the old dialog.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode};
use tokio::sync::Notify;
use tracing::debug;

use super::stack;

/// Where a REFER sends the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferTarget {
    /// The URI to INVITE, without its headers: `sip:`, `sips:` or `tel:`.
    pub uri: String,
    /// A `Replaces` the INVITE must carry (an attended transfer), unescaped.
    pub replaces: Option<String>,
}

/// Why a Refer-To is refused: the REFER's final status and its reason.
pub type ReferRefusal = (u16, &'static str);

/// Read a Refer-To value (a name-addr or a bare URI, RFC 3515 §2.1).
/// 400 for what is no URI, 403 for a scheme siphon cannot call.
pub fn parse_refer_to(value: &str) -> Result<ReferTarget, ReferRefusal> {
    const BAD: ReferRefusal = (400, "Bad Refer-To");
    let value = value.trim();
    let uri = match value.find('<') {
        Some(open) => {
            let rest = &value[open + 1..];
            &rest[..rest.find('>').ok_or(BAD)?]
        }
        // A bare URI cannot hold `;`, `?` or `,` (RFC 3261 §20): what
        // follows a `;` is the header's own parameters.
        None => value.split(';').next().unwrap_or_default(),
    };
    let uri = uri.trim();
    let (scheme, rest) = uri.split_once(':').ok_or(BAD)?;
    if rest.is_empty() || uri.contains(char::is_whitespace) {
        return Err(BAD);
    }
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Err((403, "Refer-To scheme not supported"));
    }
    let (base, headers) = uri.split_once('?').unwrap_or((uri, ""));
    if scheme != "tel" && rsipstack::sip::Uri::try_from(base).is_err() {
        return Err(BAD);
    }
    let replaces = headers.split('&').find_map(|h| {
        let (name, v) = h.split_once('=')?;
        let decoded = percent_decode_str(v).decode_utf8().ok()?;
        name.eq_ignore_ascii_case("replaces")
            .then(|| decoded.into_owned())
    });
    Ok(ReferTarget {
        uri: base.to_owned(),
        replaces,
    })
}

/// A REFER on the call, waiting for the call to take it (202) or refuse
/// it. Clones share it; the first answer wins. Dropped unanswered,
/// rsipstack answers 501.
#[derive(Clone)]
pub struct Referral {
    /// Where to call.
    pub target: ReferTarget,
    /// The Referred-By the new INVITE carries (RFC 3892), as received.
    pub referred_by: Option<String>,
    /// The referrer asked for no NOTIFYs (`Refer-Sub: false`, RFC 4488).
    pub quiet: bool,
    handle: Arc<Mutex<Option<TransactionHandle>>>,
    /// Fired once rsipstack has sent the answer (see [`Answering`]).
    sent: Arc<Notify>,
}

impl std::fmt::Debug for Referral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Referral")
            .field("target", &self.target)
            .finish()
    }
}

impl PartialEq for Referral {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }
}

impl Eq for Referral {}

impl Referral {
    /// 202 Accepted: the new call is under way. Returns once the 202 is
    /// out (or after a second), so that no NOTIFY overtakes it: RFC 3515
    /// lets one, but strict referrers (SIPp's scenarios) take them in order.
    pub async fn accept(&self) {
        let Some(handle) = self.take() else { return };
        let mut headers = Vec::new();
        if self.quiet {
            headers.push(Header::Other("Refer-Sub".into(), "false".into()));
        }
        let status = StatusCode::from(202);
        if let Err(e) = handle.respond(status, Some(headers), None).await {
            debug!(error = %e, "accepting the REFER failed");
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.sent.notified()).await;
    }

    /// Refuse with `code`; the call goes on as it was.
    pub async fn refuse(&self, code: u16, reason: &str) {
        let Some(handle) = self.take() else { return };
        refuse(handle, code, reason).await;
    }

    fn take(&self) -> Option<TransactionHandle> {
        self.handle.lock().ok()?.take()
    }
}

async fn refuse(handle: TransactionHandle, code: u16, reason: &str) {
    let warning = Header::Warning(format!("399 siphon \"{reason}\"").into());
    let status = StatusCode::from(code);
    if let Err(e) = handle.respond(status, Some(vec![warning]), None).await {
        debug!(error = %e, "refusing the REFER failed");
    }
}

/// A REFER from the peer: a referral for the call, or `None` once it was
/// refused here for a missing, doubled or unusable Refer-To.
pub(super) async fn received(req: &Request, handle: TransactionHandle) -> Option<Referral> {
    let values = |names: &[&str]| -> Vec<String> {
        let named = |h: &Header| names.iter().find_map(|n| stack::header_value(h, n));
        req.headers.iter().filter_map(named).collect()
    };
    let refer_to = values(&["refer-to", "r"]);
    let parsed = match &refer_to[..] {
        [one] => parse_refer_to(one),
        [] => Err((400, "Missing Refer-To")),
        _ => Err((400, "More than one Refer-To")),
    };
    let target = match parsed {
        Ok(target) => target,
        Err((code, reason)) => {
            debug!(code, reason, "REFER refused");
            refuse(handle, code, reason).await;
            return None;
        }
    };
    let quiet = values(&["refer-sub"])
        .iter()
        .any(|v| v.trim().eq_ignore_ascii_case("false"));
    Some(Referral {
        target,
        referred_by: values(&["referred-by", "b"]).into_iter().next(),
        quiet,
        handle: Arc::new(Mutex::new(Some(handle))),
        sent: Arc::default(),
    })
}

/// The REFER a dialog's task saw last, until rsipstack has answered it.
/// rsipstack takes the answer from another task, sends it, and then puts
/// the dialog back to Confirmed: that state, heard by the dialog's task,
/// is the one sign that the answer is out.
#[derive(Default)]
pub(super) struct Answering(Option<Arc<Notify>>);

impl Answering {
    /// `referral` waits for its answer to go out.
    pub(super) fn watch(&mut self, referral: &Referral) {
        self.0 = Some(referral.sent.clone());
    }

    /// The dialog is Confirmed again.
    pub(super) fn confirmed(&mut self) {
        if let Some(sent) = self.0.take() {
            sent.notify_one();
        }
    }
}

/// NOTIFY the referrer of the new call's status `code` (a sipfrag,
/// RFC 3515 §2.4.5); `last` ends the implicit subscription.
pub(super) async fn notify(dialog: &InviteDialog, code: u16, last: bool) {
    let state = match last {
        true => "terminated;reason=noresource",
        false => "active;expires=60",
    };
    let headers = vec![
        Header::Event("refer".into()),
        Header::SubscriptionState(state.into()),
        Header::ContentType("message/sipfrag;version=2.0".into()),
    ];
    let status = StatusCode::from(code);
    let body = format!("SIP/2.0 {code} {}\r\n", status.text());
    if let Err(e) = dialog.notify(Some(headers), Some(body.into_bytes())).await {
        debug!(error = %e, code, "NOTIFY of the transfer failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str, replaces: Option<&str>) -> ReferTarget {
        ReferTarget {
            uri: uri.into(),
            replaces: replaces.map(Into::into),
        }
    }

    #[test]
    fn a_refer_to_gives_the_uri_and_its_replaces() {
        assert_eq!(
            parse_refer_to("<sip:2000@pbx.example.com>"),
            Ok(target("sip:2000@pbx.example.com", None))
        );
        assert_eq!(
            parse_refer_to("\"Bob\" <sips:bob@10.0.0.5:5061;transport=tls>;x=y"),
            Ok(target("sips:bob@10.0.0.5:5061;transport=tls", None))
        );
        assert_eq!(
            parse_refer_to("sip:2000@pbx;method=INVITE"),
            Ok(target("sip:2000@pbx", None))
        );
        assert_eq!(
            parse_refer_to("<tel:+15551234567>"),
            Ok(target("tel:+15551234567", None))
        );
        let attended =
            "<sip:2000@10.0.0.5?Replaces=abc%4010.0.0.1%3Bto-tag%3Dt%3Bfrom-tag%3Df&X=1>";
        assert_eq!(
            parse_refer_to(attended),
            Ok(target(
                "sip:2000@10.0.0.5",
                Some("abc@10.0.0.1;to-tag=t;from-tag=f")
            ))
        );
    }

    #[test]
    fn a_refer_to_that_is_no_callable_uri_is_refused() {
        for bad in [
            "",
            "<>",
            "<sip:2000@pbx",
            "2000",
            "sip:",
            "<sip:a b@c>",
            "<sip:@>",
        ] {
            assert_eq!(parse_refer_to(bad).map_err(|e| e.0), Err(400), "{bad:?}");
        }
        for other in [
            "<http://example.com/>",
            "mailto:bob@example.com",
            "<urn:x:y>",
        ] {
            assert_eq!(parse_refer_to(other).map_err(|e| e.0), Err(403), "{other}");
        }
    }
}
