//! Answering a 401/407 challenge to a request we sent: the Authorization
//! (or Proxy-Authorization) header, computed with `digest`.

use rsipstack::sip::{Header, Request, Response, StatusCode};

use super::digest::{self, Answer, Challenge};
use super::stack;

/// The header answering `challenge` to `sent` with these credentials;
/// `None` when the challenge carries no usable digest.
pub(crate) fn answer(
    sent: &Request,
    challenge: &Response,
    method: &str,
    username: &str,
    password: &str,
) -> Option<Header> {
    let proxy = challenge.status_code == StatusCode::ProxyAuthenticationRequired;
    let name = if proxy {
        "proxy-authenticate"
    } else {
        "www-authenticate"
    };
    let ch = challenge
        .headers
        .iter()
        .filter_map(|h| stack::header_value(h, name))
        .find_map(|v| Challenge::parse(&v))?;
    // The digest URI is the Request-URI exactly as rsipstack writes it.
    let uri = sent.uri.to_string();
    let cnonce = format!("{:016x}", rand::random::<u64>());
    let answer = Answer {
        username,
        password,
        method,
        uri: &uri,
        cnonce: &cnonce,
    };
    let value = digest::authorization(&ch, &answer);
    Some(if proxy {
        Header::ProxyAuthorization(value.into())
    } else {
        Header::Authorization(value.into())
    })
}
