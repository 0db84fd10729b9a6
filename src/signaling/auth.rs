//! Token authentication for the WebSocket: HS256 JSON Web Tokens (RFC 7519) as pure functions.
//!
//! Only the JWS compact form with HMAC-SHA256 is accepted. The algorithm is fixed here rather
//! than read from the token, which closes the `alg: none` and algorithm-confusion holes.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted; bounds the work an unauthenticated client can ask for.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Longest `sub` accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 128;

/// Longest lifetime `parse_ttl` accepts: 365 days.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);

/// base64url of `{"alg":"HS256","typ":"JWT"}`, the only header `mint` writes.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The claims siphon relies on from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user the token was issued to.
    pub sub: String,
    /// Expiry, in unix seconds.
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token")]
    Missing,
    /// The token is not a well-formed JWT, or a claim has the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not match the secret.
    #[error("bad token signature")]
    BadSignature,
    /// The token's `exp` is not after the current time.
    #[error("token expired")]
    Expired,
    /// The token's `nbf` lies after the current time.
    #[error("token not valid yet")]
    NotYetValid,
    /// The token's `aud` does not name siphon's `auth.audience`.
    #[error("token is meant for another audience")]
    WrongAudience,
    /// The header names an algorithm other than HS256.
    #[error("token algorithm is not HS256")]
    WrongAlgorithm,
    /// A required claim is absent.
    #[error("token lacks the `{0}` claim")]
    MissingClaim(&'static str),
}

impl AuthError {
    /// A stable label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::WrongAlgorithm => "wrong_algorithm",
            AuthError::MissingClaim(_) => "missing_claim",
        }
    }
}

// Details are fixed strings: nothing from the token is echoed into logs.
fn malformed(detail: &str) -> AuthError {
    AuthError::Malformed(detail.to_owned())
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

// Values stay raw so a claim of the wrong type is refused rather than treated as absent.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    exp: u64,
    iat: u64,
}

/// Checks an HS256 token against `secret` at time `now_unix` and returns its claims.
///
/// `exp` and a non-empty `sub` are required; `nbf`, when present, must not
/// lie after `now_unix` (no leeway, as for `exp`); a token with an `aud` is
/// refused (siphon has no audience here: see [`verify_for`]); `iss` is not
/// checked. An empty secret verifies nothing.
pub fn verify(token: &str, secret: &[u8], now_unix: u64) -> Result<Claims, AuthError> {
    verify_for(token, secret, None, now_unix)
}

/// [`verify`] for a service that answers to `audience`: the token's `aud`
/// (a string or an array of strings) must name it.
pub fn verify_for(
    token: &str,
    secret: &[u8],
    audience: Option<&str>,
    now_unix: u64,
) -> Result<Claims, AuthError> {
    if token.trim().is_empty() {
        return Err(AuthError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed("token too long"));
    }
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("expected three dot-separated parts"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .filter(|(_, payload)| !payload.contains('.'))
        .ok_or_else(|| malformed("expected three dot-separated parts"))?;
    // Decode every part before any crypto so structural garbage is reported as such.
    let header = decode_part(header, "header")?;
    let payload = decode_part(payload, "payload")?;
    let signature = decode_part(signature, "signature")?;

    check_header(&header)?;
    let mac = keyed_mac(secret, signing_input.as_bytes()).ok_or(AuthError::BadSignature)?;
    // verify_slice compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;
    // Claims are parsed only once authenticated: nobody without the secret reaches this parser.
    parse_claims(&payload, audience, now_unix)
}

/// Issues an HS256 token for `user` that expires `ttl` after `now_unix`, with `iat` = `now_unix`.
///
/// Refuses a `user` that `verify` would refuse, an empty secret and a ttl under one second.
pub fn mint(user: &str, ttl: Duration, secret: &[u8], now_unix: u64) -> Result<String, AuthError> {
    mint_for(user, ttl, secret, None, now_unix)
}

/// [`mint`] with `aud` = `audience`, for a service that has one.
pub fn mint_for(
    user: &str,
    ttl: Duration,
    secret: &[u8],
    audience: Option<&str>,
    now_unix: u64,
) -> Result<String, AuthError> {
    check_subject(user)?;
    if ttl.as_secs() == 0 {
        return Err(malformed("ttl is shorter than one second"));
    }
    let exp = now_unix
        .checked_add(ttl.as_secs())
        .ok_or_else(|| malformed("expiry out of range"))?;
    let claims = MintedClaims {
        sub: user,
        aud: audience,
        exp,
        iat: now_unix,
    };
    let payload = serde_json::to_vec(&claims).map_err(|_| malformed("claims not serializable"))?;
    let signing_input = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(payload));
    let mac =
        keyed_mac(secret, signing_input.as_bytes()).ok_or_else(|| malformed("empty secret"))?;
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

/// Why a token lifetime (`siphon token --ttl`) was refused; each names the text given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// Not digits with an optional unit.
    #[error("invalid ttl {0:?}: expected seconds, or a number followed by s, m, h or d")]
    Syntax(String),
    /// Over [`MAX_TTL`].
    #[error("invalid ttl {0:?}: longer than 365 days")]
    TooLong(String),
    /// Zero.
    #[error("invalid ttl {0:?}: must be positive")]
    Zero(String),
}

