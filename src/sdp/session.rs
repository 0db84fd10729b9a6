//! Reading and writing whole session descriptions on top of sdp-types.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sdp_types::{Attribute, Connection, Media, Origin, Session, Time};

use super::{Malformation, SdpError};

/// One m-line of a description, kept so an answer can mirror the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MLine {
    /// Media type ("audio", "video", "application").
    pub kind: String,
    /// Transport profile as written.
    pub proto: String,
    /// Format list as written (needed to write a rejected line back).
    pub fmt: String,
    /// a=mid, if any.
    pub mid: Option<String>,
}

impl MLine {
    fn of(media: &Media) -> Self {
        MLine {
            kind: media.media.clone(),
            proto: media.proto.clone(),
            fmt: media.fmt.clone(),
            mid: attr(media, "mid").map(str::to_owned),
        }
    }

    /// The port-0 m-line that declines this one in an answer (RFC 3264 §6).
    pub fn rejected(&self) -> Media {
        let mut media = Media {
            media: self.kind.clone(),
            port: 0,
            num_ports: None,
            proto: self.proto.clone(),
            fmt: self.fmt.clone(),
            media_title: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        };
        // Every m-line needs a c= (RFC 8866 §5.7); a declined one gets a null one.
        media.add_connection(Connection::from_ip_addr(Ipv4Addr::UNSPECIFIED));
        if let Some(mid) = &self.mid {
            media.add_attribute_with_value("mid", mid);
        }
        media
    }
}

/// A parsed description with its audio section located.
pub struct Parsed {
    /// The whole session.
    pub session: Session,
    /// Every m-line in order.
    pub mlines: Vec<MLine>,
    /// Index of the first audio m-line in `session.medias`.
    pub audio_index: usize,
}

impl Parsed {
    /// The audio m-line.
    pub fn audio(&self) -> &Media {
        &self.session.medias[self.audio_index]
    }

    /// An attribute value on the audio m-line, else at session level.
    pub fn attr<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        attr(self.audio(), name).or_else(|| session_attr(&self.session, name))
    }

    /// The audio media address: c= of the m-line, else of the session.
    pub fn audio_addr(&self) -> Result<SocketAddr, SdpError> {
        let conn = self
            .audio()
            .connections
            .first()
            .or(self.session.connection.as_ref())
            .ok_or(SdpError::MissingConnection)?;
        let ip: IpAddr = conn
            .connection_address
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| SdpError::InvalidAddress(conn.connection_address.clone()))?;
        Ok(SocketAddr::new(ip, self.audio().port))
    }
}

/// Parses SDP text and finds the first audio m-line.
pub fn parse(sdp: &str) -> Result<Parsed, SdpError> {
    if sdp.trim().is_empty() {
        return Err(SdpError::Malformed(Malformation::EmptyBody));
    }
    let session = Session::parse(sdp.as_bytes())?;
    let mlines: Vec<MLine> = session.medias.iter().map(MLine::of).collect();
    let audio_index = session
        .medias
        .iter()
        .position(|m| m.media.eq_ignore_ascii_case("audio"))
        .ok_or(SdpError::NoAudio)?;
    Ok(Parsed {
        session,
        mlines,
        audio_index,
    })
}

/// A value of a media attribute (the first one).
pub fn attr<'a>(media: &'a Media, name: &'a str) -> Option<&'a str> {
    media.get_attribute_values(name).flatten().next()
}

fn session_attr<'a>(session: &'a Session, name: &'a str) -> Option<&'a str> {
    session.get_attribute_values(name).flatten().next()
}

/// A fresh session: o= with user "siphon", s=-, t=0 0.
pub fn new_session(id: u64, version: u64, ip: IpAddr) -> Session {
    let mut origin = Origin::with_ip_addr(id, version, ip);
    origin.set_username("siphon");
    let mut session = Session::new(origin, "-");
    session.add_time(Time::new(0, 0));
    session
}

/// An audio m-line on `addr` with a c= line and the given payload types.
pub fn audio_media(addr: SocketAddr, proto: &str, pts: &[u8]) -> Media {
    let fmt: Vec<String> = pts.iter().map(u8::to_string).collect();
    let mut media = MLine {
        kind: "audio".to_owned(),
        proto: proto.to_owned(),
        fmt: fmt.join(" "),
        mid: None,
    }
    .rejected();
    media.port = addr.port();
    media.connections = vec![Connection::from_ip_addr(addr.ip())];
    media
}

/// Adds a=name:value.
pub fn push(media: &mut Media, name: &str, value: impl ToString) {
    media.attributes.push(Attribute::with_value(name, value));
}

/// Adds a value-less a=name.
pub fn flag(media: &mut Media, name: &str) {
    media.attributes.push(Attribute::new(name));
}

/// Serializes a session (CRLF line ends).
pub fn to_text(session: &Session) -> String {
    let mut out = Vec::new();
    // An io::Write into a Vec has no failure path.
    session
        .write(&mut out)
        .expect("writing SDP into memory cannot fail");
    // The model holds only Rust strings, so the output is UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}
