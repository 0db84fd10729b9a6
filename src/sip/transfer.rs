//! Call transfer on an established dialog (RFC 3515 REFER, RFC 3891
//! Replaces): siphon's REFER, the NOTIFYs that report on it, and the
//! Refer-To of an attended transfer.

use rsipstack::dialog::dialog::{DialogSnapshot, TransactionHandle};
use rsipstack::sip::{ReferTo, Request, Response, StatusCode};
use tracing::debug;

use super::stack;

/// One established dialog as a transfer names it: the Call-ID and tags a
/// Replaces needs, and where its peer can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialogRef {
    /// Call-ID.
    pub call_id: String,
    /// siphon's tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// The peer's remote target (its Contact), e.g. `sip:2000@10.0.0.5:5060`.
    pub remote_target: String,
}

impl DialogRef {
    pub(super) fn of(snapshot: &DialogSnapshot) -> DialogRef {
        DialogRef {
            call_id: snapshot.id.call_id.clone(),
            local_tag: snapshot.id.local_tag.clone(),
            remote_tag: snapshot.id.remote_tag.clone(),
            remote_target: snapshot.remote_uri.to_string(),
        }
    }

    /// The Refer-To of an attended transfer to this dialog's peer: its
    /// remote target with a Replaces naming this dialog. The INVITE it
    /// leads to goes to that peer, so the tags are as the peer sees them
    /// (RFC 3891 §3): its own tag is the to-tag, siphon's the from-tag.
    pub fn replaces_target(&self) -> String {
        let replaces = format!(
            "{};to-tag={};from-tag={}",
            self.call_id, self.remote_tag, self.local_tag
        );
        // Headers of the remote target itself would clash with ours.
        let target = self.remote_target.split('?').next().unwrap_or_default();
        format!("<{target}?Replaces={}>", escape_header_value(&replaces))
    }
}

/// The dialog an INVITE with a Replaces header (RFC 3891) takes the place
/// of, with the tags as the recipient sees them: `to_tag` is its own.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Replaces {
    /// Call-ID of the dialog to replace.
    pub call_id: String,
    /// The recipient's (siphon's) tag in that dialog.
    pub to_tag: String,
    /// The other party's tag in that dialog.
    pub from_tag: String,
    /// `early-only`: replace the dialog only before it is answered.
    pub early_only: bool,
}

impl Replaces {
    /// A Replaces header's value: `call-id;to-tag=..;from-tag=..[;early-only]`;
    /// `None` when a part is missing.
    pub fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';').map(str::trim);
        let call_id = parts.next().filter(|c| !c.is_empty())?.to_owned();
        let mut replaces = Replaces {
            call_id,
            ..Replaces::default()
        };
        for part in parts {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "to-tag" => replaces.to_tag = value.trim().to_owned(),
                "from-tag" => replaces.from_tag = value.trim().to_owned(),
                "early-only" => replaces.early_only = true,
                _ => {}
            }
        }
        let tagged = !replaces.to_tag.is_empty() && !replaces.from_tag.is_empty();
        tagged.then_some(replaces)
    }

    /// Whether this names `dialog`.
    pub fn names(&self, dialog: &DialogRef) -> bool {
        self.call_id == dialog.call_id
            && self.to_tag == dialog.local_tag
            && self.from_tag == dialog.remote_tag
    }
}

/// `value` as the value of a URI header (RFC 3261 §25.1 `hvalue`): what is
/// not unreserved or `[]/?:+$` is percent-encoded (`;` `=` `@` included).
fn escape_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Refer-To of a REFER whose target is `refer_to` (a URI, or a
/// name-addr already in angle brackets).
pub(super) fn refer_to(refer_to: &str) -> ReferTo {
    match refer_to.trim_start().starts_with('<') {
        true => ReferTo::new(refer_to),
        false => ReferTo::new(format!("<{refer_to}>")),
    }
}

/// The final status of siphon's REFER; `None` when nothing answered.
pub(super) fn refer_status(result: rsipstack::Result<Option<Response>>) -> Option<u16> {
    match result {
        Ok(resp) => resp.map(|r| r.status_code.code()),
        Err(e) => {
            debug!(error = %e, "REFER failed");
            None
        }
    }
}

/// The status line of a `message/sipfrag` body (RFC 3420), e.g.
/// `SIP/2.0 180 Ringing`: its code.
pub(super) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let mut words = line.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = words.next()?.parse().ok()?;
    (100..=699).contains(&code).then_some(code)
}

