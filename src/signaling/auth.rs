//! Token authentication for the WebSocket: HS256 JSON Web Tokens (RFC 7519)
//! carrying the user in `sub` and a required `exp`.
//!
//! The JWS compact form is checked by hand over `ring`'s HMAC (already in the
//! tree for SRTP): a JWT library would add a second crypto stack for one
//! algorithm. Only HS256 is accepted, so `alg: none` and algorithm confusion
//! cannot apply.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// Longest accepted `sub`.
const MAX_SUB: usize = 128;
/// Longest accepted token, well above any real one.
const MAX_TOKEN: usize = 8192;
/// Longest TTL `parse_ttl` accepts.
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The claims siphon uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("a token is required (?token= or a first hello message)")]
    Missing,
    /// Not a well-formed JWT.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not match the secret.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// Anything but HS256.
    #[error("token algorithm must be HS256")]
    WrongAlgorithm,
    /// A required claim is absent or empty.
    #[error("token lacks the `{0}` claim")]
    MissingClaim(&'static str),
}

impl AuthError {
    /// A metric label.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::WrongAlgorithm => "wrong_algorithm",
            AuthError::MissingClaim(_) => "missing_claim",
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<u64>,
}

/// Verify an HS256 token against `secret` at `now_unix` seconds.
pub fn verify(token: &str, secret: &[u8], now_unix: u64) -> Result<Claims, AuthError> {
    let malformed = |why: &str| AuthError::Malformed(why.to_owned());
    if token.len() > MAX_TOKEN {
        return Err(malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    let header: Header = decode_json(header).map_err(|e| malformed(&format!("header: {e}")))?;
    if header.alg != "HS256" {
        return Err(AuthError::WrongAlgorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed("signature is not base64url"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signed = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
    // Constant-time comparison inside ring.
    hmac::verify(&key, signed.as_bytes(), &signature).map_err(|_| AuthError::BadSignature)?;
    let raw: RawClaims = decode_json(payload).map_err(|e| malformed(&format!("payload: {e}")))?;
    let exp = raw.exp.ok_or(AuthError::MissingClaim("exp"))?;
    let sub = raw.sub.filter(|s| !s.is_empty() && s.len() <= MAX_SUB);
    let sub = sub.ok_or(AuthError::MissingClaim("sub"))?;
    if exp <= now_unix {
        return Err(AuthError::Expired);
    }
    Ok(Claims { sub, exp })
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "not base64url".to_owned())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// Mint an HS256 token for `user`, valid for `ttl` from `now_unix`.
pub fn mint(user: &str, ttl: Duration, secret: &[u8], now_unix: u64) -> Result<String, AuthError> {
    if user.is_empty() || user.len() > MAX_SUB {
        return Err(AuthError::MissingClaim("sub"));
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "sub": user,
        "iat": now_unix,
        "exp": now_unix.saturating_add(ttl.as_secs()),
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, signed.as_bytes());
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
}

/// Parse a TTL such as `90s`, `15m`, `1h`, `7d` or plain seconds.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("invalid TTL `{s}`"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid TTL unit in `{s}` (use s, m, h or d)")),
    };
    let ttl = Duration::from_secs(n.saturating_mul(scale));
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(format!("TTL `{s}` must be between 1s and 365d"));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"your-256-bit-secret";
    const NOW: u64 = 1_700_000_000;

    fn sign(header: &str, payload: &str, secret: &[u8]) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let p = URL_SAFE_NO_PAD.encode(payload);
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag = hmac::sign(&key, format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn minted_token_verifies() {
        let t = mint("alice", Duration::from_secs(3600), SECRET, NOW).unwrap();
        let c = verify(&t, SECRET, NOW + 10).unwrap();
        assert_eq!(
            c,
            Claims {
                sub: "alice".into(),
                exp: NOW + 3600
            }
        );
    }

    #[test]
    fn independent_token_verifies() {
        // The well-known jwt.io HS256 example (header and signature as that
        // site produces them for this payload), with exp far in the future.
        let token = sign(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"1234567890","name":"John Doe","iat":1516239022,"exp":4102444800}"#,
            SECRET,
        );
        assert_eq!(verify(&token, SECRET, NOW).unwrap().sub, "1234567890");
        // The classic literal example has no exp: refused for that reason only.
        let classic = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(
            verify(classic, SECRET, NOW),
            Err(AuthError::MissingClaim("exp"))
        );
    }

    #[test]
    fn refusals() {
        let good = mint("bob", Duration::from_secs(60), SECRET, NOW).unwrap();
        assert_eq!(verify(&good, b"other", NOW), Err(AuthError::BadSignature));
        assert_eq!(verify(&good, SECRET, NOW + 60), Err(AuthError::Expired));
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"root","exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        let none = sign(
            r#"{"alg":"none"}"#,
            r#"{"sub":"a","exp":9999999999}"#,
            SECRET,
        );
        assert_eq!(verify(&none, SECRET, NOW), Err(AuthError::WrongAlgorithm));
        let hs512 = sign(
            r#"{"alg":"HS512"}"#,
            r#"{"sub":"a","exp":9999999999}"#,
            SECRET,
        );
        assert_eq!(verify(&hs512, SECRET, NOW), Err(AuthError::WrongAlgorithm));
        let no_exp = sign(r#"{"alg":"HS256"}"#, r#"{"sub":"a"}"#, SECRET);
        assert_eq!(
            verify(&no_exp, SECRET, NOW),
            Err(AuthError::MissingClaim("exp"))
        );
        let no_sub = sign(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"","exp":9999999999}"#,
            SECRET,
        );
        assert_eq!(
            verify(&no_sub, SECRET, NOW),
            Err(AuthError::MissingClaim("sub"))
        );
        for garbage in ["", "abc", "a.b", "a.b.c.d", "!!.??.##", "e30.e30.@@"] {
            assert!(
                matches!(verify(garbage, SECRET, NOW), Err(AuthError::Malformed(_))),
                "{garbage}"
            );
        }
        let not_json = sign(r#"{"alg":"HS256"}"#, "not json", SECRET);
        assert!(matches!(
            verify(&not_json, SECRET, NOW),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_ttl("3600"), Ok(Duration::from_secs(3600)));
        for bad in ["0", "0h", "366d", "1w", "h", "", "-1h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
