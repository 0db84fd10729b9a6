//! HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 3261 §22).
//!
//! Written here rather than taken from rsipstack's authenticate helper: its
//! typed headers only know the algorithm token `SHA256` (RFC 7616 and every
//! PBX say `SHA-256`, which fails to parse and aborts the retry), and it
//! rejects a `qop="auth,auth-int"` list, which Asterisk and FreeSWITCH send.
//! These are pure functions over header values, so both the UAC (answering a
//! challenge) and the echo extension (issuing and checking one) share them.

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest hash algorithm siphon supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DigestAlgorithm {
    /// MD5 (RFC 2617), the default when a challenge names none.
    #[default]
    Md5,
    /// SHA-256 (RFC 7616).
    Sha256,
}

impl DigestAlgorithm {
    /// The token written in headers.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Parse a header token; `SHA256` is accepted because some stacks write it.
    pub fn from_token(token: &str) -> Option<Self> {
        let t = token.trim().trim_matches('"');
        if t.eq_ignore_ascii_case("MD5") {
            Some(DigestAlgorithm::Md5)
        } else if t.eq_ignore_ascii_case("SHA-256") || t.eq_ignore_ascii_case("SHA256") {
            Some(DigestAlgorithm::Sha256)
        } else {
            None
        }
    }

    fn hash(self, input: &str) -> String {
        match self {
            DigestAlgorithm::Md5 => hex(&Md5::digest(input.as_bytes())),
            DigestAlgorithm::Sha256 => hex(&Sha256::digest(input.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` digest challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo back.
    pub opaque: Option<String>,
    /// Hash algorithm.
    pub algorithm: DigestAlgorithm,
    /// Whether the server offered `qop=auth`.
    pub qop_auth: bool,
}

impl Challenge {
    /// Parse a challenge header value; `None` for other schemes, unknown
    /// algorithms or a missing realm/nonce.
    pub fn parse(value: &str) -> Option<Challenge> {
        let params = parse_digest_params(value)?;
        let get = |k: &str| lookup(&params, k);
        let algorithm = match get("algorithm") {
            Some(a) => DigestAlgorithm::from_token(&a)?,
            None => DigestAlgorithm::Md5,
        };
        let qop_auth = get("qop")
            .map(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")))
            .unwrap_or(false);
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
        })
    }

    /// Render as a header value (the echo extension issues these).
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm={}",
            self.realm,
            self.nonce,
            self.algorithm.token()
        );
        if self.qop_auth {
            s.push_str(", qop=\"auth\"");
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque=\"{o}\""));
        }
        s
    }
}

/// What the client knows when answering a challenge.
pub struct Answer<'a> {
    /// Digest username.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
    /// Request method (`INVITE`).
    pub method: &'a str,
    /// Digest URI: the Request-URI exactly as sent.
    pub uri: &'a str,
    /// Fresh client nonce, used when the server offered qop=auth.
    pub cnonce: &'a str,
}

/// The `response` value: KD(H(A1), nonce[:nc:cnonce:qop]:H(A2)).
#[allow(clippy::too_many_arguments)]
pub fn compute_response(
    alg: DigestAlgorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = alg.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Build the `Authorization` / `Proxy-Authorization` value answering `ch`
/// (first use of the nonce, so nc is 00000001).
pub fn authorization(ch: &Challenge, a: &Answer<'_>) -> String {
    const NC: &str = "00000001";
    let qop = ch.qop_auth.then_some((NC, a.cnonce));
    let response = compute_response(
        ch.algorithm,
        a.username,
        &ch.realm,
        a.password,
        a.method,
        a.uri,
        &ch.nonce,
        qop,
    );
    let mut s = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
        a.username,
        ch.realm,
        ch.nonce,
        a.uri,
        response,
        ch.algorithm.token()
    );
    if ch.qop_auth {
        s.push_str(&format!(", qop=auth, nc={NC}, cnonce=\"{}\"", a.cnonce));
    }
    if let Some(o) = &ch.opaque {
        s.push_str(&format!(", opaque=\"{o}\""));
    }
    s
}

/// A parsed `Authorization` header, as a server sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Digest username.
    pub username: String,
    /// Realm the client answered.
    pub realm: String,
    /// Nonce the client answered.
    pub nonce: String,
    /// Digest URI.
    pub uri: String,
    /// Client's response hash.
    pub response: String,
    /// Algorithm (MD5 when absent).
    pub algorithm: DigestAlgorithm,
    /// `(nc, cnonce)` when qop=auth was used.
    pub qop: Option<(String, String)>,
}

impl Credentials {
    /// Parse an `Authorization` value; `None` when it is not a usable digest.
    pub fn parse(value: &str) -> Option<Credentials> {
        let params = parse_digest_params(value)?;
        let get = |k: &str| lookup(&params, k);
        let algorithm = match get("algorithm") {
            Some(a) => DigestAlgorithm::from_token(&a)?,
            None => DigestAlgorithm::Md5,
        };
        let qop = match get("qop") {
            Some(q) if q.eq_ignore_ascii_case("auth") => Some((get("nc")?, get("cnonce")?)),
            Some(_) => return None,
            None => None,
        };
        Some(Credentials {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            algorithm,
            qop,
        })
    }

    /// Whether the response matches `password` for `method`.
    pub fn verify(&self, password: &str, method: &str) -> bool {
        let qop = self.qop.as_ref().map(|(nc, c)| (nc.as_str(), c.as_str()));
        let expected = compute_response(
            self.algorithm,
            &self.username,
            &self.realm,
            password,
            method,
            &self.uri,
            &self.nonce,
            qop,
        );
        // Both are hex strings of a fixed length; compare all bytes so the
        // time taken does not reveal the matching prefix.
        expected.len() == self.response.len()
            && expected
                .bytes()
                .zip(self.response.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()))
                == 0
    }
}

fn lookup(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
}

/// Split `Digest k=v, k="v, with comma", ...` into pairs; `None` unless the
/// scheme is Digest.
fn parse_digest_params(value: &str) -> Option<Vec<(String, String)>> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            break;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let val = if chars.peek() == Some(&'"') {
            chars.next();
            read_quoted(&mut chars)
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect::<String>()
        };
        out.push((key.trim().to_string(), val.trim().to_string()));
    }
    Some(out)
}

fn read_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut s = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    s.push(n);
                }
            }
            '"' => break,
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests;