/// Whether a NOTIFY's Subscription-State ends the subscription.
fn terminated(req: &Request) -> bool {
    req.headers
        .iter()
        .filter_map(|h| stack::header_value(h, "subscription-state"))
        .any(|v| v.trim().to_ascii_lowercase().starts_with("terminated"))
}

/// What a NOTIFY of siphon's REFER said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The status of the transferee's INVITE (the sipfrag's code).
    pub code: u16,
    /// The subscription ended with it: no more NOTIFYs come.
    pub last: bool,
}

/// Answer an in-dialog NOTIFY: 200 for a `refer` event with a sipfrag
/// body, whose progress is returned; 489 (Bad Event) for another event,
/// 400 for a body that is no sipfrag.
pub(super) async fn notified(req: &Request, handle: TransactionHandle) -> Option<Progress> {
    let event = req
        .headers
        .iter()
        .find_map(|h| stack::header_value(h, "event"));
    let is_refer = event.as_deref().is_some_and(|e| {
        let e = e.trim().to_ascii_lowercase();
        e == "refer" || e.starts_with("refer;")
    });
    if !is_refer {
        handle.reply(StatusCode::from(489)).await.ok();
        return None;
    }
    let Some(code) = sipfrag_status(&req.body) else {
        debug!("NOTIFY without a sipfrag status line");
        handle.reply(StatusCode::BadRequest).await.ok();
        return None;
    };
    handle.reply(StatusCode::OK).await.ok();
    Some(Progress {
        code,
        last: terminated(req) || code >= 200,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replaces_target_escapes_the_dialog_and_swaps_the_tags() {
        let dialog = DialogRef {
            call_id: "abc@10.0.0.1".into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            remote_target: "sip:2000@10.0.0.5:5060;transport=tcp?X=y".into(),
        };
        assert_eq!(
            dialog.replaces_target(),
            "<sip:2000@10.0.0.5:5060;transport=tcp?Replaces=abc%4010.0.0.1%3Bto-tag%3Dtheirs%3Bfrom-tag%3Dours>"
        );
    }

    #[test]
    fn a_replaces_header_names_a_dialog_by_siphons_tag_and_the_peers() {
        let r = Replaces::parse("abc@h;to-tag=ours;from-tag=theirs;early-only").expect("valid");
        assert!(r.early_only);
        let dialog = DialogRef {
            call_id: "abc@h".into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            remote_target: "sip:x@y".into(),
        };
        assert!(r.names(&dialog));
        let swapped = Replaces::parse("abc@h;to-tag=theirs;from-tag=ours").expect("valid");
        assert!(!swapped.names(&dialog));
        assert_eq!(Replaces::parse("abc@h;to-tag=ours"), None);
        assert_eq!(Replaces::parse(";to-tag=a;from-tag=b"), None);
        // What siphon's own attended transfer sends, once unescaped.
        let sent = "abc@h;to-tag=theirs;from-tag=ours";
        assert_eq!(
            Replaces::parse(sent).map(|r| r.to_tag),
            Some("theirs".into())
        );
    }

    #[test]
    fn a_sipfrag_gives_its_status_code() {
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying\r\n"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(
            sipfrag_status(b"sip/2.0 486 Busy Here\r\nVia: x\r\n"),
            Some(486)
        );
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 99 Low"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
    }

    #[test]
    fn a_bare_uri_is_put_in_angle_brackets() {
        assert_eq!(refer_to("sip:1000@pbx").value(), "<sip:1000@pbx>");
        let attended = "<sip:2000@h?Replaces=a%3Bb>";
        assert_eq!(refer_to(attended).value(), attended);
    }
}
