//! Request rules the guard adds to what rsipstack's parser checks. rsipstack
//! is liberal: it takes a second Call-ID or Content-Length, an unbalanced
//! quote, a `<uri>` in the request line and any URI scheme, and it never
//! looks at `Require`. Each rule here answers one of the RFC 4475 torture
//! cases the way RFC 3261 asks.

use super::ingress::is_header;
use super::ingress_canon::bare_chars;

/// Why a request is refused (the counted reason) and with which code.
pub(crate) type Refusal = (&'static str, u16);

/// Option tags siphon's UAs honour in `Require` (RFC 3261 §8.2.2.3):
/// those of `Supported`, and 100rel. A PBX's INVITE with Replaces usually
/// carries `Require: replaces` (RFC 3891 §6.1).
const EXTENSIONS: [&str; 3] = ["timer", "100rel", "replaces"];

/// Headers that carry one value (RFC 3261 §20): a second copy makes the
/// request ambiguous (RFC 4475 §3.3.8, §3.3.9).
const SINGLE: [(&str, &str); 6] = [
    ("from", "f"),
    ("to", "t"),
    ("call-id", "i"),
    ("cseq", ""),
    ("max-forwards", ""),
    ("content-length", "l"),
];

/// Headers whose value is a name-addr, where a display name may be quoted.
const NAME_ADDR: [(&str, &str); 3] = [("from", "f"), ("to", "t"), ("contact", "m")];

/// Checks on the request line and the header lines that need no parser.
pub(crate) fn syntax(method: &str, uri: &str, lines: &[String]) -> Option<Refusal> {
    request_uri(uri)
        .or_else(|| repeated(lines))
        .or_else(|| unbalanced_quotes(lines))
        .or_else(|| empty_elements(lines))
        .or_else(|| comma_in_address(lines))
        .or_else(|| cseq_mismatch(method, lines))
}

/// Headers made of `;` parameters and `,` list elements, where an empty
/// one (`;;`, `,,`, a trailing `;`) is a syntax error (RFC 4475 §3.1.2.1).
const PARAMETERISED: [(&str, &str); 6] = [
    ("via", "v"),
    ("contact", "m"),
    ("from", "f"),
    ("to", "t"),
    ("route", ""),
    ("record-route", ""),
];

fn empty_elements(lines: &[String]) -> Option<Refusal> {
    let parameterised = |l: &&String| PARAMETERISED.iter().any(|(f, s)| is_header(l, f, s));
    let bad = lines
        .iter()
        .filter(parameterised)
        .any(|l| has_empty_element(value(l)));
    bad.then_some(("empty_parameter", 400))
}

/// What follows the header name and colon.
fn value(line: &str) -> &str {
    line.split_once(':').map_or("", |(_, v)| v)
}

/// A `;` or `,` with nothing before it (since the start or the last
/// separator) or nothing after it, outside quoted strings and `<...>`.
fn has_empty_element(value: &str) -> bool {
    // Whether the element being read has anything in it yet.
    let mut filled = false;
    for (c, bare) in bare_chars(value) {
        match c {
            _ if !bare => {}
            ';' | ',' if !filled => return true,
            ';' | ',' => filled = false,
            c if c.is_whitespace() => {}
            _ => filled = true,
        }
    }
    !filled && value.trim_end().ends_with([';', ','])
}

/// From and To hold one address: a comma outside quotes and `<...>` is a
/// display name that needed quotes (RFC 4475 §3.1.2.15, `Bell, Alexander`)
/// or a URI that needed brackets (RFC 3261 §20.10).
fn comma_in_address(lines: &[String]) -> Option<Refusal> {
    let address = |l: &&String| is_header(l, "from", "f") || is_header(l, "to", "t");
    let bad = lines
        .iter()
        .filter(address)
        .any(|l| bare_chars(value(l)).any(|(c, bare)| bare && c == ','));
    bad.then_some(("bad_header", 400))
}

/// `<...>` around the URI (§3.1.2.7) or URI headers (§3.1.2.11) are not
/// allowed in a Request-URI (RFC 3261 §19.1.5); a scheme other than
/// sip, sips or tel cannot be served (416, §3.3.2).
fn request_uri(uri: &str) -> Option<Refusal> {
    // `?` is legal in the user part; after the host it starts headers.
    let host = uri.rsplit('@').next().unwrap_or(uri);
    if uri.contains(['<', '>']) || host.contains('?') {
        return Some(("bad_request_uri", 400));
    }
    let scheme = uri.split(':').next().unwrap_or("");
    let known = ["sip", "sips", "tel"];
    if !known.iter().any(|k| scheme.eq_ignore_ascii_case(k)) {
        return Some(("unsupported_uri_scheme", 416));
    }
    let sip = !scheme.eq_ignore_ascii_case("tel");
    (sip && bare_ipv6(uri)).then_some(("bad_request_uri", 400))
}

/// An IPv6 host must be in brackets (RFC 3261 §25.1; RFC 5118 §4.2):
/// more than one colon in an unbracketed host:port is malformed.
fn bare_ipv6(uri: &str) -> bool {
    let rest = uri.split_once(':').map_or("", |(_, r)| r);
    let hostport = rest.rsplit('@').next().unwrap_or(rest);
    let hostport = hostport.split([';', '?']).next().unwrap_or("");
    !hostport.starts_with('[') && hostport.matches(':').count() > 1
}

fn repeated(lines: &[String]) -> Option<Refusal> {
    let twice = SINGLE.iter().any(|(full, short)| {
        let mut copies = lines.iter().filter(|l| is_header(l, full, short));
        copies.next().is_some() && copies.next().is_some()
    });
    twice.then_some(("repeated_header", 400))
}

fn unbalanced_quotes(lines: &[String]) -> Option<Refusal> {
    let name_addr = |l: &&String| NAME_ADDR.iter().any(|(f, s)| is_header(l, f, s));
    let bad = lines.iter().filter(name_addr).any(|l| !quotes_balance(l));
    bad.then_some(("bad_header", 400))
}

/// Whether every quoted string closes (a backslash escapes inside one).
fn quotes_balance(line: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}

/// The CSeq method must be the request's (§3.1.2.17, §3.1.2.18), checked
/// before an unknown method would get 501.
fn cseq_mismatch(method: &str, lines: &[String]) -> Option<Refusal> {
    let line = lines.iter().find(|l| is_header(l, "cseq", ""))?;
    let value = line.split_once(':').map(|(_, v)| v)?;
    let tag = value.split_whitespace().nth(1)?;
    (tag != method).then_some(("bad_header", 400))
}

/// Control characters (NUL included) outside a quoted-pair have no place in
/// a header block (RFC 3261 §25.1); only a backslash may precede one, as in RFC
/// 4475's `intmeth`.
pub(crate) fn stray_controls(head: &[u8]) -> bool {
    let control = |b: u8| (b < 0x20 && !b"\r\n\t".contains(&b)) || b == 0x7f;
    head.iter()
        .enumerate()
        .any(|(i, &b)| control(b) && (i == 0 || head[i - 1] != b'\\'))
}

/// The option tags in `Require` that siphon does not support.
pub(crate) fn unsupported(lines: &[String]) -> Vec<String> {
    let values = lines
        .iter()
        .filter(|l| is_header(l, "require", ""))
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.to_string()));
    let tags: Vec<String> = values
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect();
    let known = |t: &String| EXTENSIONS.iter().any(|e| t.eq_ignore_ascii_case(e));
    tags.into_iter().filter(|t| !known(t)).collect()
}

