//! Audio codecs as they appear on an m-line: payload type, rtpmap, fmtp.

use sdp_types::Media;

/// The encoding name of RFC 4733 DTMF events.
pub const TELEPHONE_EVENT: &str = "telephone-event";

/// One payload format of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// RTP payload type number.
    pub pt: u8,
    /// Encoding name as written (e.g. "opus", "PCMU").
    pub name: String,
    /// RTP clock rate in Hz (8000 for G722, per RFC 3551).
    pub clock: u32,
    /// Channel count (1 unless the rtpmap says otherwise).
    pub channels: u16,
    /// The a=fmtp parameters, verbatim.
    pub fmtp: Option<String>,
}

impl Codec {
    /// Builds a codec without fmtp.
    pub fn new(pt: u8, name: &str, clock: u32, channels: u16) -> Self {
        Codec {
            pt,
            name: name.to_owned(),
            clock,
            channels,
            fmtp: None,
        }
    }

    /// Whether this is an RFC 4733 telephone-event format.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case(TELEPHONE_EVENT)
    }

    /// Same encoding (name case-insensitive, same clock), whatever the PT.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name) && self.clock == other.clock
    }

    /// The value of an a=rtpmap line for this codec.
    pub fn rtpmap(&self) -> String {
        if self.channels > 1 {
            format!("{} {}/{}/{}", self.pt, self.name, self.clock, self.channels)
        } else {
            format!("{} {}/{}", self.pt, self.name, self.clock)
        }
    }

    /// The value of an a=fmtp line for this codec, if it has parameters.
    pub fn fmtp_value(&self) -> Option<String> {
        self.fmtp.as_ref().map(|f| format!("{} {}", self.pt, f))
    }

    /// The same codec under another payload type.
    pub fn with_pt(&self, pt: u8) -> Codec {
        Codec { pt, ..self.clone() }
    }
}

/// The RFC 3551 static audio payload types a gateway may meet.
const STATIC: &[(u8, &str, u32)] = &[
    (0, "PCMU", 8000),
    (3, "GSM", 8000),
    (4, "G723", 8000),
    (8, "PCMA", 8000),
    (9, "G722", 8000),
    (13, "CN", 8000),
    (18, "G729", 8000),
];

/// The codec a static payload type stands for when no rtpmap is given.
pub fn static_codec(pt: u8) -> Option<Codec> {
    STATIC
        .iter()
        .find(|(p, _, _)| *p == pt)
        .map(|(p, name, clock)| Codec::new(*p, name, *clock, 1))
}

/// The static payload type of an encoding name, if it has one.
pub fn static_pt(name: &str) -> Option<u8> {
    STATIC
        .iter()
        .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
        .map(|(p, _, _)| *p)
}

/// The payload formats of an m-line in m-line order.
///
/// Formats that are neither static nor described by an rtpmap are skipped:
/// nobody can use a payload type whose meaning is unknown.
pub fn media_codecs(media: &Media) -> Vec<Codec> {
    media_pts(media)
        .into_iter()
        .filter_map(|pt| rtpmap_or_static(media, pt))
        .collect()
}

/// The codec behind one payload type of an m-line, with its fmtp.
pub fn rtpmap_or_static(media: &Media, pt: u8) -> Option<Codec> {
    let mut codec = rtpmap_codec(media, pt).or_else(|| static_codec(pt))?;
    codec.fmtp = fmtp_of(media, pt);
    Some(codec)
}

/// The payload type numbers listed on an m-line.
pub fn media_pts(media: &Media) -> Vec<u8> {
    media
        .fmt
        .split_ascii_whitespace()
        .filter_map(|f| f.parse::<u8>().ok())
        .collect()
}

fn rtpmap_codec(media: &Media, pt: u8) -> Option<Codec> {
    media
        .attributes_typed::<sdp_types::RtpMap>()
        .filter_map(Result::ok)
        .find(|m| m.payload_type == pt)
        .map(|m| {
            let channels = m
                .encoding_params
                .as_deref()
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(1);
            Codec::new(pt, m.encoding_name.trim(), m.clock_rate, channels)
        })
}

fn fmtp_of(media: &Media, pt: u8) -> Option<String> {
    media.get_attribute_values("fmtp").flatten().find_map(|v| {
        let (p, params) = v.split_once(' ')?;
        (p.parse::<u8>().ok()? == pt).then(|| params.trim().to_owned())
    })
}

/// Splits codecs into (audio codecs, telephone-event entries).
pub fn split_events(codecs: Vec<Codec>) -> (Vec<Codec>, Vec<Codec>) {
    codecs.into_iter().partition(|c| !c.is_telephone_event())
}

/// Distinct codec names, in first-seen order, for error messages.
pub fn names(codecs: &[Codec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in codecs {
        if !out.iter().any(|n| n.eq_ignore_ascii_case(&c.name)) {
            out.push(c.name.clone());
        }
    }
    out
}

/// The answered telephone-event to use: one we offered, preferably at the
/// audio codec's clock, since event timestamps run on the stream's clock.
pub fn pick_event(answered: &[Codec], offered: &[&Codec], clock: u32) -> Option<Codec> {
    let ours = |a: &&Codec| a.is_telephone_event() && offered.iter().any(|o| o.same_format(a));
    answered
        .iter()
        .filter(ours)
        .find(|a| a.clock == clock)
        .or_else(|| answered.iter().find(ours))
        .cloned()
}

/// A payload type in the dynamic range not used by any of `taken`.
pub fn free_dynamic_pt(taken: &[u8]) -> Option<u8> {
    // 101 is what most PBXs use for telephone-event: prefer it when free.
    std::iter::once(101)
        .chain(96..=127)
        .find(|pt| !taken.contains(pt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(text: &str) -> Media {
        let sdp = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{text}");
        let session = sdp_types::Session::parse(sdp.as_bytes()).expect("test SDP parses");
        session.medias.into_iter().next().expect("one m-line")
    }

    #[test]
    fn static_payloads_without_rtpmap_are_known() {
        let m = media("m=audio 4000 RTP/AVP 0 8 9 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
        let codecs = media_codecs(&m);
        let names: Vec<_> = codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["PCMU", "PCMA", "G722", "telephone-event"]);
        assert_eq!(codecs[2].clock, 8000);
        assert_eq!(codecs[3].fmtp.as_deref(), Some("0-16"));
    }

    #[test]
    fn unknown_dynamic_payloads_and_junk_are_skipped() {
        let m = media("m=audio 4000 RTP/AVP 96 x 0\r\na=rtpmap:bad\r\n");
        let codecs = media_codecs(&m);
        assert_eq!(codecs.len(), 1);
        assert_eq!(codecs[0].name, "PCMU");
    }

    #[test]
    fn rtpmap_with_channels_round_trips() {
        let m = media("m=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n");
        let c = &media_codecs(&m)[0];
        assert_eq!((c.clock, c.channels), (48000, 2));
        assert_eq!(c.rtpmap(), "111 opus/48000/2");
        assert_eq!(Codec::new(9, "G722", 8000, 1).rtpmap(), "9 G722/8000");
    }

    #[test]
    fn free_pt_prefers_101() {
        assert_eq!(free_dynamic_pt(&[0, 8]), Some(101));
        assert_eq!(free_dynamic_pt(&[101, 96]), Some(97));
    }
}
