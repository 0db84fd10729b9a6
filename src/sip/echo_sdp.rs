//! The echo extension's SDP: read the audio offer, pick a codec, answer.
//!
//! Deliberately tiny and separate from the gateway's `sdp` module: the echo
//! is a peer for tests and demos and must not share the code it checks.

use std::net::IpAddr;

/// Codecs the echo can answer with, as (encoding name, clock rate).
const SUPPORTED: [(&str, u32); 4] = [
    ("PCMU", 8000),
    ("PCMA", 8000),
    ("G722", 8000),
    ("opus", 48000),
];

/// One payload type of the offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Format {
    pub pt: u8,
    pub name: String,
    pub rate: u32,
    /// Channel count suffix of the rtpmap (`/2` for opus).
    pub channels: Option<String>,
    pub fmtp: Option<String>,
}

/// The chosen codec and telephone-event format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    pub codec: Format,
    pub dtmf: Option<Format>,
    /// SDES keys mirrored from the offer, if it had any.
    pub srtp: Option<Mirrored>,
}

/// SDES on the echo's media: the offer's profile and first `a=crypto`
/// line, answered back as they are. The echo returns each packet unchanged,
/// so the caller gets its own key: it unprotects with the key it protected
/// with (its receive side keeps its own replay window), and the echo needs
/// no SRTP of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mirrored {
    /// `RTP/SAVP`, or `RTP/AVP` for an opportunistic offer.
    pub proto: String,
    /// The `a=crypto` value.
    pub crypto: String,
}

/// The offer's SDES line to mirror, if its audio stream has one.
pub(crate) fn mirrored_srtp(sdp: &str) -> Option<Mirrored> {
    let mut lines = sdp.lines().map(str::trim);
    let m = lines.by_ref().find(|l| l.starts_with("m=audio "))?;
    let proto = m.split_whitespace().nth(2)?.to_string();
    let crypto = lines
        .take_while(|l| !l.starts_with("m="))
        .find_map(|l| l.strip_prefix("a=crypto:"))?
        .to_string();
    Some(Mirrored { proto, crypto })
}

fn static_format(pt: u8) -> Option<Format> {
    let (name, rate) = match pt {
        0 => ("PCMU", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        _ => return None,
    };
    Some(Format {
        pt,
        name: name.into(),
        rate,
        channels: None,
        fmtp: None,
    })
}

/// The payload formats of the first audio stream, in offer order; empty when
/// there is none or it is disabled (port 0).
pub(crate) fn offered_formats(sdp: &str) -> Vec<Format> {
    let mut lines = sdp.lines().map(str::trim);
    let Some(m) = lines.by_ref().find(|l| l.starts_with("m=audio ")) else {
        return Vec::new();
    };
    let mut fields = m.split_whitespace().skip(1);
    if fields.next().is_none_or(|port| port == "0") {
        return Vec::new();
    }
    let pts: Vec<u8> = fields.skip(1).filter_map(|p| p.parse().ok()).collect();
    let attrs: Vec<&str> = lines.take_while(|l| !l.starts_with("m=")).collect();
    pts.into_iter()
        .filter_map(|pt| describe(pt, &attrs))
        .collect()
}

fn attr<'a>(attrs: &[&'a str], key: &str, pt: u8) -> Option<&'a str> {
    let prefix = format!("a={key}:{pt} ");
    attrs
        .iter()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::trim)
}

fn describe(pt: u8, attrs: &[&str]) -> Option<Format> {
    let fmtp = attr(attrs, "fmtp", pt).map(str::to_string);
    let Some(map) = attr(attrs, "rtpmap", pt) else {
        return static_format(pt);
    };
    let mut parts = map.split('/');
    let name = parts.next()?.to_string();
    let rate = parts.next()?.parse().ok()?;
    Some(Format {
        pt,
        name,
        rate,
        channels: parts.next().map(str::to_string),
        fmtp,
    })
}

/// First offered codec the echo supports (and `allowed` permits, when set),
/// plus telephone-event at the same clock rate if offered.
pub(crate) fn choose(offer: &[Format], allowed: Option<&[String]>) -> Option<Choice> {
    let usable = |f: &&Format| {
        SUPPORTED
            .iter()
            .any(|(n, r)| f.name.eq_ignore_ascii_case(n) && f.rate == *r)
            && allowed.is_none_or(|a| a.iter().any(|n| n.eq_ignore_ascii_case(&f.name)))
    };
    let codec = offer.iter().find(usable)?.clone();
    let dtmf = offer
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("telephone-event") && f.rate == codec.rate)
        .cloned();
    Some(Choice {
        codec,
        dtmf,
        srtp: None,
    })
}

fn rtpmap(f: &Format) -> String {
    let mut s = format!("a=rtpmap:{} {}/{}", f.pt, f.name, f.rate);
    if let Some(c) = &f.channels {
        s.push('/');
        s.push_str(c);
    }
    s.push_str("\r\n");
    if let Some(p) = &f.fmtp {
        s.push_str(&format!("a=fmtp:{} {p}\r\n", f.pt));
    }
    s
}