/// 420 when `Require` names an extension siphon lacks (RFC 3261 §8.2.2.3);
/// CANCEL and ACK are exempt.
pub(crate) fn require(method: &str, lines: &[String]) -> Option<Refusal> {
    if matches!(method, "CANCEL" | "ACK") || unsupported(lines).is_empty() {
        return None;
    }
    Some(("bad_extension", 420))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.split("\r\n").map(String::from).collect()
    }

    #[test]
    fn request_uris() {
        assert_eq!(request_uri("sip:a@example.com"), None);
        assert_eq!(request_uri("SIPS:a@example.com"), None);
        assert_eq!(request_uri("tel:+4912345"), None);
        assert_eq!(request_uri("sip:we?ird@example.com"), None);
        assert_eq!(
            request_uri("<sip:a@example.com>"),
            Some(("bad_request_uri", 400))
        );
        assert_eq!(
            request_uri("sip:a@example.com?Route=%3Csip:x%3E"),
            Some(("bad_request_uri", 400))
        );
        assert_eq!(request_uri("sip:[2001:db8::10]:5070"), None);
        assert_eq!(request_uri("sip:user:pw@example.com:5060"), None);
        assert_eq!(
            request_uri("sip:2001:db8::10"),
            Some(("bad_request_uri", 400))
        );
        assert_eq!(
            request_uri("im:user@example.com"),
            Some(("unsupported_uri_scheme", 416))
        );
    }

    #[test]
    fn single_valued_headers_appear_once() {
        let ok = lines("From: a;tag=1\r\nTo: b\r\nContact: <sip:x>\r\nContact: <sip:y>");
        assert_eq!(repeated(&ok), None);
        for twice in [
            "l: 5\r\nContent-Length: 6",
            "Call-ID: a\r\ni: b",
            "To: a\r\nTo: b",
        ] {
            assert_eq!(repeated(&lines(twice)), Some(("repeated_header", 400)));
        }
    }

    #[test]
    fn quotes() {
        assert!(quotes_balance(r#"From: "J \"R\"" <sip:a@b>;tag=1"#));
        assert!(quotes_balance("To: <sip:a@b>"));
        assert!(!quotes_balance(
            r#"To: "Mr. J. User <sip:j.user@example.com>"#
        ));
        assert!(!quotes_balance(r#"From: "escaped end\" <sip:a@b>"#));
        // A lone quote is legal in a Call-ID, which is not checked.
        assert_eq!(unbalanced_quotes(&lines("Call-ID: a\"b")), None);
    }

    #[test]
    fn empty_parameters_and_list_elements() {
        assert!(has_empty_element(" SIP/2.0/UDP 192.0.2.15;;,;,,"));
        assert!(has_empty_element(" \"Joe\" <sip:joe@example.org>;;;;"));
        assert!(has_empty_element(" <sip:a@b>;"));
        assert!(has_empty_element(" , <sip:a@b>"));
        assert!(!has_empty_element(
            " SIP/2.0/UDP 192.0.2.15;branch=z9hG4bK1;rport"
        ));
        assert!(!has_empty_element(" \";;,,\" <sip:a@b;;>;tag=1, <sip:c@d>"));
        assert!(!has_empty_element(
            " sip:caller@example.net;tag=134161461246"
        ));
        let bad = lines("Via: SIP/2.0/UDP h;;\r\nFrom: <sip:a@b>;tag=1\r\n");
        assert_eq!(empty_elements(&bad), Some(("empty_parameter", 400)));
        // Other headers may hold such text.
        let other = lines("Subject: ;;,,\r\nFrom: <sip:a@b>;tag=1\r\n");
        assert_eq!(empty_elements(&other), None);
    }

    #[test]
    fn an_unquoted_comma_in_from_or_to_is_refused() {
        let baddn = lines("From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43\r\n");
        assert_eq!(comma_in_address(&baddn), Some(("bad_header", 400)));
        let quoted = lines("t: \"Watson, Thomas\" <sip:t,w@example.org>\r\n");
        assert_eq!(comma_in_address(&quoted), None);
        let contact = lines("Contact: <sip:a@b>, <sip:c@d>\r\n");
        assert_eq!(comma_in_address(&contact), None);
    }

    #[test]
    fn cseq_method_must_match() {
        let l = lines("CSeq: 0009 INVITE");
        assert_eq!(cseq_mismatch("INVITE", &l), None);
        assert_eq!(cseq_mismatch("OPTIONS", &l), Some(("bad_header", 400)));
        assert_eq!(cseq_mismatch("NEWMETHOD", &l), Some(("bad_header", 400)));
    }

    #[test]
    fn controls_only_inside_quoted_pairs() {
        assert!(!stray_controls(
            b"To: \"BEL:\\\x07 NUL:\\\x00\" <sip:a@b>\r\nl: 0"
        ));
        assert!(stray_controls(b"From: <sip:pr\x00be@b>"));
        assert!(stray_controls(b"\x7fOPTIONS"));
    }

    #[test]
    fn require_names_only_known_extensions() {
        let known = lines("Require: timer, 100rel");
        assert_eq!(require("INVITE", &known), None);
        // Supported says replaces, so an INVITE with Replaces may require it.
        assert_eq!(require("INVITE", &lines("Require: replaces")), None);
        let bad = lines("Require: nothingSupportsThis, timer\r\nRequire: either");
        assert_eq!(require("OPTIONS", &bad), Some(("bad_extension", 420)));
        assert_eq!(unsupported(&bad), ["nothingSupportsThis", "either"]);
        assert_eq!(require("CANCEL", &bad), None);
    }
}
