//! Following a 3xx (RFC 3261 §8.1.3.4): the Contact targets in q order,
//! each tried once, a bounded number of times per call. And telling the
//! caller that the call was forwarded: a 181, History-Info (RFC 7044) or
//! Diversion (RFC 5806) on a provisional response.

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Param, Response};

/// Redirects a call follows at most: past that, the 3xx is the call's end.
pub(super) const MAX_REDIRECTS: u8 = 3;

/// The `sip:`/`sips:` Contact URIs of a 3xx with their q values, in
/// header order; a Contact with no q is 1.0.
pub(super) fn contacts(resp: &Response) -> Vec<(String, f32)> {
    let contacts = resp.typed_contact_headers().unwrap_or_default();
    contacts
        .into_iter()
        .map(|c| {
            let q = c.params.iter().find_map(|p| match p {
                Param::Q(q) => q.to_string().trim().parse::<f32>().ok(),
                _ => None,
            });
            (c.uri.to_string(), q.unwrap_or(1.0))
        })
        .collect()
}

/// Where to go next, best first: the highest q first, header order among
/// equals; targets already tried in this call (a loop) and other schemes
/// (`tel:`, `mailto:` …) are left out.
pub(super) fn targets(mut contacts: Vec<(String, f32)>, tried: &[String]) -> Vec<String> {
    contacts.retain(|(uri, q)| {
        let lower = uri.to_ascii_lowercase();
        let sip = lower.starts_with("sip:") || lower.starts_with("sips:");
        sip && q.is_finite() && !tried.iter().any(|t| same_target(t, uri))
    });
    // Stable: equal q keeps the order of the headers.
    contacts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out: Vec<String> = Vec::with_capacity(contacts.len());
    for (uri, _) in contacts {
        if !out.iter().any(|t| same_target(t, &uri)) {
            out.push(uri);
        }
    }
    out
}

/// Two targets are the same when they differ only in case (host names and
/// schemes are case-insensitive; a user part that differs only in case is
/// the same loop in practice).
fn same_target(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The host part of a SIP URI, for telling whether a redirect stays with
/// the host whose credentials the call carries.
pub(crate) fn host(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    rest.split([';', '?', '>']).next().unwrap_or("")
}

/// Who forwarded a call, and where to, as a provisional response tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarding {
    /// The party that forwarded (Diversion's first entry, else History-Info's first).
    pub from: Option<String>,
    /// Where the call went (History-Info's last entry).
    pub to: Option<String>,
}

/// The forwarding a provisional response with `code` and these header
/// values tells, if it tells any: a 181, or History-Info naming more than
/// one target, or a Diversion.
pub(super) fn forwarding(
    code: u16,
    history_info: &[&str],
    diversion: &[&str],
) -> Option<Forwarding> {
    let history: Vec<String> = history_info.iter().flat_map(|v| angle_uris(v)).collect();
    let diverted: Vec<String> = diversion.iter().flat_map(|v| angle_uris(v)).collect();
    if code != 181 && history.len() < 2 && diverted.is_empty() {
        return None;
    }
    let from = diverted
        .first()
        .or(history.first().filter(|_| history.len() > 1));
    Some(Forwarding {
        from: from.cloned(),
        to: history.last().filter(|_| history.len() > 1).cloned(),
    })
}

/// The URIs between `<` and `>` in a header value, in order, without their
/// `?headers` (History-Info carries Reason there); quoted display names are
/// skipped so that a `<` inside one does not count.
fn angle_uris(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = None;
    for (i, c) in value.char_indices() {
        match c {
            '"' if start.is_none() => quoted = !quoted,
            '<' if !quoted && start.is_none() => start = Some(i + 1),
            '>' if !quoted => {
                if let Some(from) = start.take() {
                    let uri = value[from..i].split('?').next().unwrap_or("").trim();
                    if !uri.is_empty() {
                        out.push(uri.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[(&str, f32)]) -> Vec<(String, f32)> {
        items.iter().map(|(u, q)| (u.to_string(), *q)).collect()
    }

    #[test]
    fn highest_q_first_and_header_order_among_equals() {
        let got = targets(
            list(&[
                ("sip:a@h1", 0.5),
                ("sip:b@h2", 1.0),
                ("sip:c@h3", 0.5),
                ("sips:d@h4", 0.9),
            ]),
            &[],
        );
        assert_eq!(got, ["sip:b@h2", "sips:d@h4", "sip:a@h1", "sip:c@h3"]);
    }

    #[test]
    fn loops_duplicates_and_other_schemes_are_left_out() {
        let tried = ["sip:1000@PBX.example.com".to_string()];
        let got = targets(
            list(&[
                ("sip:1000@pbx.example.com", 1.0),
                ("tel:+15551234", 1.0),
                ("sip:2000@other", 0.7),
                ("SIP:2000@other", 0.3),
                ("sip:x@y", f32::NAN),
            ]),
            &tried,
        );
        assert_eq!(got, ["sip:2000@other"]);
    }

    #[test]
    fn host_of_a_target() {
        assert_eq!(
            host("sip:1000@pbx.example.com:5080;transport=tcp"),
            "pbx.example.com:5080"
        );
        assert_eq!(host("sips:pbx"), "pbx");
        assert_eq!(host("sip:a@b?x=y"), "b");
    }

    #[test]
    fn contacts_are_read_with_their_q() {
        let resp: Response = Response::try_from(
            "SIP/2.0 302 Moved Temporarily\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\n\
             Call-ID: x\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:1@h1>;q=0.2, <sip:2@h2>\r\n\
             Contact: <sip:3@h3;transport=tcp>;q=0.7\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .expect("response");
        let got = contacts(&resp);
        assert_eq!(
            got,
            list(&[
                ("sip:1@h1", 0.2),
                ("sip:2@h2", 1.0),
                ("sip:3@h3;transport=TCP", 0.7)
            ])
        );
    }

    #[test]
    fn a_181_or_forwarding_headers_tell_who_forwarded_where() {
        let history = ["<sip:bob@pbx>;index=1, \"Carol <x>\" <sip:carol@pbx?Reason=SIP%3Bcause%3D302>;index=1.1"];
        let got = forwarding(180, &history, &[]).expect("history");
        assert_eq!(got.from.as_deref(), Some("sip:bob@pbx"));
        assert_eq!(got.to.as_deref(), Some("sip:carol@pbx"));
        let diversion = ["<sip:1000@pbx>;reason=no-answer;counter=1"];
        let got = forwarding(183, &[], &diversion).expect("diversion");
        assert_eq!((got.from.as_deref(), got.to), (Some("sip:1000@pbx"), None));
        assert_eq!(forwarding(181, &[], &[]), Some(Forwarding::default()));
        assert_eq!(forwarding(180, &["<sip:bob@pbx>;index=1"], &[]), None);
        assert_eq!(forwarding(180, &[], &[]), None);
    }
}