/// The offerer's direction (`sendrecv` when none is given); an RFC 2543
/// hold (`c=0.0.0.0`) counts as `sendonly`: the offerer receives nothing.
pub(crate) fn offered_direction(sdp: &str) -> &'static str {
    let mut direction = "sendrecv";
    let mut zero = false;
    for line in sdp.lines().map(str::trim) {
        match line {
            "a=sendonly" => direction = "sendonly",
            "a=recvonly" => direction = "recvonly",
            "a=inactive" => direction = "inactive",
            "a=sendrecv" => direction = "sendrecv",
            "c=IN IP4 0.0.0.0" => zero = true,
            _ => {}
        }
    }
    match direction {
        "sendrecv" if zero => "sendonly",
        "recvonly" if zero => "inactive",
        d => d,
    }
}

/// The answer's direction for an offered one (RFC 3264 section 6.1).
pub(crate) fn mirror(offered: &str) -> &'static str {
    match offered {
        "sendonly" => "recvonly",
        "recvonly" => "sendonly",
        "inactive" => "inactive",
        _ => "sendrecv",
    }
}

/// The SDP answer for `choice` with media at `ip:port`, in `direction`;
/// `origin` is the o= line's session id and version.
pub(crate) fn answer(
    choice: &Choice,
    ip: IpAddr,
    port: u16,
    origin: (u64, u64),
    direction: &str,
) -> String {
    let (session, version) = origin;
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut pts = choice.codec.pt.to_string();
    if let Some(d) = &choice.dtmf {
        pts.push_str(&format!(" {}", d.pt));
    }
    let proto = choice.srtp.as_ref().map_or("RTP/AVP", |m| m.proto.as_str());
    let mut s = format!(
        "v=0\r\no=siphon-echo {session} {version} IN {family} {ip}\r\ns=echo\r\n\
         c=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} {proto} {pts}\r\n"
    );
    if let Some(m) = &choice.srtp {
        s.push_str(&format!("a=crypto:{}\r\n", m.crypto));
    }
    s.push_str(&rtpmap(&choice.codec));
    if let Some(d) = &choice.dtmf {
        s.push_str(&rtpmap(d));
    }
    s.push_str(&format!("a={direction}\r\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 111 9 0 101 102\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\n\
a=rtpmap:101 telephone-event/48000\r\na=rtpmap:102 telephone-event/8000\r\na=fmtp:102 0-16\r\n";

    #[test]
    fn picks_first_supported_and_matching_dtmf() {
        let offer = offered_formats(OFFER);
        assert_eq!(offer.len(), 5);
        let c = choose(&offer, None).expect("choice");
        assert_eq!(c.codec.name, "opus");
        assert_eq!(c.dtmf.as_ref().map(|d| d.pt), Some(101));

        let only = vec!["PCMU".to_string()];
        let c = choose(&offer, Some(&only)).expect("choice");
        assert_eq!((c.codec.pt, c.codec.name.as_str()), (0, "PCMU"));
        assert_eq!(c.dtmf.as_ref().map(|d| d.pt), Some(102));

        let a = answer(
            &c,
            "127.0.0.1".parse().expect("ip"),
            5000,
            (7, 8),
            "sendrecv",
        );
        assert!(a.contains("o=siphon-echo 7 8 IN IP4 127.0.0.1\r\n"));
        assert!(a.contains("m=audio 5000 RTP/AVP 0 102\r\n"));
        assert!(a.contains("a=rtpmap:102 telephone-event/8000\r\na=fmtp:102 0-16\r\n"));
    }

    #[test]
    fn sdes_offers_get_their_own_line_back() {
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let savp = OFFER.replace("RTP/AVP", "RTP/SAVP") + &format!("a=crypto:{line}\r\n");
        let mut c = choose(&offered_formats(&savp), None).expect("choice");
        c.srtp = mirrored_srtp(&savp);
        let a = answer(
            &c,
            "127.0.0.1".parse().expect("ip"),
            5000,
            (7, 7),
            "sendrecv",
        );
        assert!(a.contains("m=audio 5000 RTP/SAVP 111 101\r\n"), "{a}");
        assert!(a.contains(&format!("a=crypto:{line}\r\n")), "{a}");
        assert_eq!(mirrored_srtp(OFFER), None);
    }

    #[test]
    fn no_common_codec() {
        let offer = offered_formats(&OFFER.replace("111 9 0 101 102", "111 101"));
        let only = vec!["G722".to_string()];
        assert!(choose(&offer, Some(&only)).is_none());
        assert!(offered_formats("v=0\r\nm=audio 0 RTP/AVP 0\r\n").is_empty());
        assert!(offered_formats("garbage").is_empty());
    }

    #[test]
    fn directions_are_mirrored() {
        let hold = OFFER.replace("a=fmtp:102 0-16\r\n", "a=fmtp:102 0-16\r\na=sendonly\r\n");
        assert_eq!(offered_direction(&hold), "sendonly");
        assert_eq!(mirror(offered_direction(&hold)), "recvonly");
        assert_eq!(offered_direction(OFFER), "sendrecv");
        assert_eq!(mirror("sendrecv"), "sendrecv");
        assert_eq!(mirror("recvonly"), "sendonly");
        assert_eq!(mirror("inactive"), "inactive");
        let zero = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(offered_direction(&zero), "sendonly");
        let c = choose(&offered_formats(&hold), None).expect("choice");
        let a = answer(
            &c,
            "127.0.0.1".parse().expect("ip"),
            5000,
            (7, 9),
            "recvonly",
        );
        assert!(a.ends_with("a=recvonly\r\n"), "{a}");
    }
}
