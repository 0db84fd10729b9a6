//! A request's header block rewritten in its canonical spelling, for the
//! valid messages rsipstack's parser reads wrongly.
//!
//! RFC 3261 §7.3.1 lets a header value fold over several lines and puts
//! optional whitespace around the separators of its parameters (`SWS`
//! around `=`, `;`, `,`, `/` and `:` in §25.1), so `;\r\n  tag = 98asjd8`
//! is a From tag (RFC 4475 §3.1.1.1). rsipstack finds no tag there and
//! cannot key the transaction. The guard retries such a request once in the
//! form written here: every header on one line, no whitespace around those
//! separators outside quoted strings and `<...>`, the body untouched (so
//! Content-Length still holds). A request that parses as received is never
//! rewritten.

/// Separators whose surrounding whitespace carries no meaning outside
/// quoted strings and angle brackets.
const SEPARATORS: &[char] = &['=', ';', ',', '/', ':'];

/// The message with its headers in canonical form; `None` when there is no
/// header block to rewrite.
pub(super) fn canonical(msg: &[u8]) -> Option<Vec<u8>> {
    let end = msg.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&msg[..end]).ok()?;
    let (start, _) = head.split_once("\r\n")?;
    let mut out = String::with_capacity(msg.len());
    out.push_str(start);
    out.push_str("\r\n");
    for line in super::ingress::header_lines(head) {
        let (name, value) = line.split_once(':')?;
        out.push_str(name.trim());
        out.push_str(": ");
        out.push_str(&tight(value.trim()));
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&msg[end + 4..]);
    Some(bytes)
}

/// `value` without whitespace around separators, outside quotes and `<>`.
fn tight(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    for (c, bare) in bare_chars(value) {
        if !bare {
            out.push(c);
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        let separator = SEPARATORS.contains(&c);
        // A space survives only between two words (a display name's tokens,
        // "SIP/2.0/UDP host"); next to a separator it is dropped.
        let after_separator = out.ends_with(SEPARATORS);
        if pending_space && !separator && !after_separator && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// Each char of a header value, and whether it stands outside quoted
/// strings and `<...>`: an opening `"` or `<` does, what follows it up to
/// and with the closing one does not.
pub(super) fn bare_chars(value: &str) -> impl Iterator<Item = (char, bool)> + '_ {
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    value.chars().map(move |c| {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            return (c, false);
        }
        if angle {
            angle = c != '>';
            return (c, false);
        }
        quoted = c == '"';
        angle = c == '<';
        (c, true)
    })
}

#[cfg(test)]
mod tests {
    use super::{canonical, tight};

    #[test]
    fn whitespace_around_separators_goes_and_words_keep_one_space() {
        assert_eq!(
            tight("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"),
            "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
        );
        assert_eq!(
            tight("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw"),
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw"
        );
        assert_eq!(
            tight("\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam = newvalue ; q = 0.33"),
            "\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com>;newparam=newvalue;q=0.33"
        );
        // Quotes and angle brackets keep their inside as it is.
        assert_eq!(
            tight("\"a = b ; c\" <sip:x;y = z>"),
            "\"a = b ; c\" <sip:x;y = z>"
        );
        assert_eq!(tight("J Rosenberg <sip:j@x>"), "J Rosenberg <sip:j@x>");
    }

    #[test]
    fn folded_headers_join_and_the_body_stays() {
        let msg = b"INVITE sip:a@b SIP/2.0\r\nfrom   : <sip:j@x>\r\n  ;\r\n  tag = 98\r\ncseq: 0009\r\n  INVITE\r\nContent-Length: 5\r\n\r\na = b";
        let out = canonical(msg).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "INVITE sip:a@b SIP/2.0\r\nfrom: <sip:j@x>;tag=98\r\ncseq: 0009 INVITE\r\nContent-Length: 5\r\n\r\na = b"
        );
        assert_eq!(canonical(b"INVITE sip:a@b SIP/2.0\r\nVia: x"), None);
    }
}
