//! The input guard: every SIP message from the network passes these pure
//! checks before rsipstack sees it.
//!
//! Why this layer exists: rsipstack silently drops a datagram it cannot
//! parse, never answers a request whose Via/CSeq/From/To it cannot type (the
//! transaction key fails and the error is only logged), reads a stream
//! message without Content-Length as if it had none, and closes a TCP
//! connection on any parse error. siphon instead answers what can be answered
//! with a 400 (RFC 3261 §8.2.6 needs Via, From, To, Call-ID and CSeq to build
//! one), drops the rest, and counts every case by reason.

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Method, Request, SipMessage};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};

use super::ingress_canon::canonical;
use super::ingress_rules as rules;
use super::stack::ALLOW;

/// What to do with one received message.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Well-formed: hand it to the stack. The bytes it was read from, when
    /// they are not those received (a valid spelling rsipstack misreads,
    /// rewritten by `ingress_canon`): a UDP datagram goes on as these.
    Accept(Box<SipMessage>, Option<Vec<u8>>),
    /// Refused: send `response` back to the source.
    Refuse {
        reason: &'static str,
        response: Vec<u8>,
    },
    /// Dropped: no response is possible (or allowed, for responses and ACK).
    Drop { reason: &'static str },
}

/// How the next message in a stream buffer is delimited (RFC 3261 §18.3).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Need more bytes.
    Incomplete,
    /// A CRLF keepalive of this many bytes; `pong` when it must be answered.
    Keepalive { len: usize, pong: bool },
    /// A whole message of this many bytes.
    Message(usize),
    /// The stream can no longer be split into messages; `head` is the header
    /// block length when one was found (to try a 400 before closing).
    Broken {
        reason: &'static str,
        head: Option<usize>,
    },
}

const CRLF2: &[u8] = b"\r\n\r\n";

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == CRLF2)
}

/// Frame the next message in `buf` (a stream transport), enforcing `max`.
pub(crate) fn frame(buf: &[u8], max: usize) -> Frame {
    if buf.starts_with(CRLF2) {
        return Frame::Keepalive { len: 4, pong: true };
    }
    if buf.starts_with(b"\r\n") {
        return Frame::Keepalive {
            len: 2,
            pong: false,
        };
    }
    let Some(end) = header_end(&buf[..buf.len().min(max)]) else {
        return if buf.len() > max {
            Frame::Broken {
                reason: "oversize",
                head: None,
            }
        } else {
            Frame::Incomplete
        };
    };
    let head_len = end + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let broken = |reason| Frame::Broken {
        reason,
        head: Some(head_len),
    };
    let cl = match content_length(&head) {
        None => return broken("missing_content_length"),
        Some(Err(())) => return broken("bad_content_length"),
        Some(Ok(cl)) => cl,
    };
    match head_len.checked_add(cl) {
        Some(total) if total <= max => {
            if buf.len() >= total {
                Frame::Message(total)
            } else {
                Frame::Incomplete
            }
        }
        _ => broken("oversize"),
    }
}