/// Parses a token lifetime: `"90s"`, `"15m"`, `"1h"`, `"7d"` or plain seconds `"3600"`.
///
/// Zero and anything over 365 days are refused.
pub fn parse_ttl(s: &str) -> Result<Duration, TtlError> {
    const UNITS: [(char, u64); 4] = [('s', 1), ('m', 60), ('h', 3_600), ('d', 86_400)];
    let s = s.trim();
    let (digits, scale) = UNITS
        .iter()
        .find_map(|&(unit, scale)| s.strip_suffix(unit).map(|d| (d, scale)))
        .unwrap_or((s, 1));
    // u64::from_str would also take a leading '+'; only plain digits are a ttl.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TtlError::Syntax(s.to_owned()));
    }
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&secs| secs <= MAX_TTL.as_secs())
        .ok_or_else(|| TtlError::TooLong(s.to_owned()))?;
    if secs == 0 {
        return Err(TtlError::Zero(s.to_owned()));
    }
    Ok(Duration::from_secs(secs))
}

/// HMAC-SHA256 keyed with `secret` over `signing_input`; `None` for an empty secret.
fn keyed_mac(secret: &[u8], signing_input: &[u8]) -> Option<HmacSha256> {
    // HMAC accepts an empty key, but a token signed with one can be forged by anyone.
    if secret.is_empty() {
        return None;
    }
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(signing_input);
    Some(mac)
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    // The no-pad engine also refuses '=' padding and non-zero trailing bits, so each token
    // has exactly one encoding.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed(format!("{what} is not base64url")))
}

/// Parses a JSON object; serde would otherwise also map a JSON array onto a struct.
fn json_object<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, AuthError> {
    let is_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if !is_object {
        return Err(AuthError::Malformed(format!("{what} is not a JSON object")));
    }
    // Duplicate keys fail here too, so a claim cannot be read two ways.
    serde_json::from_slice(bytes).map_err(|_| AuthError::Malformed(format!("{what} is not valid")))
}

fn check_header(bytes: &[u8]) -> Result<(), AuthError> {
    let header: Header = json_object(bytes, "header")?;
    if header.alg.as_deref() != Some("HS256") {
        return Err(AuthError::WrongAlgorithm);
    }
    // RFC 7515 §4.1.11: extensions marked critical that we do not implement must be refused.
    if header.crit.is_some() {
        return Err(malformed("unsupported crit header"));
    }
    Ok(())
}

fn parse_claims(bytes: &[u8], audience: Option<&str>, now_unix: u64) -> Result<Claims, AuthError> {
    let raw: RawClaims = json_object(bytes, "payload")?;
    let exp = raw.exp.ok_or(AuthError::MissingClaim("exp"))?;
    let exp = numeric_date(&exp).ok_or_else(|| malformed("exp is not a NumericDate"))?;
    let sub = match raw.sub.ok_or(AuthError::MissingClaim("sub"))? {
        Value::String(sub) => sub,
        _ => return Err(malformed("sub is not a string")),
    };
    check_subject(&sub)?;
    if exp <= now_unix {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = raw.nbf {
        let nbf = not_before(&nbf).ok_or_else(|| malformed("nbf is not a NumericDate"))?;
        if nbf > now_unix {
            return Err(AuthError::NotYetValid);
        }
    }
    check_audience(raw.aud.as_ref(), audience)?;
    Ok(Claims { sub, exp })
}

/// RFC 7519 §4.1.3: a token whose `aud` does not name us is refused; when
/// we have an audience, a token without `aud` is too.
fn check_audience(aud: Option<&Value>, ours: Option<&str>) -> Result<(), AuthError> {
    let names: Vec<&str> = match aud {
        None | Some(Value::Null) => {
            return match ours {
                Some(_) => Err(AuthError::MissingClaim("aud")),
                None => Ok(()),
            }
        }
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("aud is not a string or an array of strings"))?,
        Some(_) => return Err(malformed("aud is not a string or an array of strings")),
    };
    match ours {
        Some(ours) if names.contains(&ours) => Ok(()),
        _ => Err(AuthError::WrongAudience),
    }
}

/// A non-negative NumericDate; a fraction is dropped, which only makes the token expire sooner.
fn numeric_date(value: &Value) -> Option<u64> {
    if let Some(secs) = value.as_u64() {
        return Some(secs);
    }
    let secs = value.as_f64()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

/// `nbf` as a NumericDate; a fraction rounds up, so the token is never taken early.
fn not_before(value: &Value) -> Option<u64> {
    if let Some(secs) = value.as_u64() {
        return Some(secs);
    }
    let secs = value.as_f64()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs.ceil() as u64)
}

/// The subject becomes a user name in routing and logs, so it is kept short and printable.
fn check_subject(sub: &str) -> Result<(), AuthError> {
    if sub.is_empty() {
        return Err(malformed("sub is empty"));
    }
    if sub.chars().count() > MAX_SUBJECT_CHARS {
        return Err(malformed("sub is longer than 128 characters"));
    }
    if sub.chars().any(char::is_control) {
        return Err(malformed("sub contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