/// Header lines after the start line, with folded continuation lines joined.
pub(super) fn header_lines(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if !line.is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

fn header_name(line: &str) -> Option<&str> {
    line.split_once(':').map(|(n, _)| n.trim())
}

/// Whether `line` is the header `full` (or its compact form `short`).
pub(super) fn is_header(line: &str, full: &str, short: &str) -> bool {
    header_name(line).is_some_and(|n| {
        n.eq_ignore_ascii_case(full) || (!short.is_empty() && n.eq_ignore_ascii_case(short))
    })
}

/// `None` when absent, `Some(Err)` when unparsable.
fn content_length(head: &str) -> Option<Result<usize, ()>> {
    let line = header_lines(head)
        .into_iter()
        .find(|l| is_header(l, "content-length", "l"))?;
    let value = line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
    Some(value.parse::<usize>().map_err(|_| ()))
}

/// Whether the Content-Type is `application/sdp` (any parameters, any case).
fn is_sdp(lines: &[String]) -> bool {
    let line = lines.iter().find(|l| is_header(l, "content-type", "c"));
    let value = line.and_then(|l| l.split_once(':')).map(|(_, v)| v);
    let media = value.and_then(|v| v.split(';').next()).unwrap_or("");
    media.trim().eq_ignore_ascii_case("application/sdp")
}

const REQUIRED: [(&str, &str); 5] = [
    ("via", "v"),
    ("from", "f"),
    ("to", "t"),
    ("call-id", "i"),
    ("cseq", ""),
];

/// Refuse with `code` if the header block of a request allows building a
/// response (RFC 3261 §8.2.6), else drop. Never answers responses or ACK.
pub(crate) fn refuse(head: &[u8], reason: &'static str, code: u16) -> Verdict {
    let text = String::from_utf8_lossy(head);
    let start = text.split("\r\n").next().unwrap_or("");
    if start.starts_with("SIP/") || start.starts_with("ACK ") {
        return Verdict::Drop { reason };
    }
    let lines = header_lines(&text);
    let has = |(full, short): &(&str, &str)| lines.iter().any(|l| is_header(l, full, short));
    if !REQUIRED.iter().all(has) {
        return Verdict::Drop { reason };
    }
    Verdict::Refuse {
        reason,
        response: build_response(&lines, code),
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        501 => "Not Implemented",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "Bad Request",
    }
}

/// A minimal response copying Via, From, To, Call-ID and CSeq (§8.2.6.2).
fn build_response(lines: &[String], code: u16) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {}\r\n", reason_phrase(code));
    for (full, short) in REQUIRED {
        for line in lines.iter().filter(|l| is_header(l, full, short)) {
            out.push_str(line);
            if full == "to" && !line.to_ascii_lowercase().contains("tag=") {
                // A final response needs a To tag; any fixed token works, as
                // no dialog can come out of a refused request.
                out.push_str(";tag=siphon400");
            }
            out.push_str("\r\n");
            if full != "via" {
                break;
            }
        }
    }
    match code {
        // The methods siphon does understand (RFC 3261 §21.5.2).
        501 => out.push_str(&format!("Allow: {ALLOW}\r\n")),
        // The one body type it takes (§21.4.13).
        415 => out.push_str("Accept: application/sdp\r\n"),
        // The extensions it lacks (§8.2.2.3).
        420 => {
            let tags = rules::unsupported(lines).join(", ");
            out.push_str(&format!("Unsupported: {tags}\r\n"));
        }
        _ => {}
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// Check one complete message (a datagram or a framed stream message).
pub(crate) fn check_message(msg: &[u8], max: usize) -> Verdict {
    let end = header_end(msg);
    if msg.len() > max {
        return match end {
            Some(end) => refuse(&msg[..end + 4], "oversize", 513),
            None => Verdict::Drop { reason: "oversize" },
        };
    }
    let Some(end) = end else {
        return Verdict::Drop {
            reason: "truncated",
        };
    };
    let head = &msg[..end + 4];
    let text = String::from_utf8_lossy(&msg[..end]);
    let start = text.split("\r\n").next().unwrap_or("");
    if start.starts_with("SIP/") {
        return check_response(msg);
    }
    let lines = header_lines(&text);
    if !REQUIRED
        .iter()
        .all(|(f, s)| lines.iter().any(|l| is_header(l, f, s)))
    {
        return Verdict::Drop {
            reason: "missing_header",
        };
    }
    if std::str::from_utf8(&msg[..end]).is_err() || rules::stray_controls(&msg[..end]) {
        return refuse(head, "garbage", 400);
    }
    match request_line(start) {
        Line::Valid => {}
        Line::Version => return refuse(head, "bad_version", 505),
        Line::Broken => return refuse(head, "bad_request_line", 400),
    }
    let body_len = match content_length(&text) {
        Some(Err(())) => return refuse(head, "bad_content_length", 400),
        Some(Ok(cl)) if msg.len() - head.len() < cl => return refuse(head, "truncated", 400),
        Some(Ok(cl)) => cl,
        None => msg.len() - head.len(),
    };
    if let Some((reason, code)) = request_rules(start, &lines, body_len) {
        return refuse(head, reason, code);
    }
    let verdict = parse_request(msg, head);
    if !matches!(verdict, Verdict::Refuse { .. }) {
        return verdict;
    }
    // Valid folding or spacing that rsipstack misreads (`ingress_canon`).
    let Some(rewritten) = canonical(msg) else {
        return verdict;
    };
    match parse_request(&rewritten, head) {
        Verdict::Accept(msg, _) => Verdict::Accept(msg, Some(rewritten)),
        _ => verdict,
    }
}

fn parse_request(msg: &[u8], head: &[u8]) -> Verdict {
    match SipMessage::try_from(msg) {
        Ok(SipMessage::Request(req)) => check_request(req, head),
        _ => refuse(head, "unparsable", 400),
    }
}

/// The refusal, if any, for a well-framed request with this start line.
fn request_rules(start: &str, lines: &[String], body_len: usize) -> Option<rules::Refusal> {
    let mut parts = start.split(' ');
    let (method, uri) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if let Some(refusal) = rules::syntax(method, uri, lines) {
        return Some(refusal);
    }
    // A method rsipstack has no name for would fail to parse later; it is
    // well-formed, just not known (RFC 3261 §21.5.2).
    if method.parse::<Method>().is_err() {
        return Some(("unknown_method", 501));
    }
    if let Some(refusal) = rules::require(method, lines) {
        return Some(refusal);
    }
    // Offers and answers travel only as SDP here (RFC 3261 §8.2.3).
    let offer = matches!(method, "INVITE" | "UPDATE") && body_len > 0;
    (offer && !is_sdp(lines)).then_some(("unsupported_media_type", 415))
}

/// What a request line is worth.
enum Line {
    Valid,
    /// Well-formed but for another SIP version: 505.
    Version,
    Broken,
}

fn request_line(line: &str) -> Line {
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Line::Broken;
    };
    let shaped = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        && uri.contains(':');
    match version {
        _ if !shaped => Line::Broken,
        "SIP/2.0" => Line::Valid,
        v if v.starts_with("SIP/") => Line::Version,
        _ => Line::Broken,
    }
}

/// The typed views the transaction and dialog layers rely on must parse, or
/// rsipstack would drop the request without an answer.
fn check_request(req: Request, head: &[u8]) -> Verdict {
    // RFC 2543 requests carry no From tag (RFC 4475 §3.4.1); rsipstack keys
    // every transaction on it, and RFC 2543 peers are not supported.
    let tagged = req
        .from_header()
        .is_ok_and(|h| h.tag().is_ok_and(|t| t.is_some()));
    if !tagged {
        return refuse(head, "no_from_tag", 400);
    }
    let typed_ok = TransactionKey::from_request(&req, TransactionRole::Server).is_ok()
        && req.via_header().is_ok_and(|v| v.typed().is_ok())
        && req.from_header().is_ok_and(|h| h.typed().is_ok())
        && req.to_header().is_ok_and(|h| h.typed().is_ok())
        && req
            .cseq_header()
            .is_ok_and(|c| c.seq().is_ok() && c.method().is_ok_and(|m| m == req.method));
    if !typed_ok {
        return refuse(head, "bad_header", 400);
    }
    Verdict::Accept(Box::new(SipMessage::Request(req)), None)
}

fn check_response(msg: &[u8]) -> Verdict {
    let resp = match SipMessage::try_from(msg) {
        Ok(SipMessage::Response(r)) => r,
        _ => {
            return Verdict::Drop {
                reason: "bad_response",
            }
        }
    };
    if TransactionKey::from_response(&resp, TransactionRole::Client).is_err() {
        return Verdict::Drop {
            reason: "bad_response",
        };
    }
    Verdict::Accept(Box::new(SipMessage::Response(resp)), None)
}

#[cfg(test)]
mod tests;
