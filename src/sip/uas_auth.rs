//! The door for inbound INVITEs: trusted trunks walk in, others are refused
//! or asked for digest credentials, per `InboundPolicy`.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;

use rsipstack::sip::{Header, Request, Uri};

use super::digest::{self, Challenge, DigestAlgorithm};
use super::policy::{InboundPolicy, OthersPolicy};
use super::stack;

/// Issued nonces remembered; a flood of unauthenticated INVITEs evicts the
/// oldest rather than growing the list.
const NONCES_KEPT: usize = 1024;

/// What to do with an INVITE.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Let it through.
    Accept,
    /// 403: untrusted and no challenge configured, or wrong credentials.
    Forbidden,
    /// 401 with these `WWW-Authenticate` headers.
    Challenge(Vec<Header>),
}

/// Applies an `InboundPolicy`; remembers the nonces it issued.
pub(crate) struct Gate {
    policy: InboundPolicy,
    nonces: Mutex<VecDeque<String>>,
}

impl Gate {
    pub(crate) fn new(policy: InboundPolicy) -> Gate {
        Gate {
            policy,
            nonces: Mutex::new(VecDeque::new()),
        }
    }

    /// Decide on `req`, received from `source`.
    pub(crate) fn admit(&self, req: &Request, source: IpAddr) -> Admission {
        if self.policy.trusts(source) {
            return Admission::Accept;
        }
        let OthersPolicy::Challenge {
            realm,
            username,
            password,
        } = &self.policy.others
        else {
            return Admission::Forbidden;
        };
        // Only credentials answering a nonce we issued count; anything else
        // (none, garbage, a stale or foreign nonce) gets a fresh challenge.
        let creds = req
            .headers
            .iter()
            .filter_map(|h| stack::header_value(h, "authorization"))
            .filter_map(|v| digest::Credentials::parse(&v))
            .find(|c| self.take_nonce(&c.nonce));
        let Some(c) = creds else {
            return Admission::Challenge(self.challenge(realm));
        };
        let ok = c.username == *username
            && c.realm == *realm
            && same_uri(&c.uri, &req.uri)
            && c.verify(password, "INVITE");
        if ok {
            Admission::Accept
        } else {
            Admission::Forbidden
        }
    }

    /// SHA-256 first: RFC 8760 lists challenges in order of preference, and
    /// clients take the first they support. Both share one nonce.
    fn challenge(&self, realm: &str) -> Vec<Header> {
        let nonce = format!("{:032x}", rand::random::<u128>());
        if let Ok(mut n) = self.nonces.lock() {
            if n.len() >= NONCES_KEPT {
                n.pop_front();
            }
            n.push_back(nonce.clone());
        }
        [DigestAlgorithm::Sha256, DigestAlgorithm::Md5]
            .into_iter()
            .map(|algorithm| {
                let ch = Challenge {
                    realm: realm.to_string(),
                    nonce: nonce.clone(),
                    opaque: None,
                    algorithm,
                    qop_auth: true,
                };
                Header::WwwAuthenticate(ch.to_header_value().into())
            })
            .collect()
    }

    /// Forget `nonce` and say whether we had issued it: each nonce answers
    /// one INVITE, so a captured Authorization cannot be replayed.
    fn take_nonce(&self, nonce: &str) -> bool {
        let Ok(mut n) = self.nonces.lock() else {
            return false;
        };
        match n.iter().position(|x| x == nonce) {
            Some(i) => n.remove(i).is_some(),
            None => false,
        }
    }
}

/// The digest URI must name the Request-URI; stacks differ in how they
/// print it, so equal parsed URIs count too.
fn same_uri(digest_uri: &str, request_uri: &Uri) -> bool {
    digest_uri.eq_ignore_ascii_case(&request_uri.to_string())
        || Uri::try_from(digest_uri).is_ok_and(|u| u == *request_uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest::Answer;
    use rsipstack::sip::SipMessage;

    const URI: &str = "sip:1000@10.0.0.1";

    fn invite(auth: Option<&str>) -> Request {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let text = format!(
            "INVITE {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:1000@10.0.0.1>\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\n\
{auth}Content-Length: 0\r\n\r\n"
        );
        match SipMessage::try_from(text.as_str()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn gate() -> Gate {
        Gate::new(InboundPolicy {
            trunk_sources: vec!["10.0.0.0/24".parse().expect("net")],
            others: OthersPolicy::Challenge {
                realm: "siphon".into(),
                username: "pbx".into(),
                password: "s3cret".into(),
            },
        })
    }

    fn challenges(a: Admission) -> Vec<Challenge> {
        let Admission::Challenge(headers) = a else {
            panic!("{a:?}");
        };
        headers
            .iter()
            .filter_map(|h| stack::header_value(h, "www-authenticate"))
            .filter_map(|v| Challenge::parse(&v))
            .collect()
    }

    fn answer(ch: &Challenge, user: &str, password: &str) -> String {
        let a = Answer {
            username: user,
            password,
            method: "INVITE",
            uri: URI,
            cnonce: "abc",
        };
        digest::authorization(ch, &a)
    }

    const UNTRUSTED: [u8; 4] = [192, 0, 2, 9];

    #[test]
    fn trusted_sources_pass_and_refuse_policy_forbids() {
        let g = gate();
        assert_eq!(
            g.admit(&invite(None), [10, 0, 0, 7].into()),
            Admission::Accept
        );
        let refuse = Gate::new(InboundPolicy::default());
        assert_eq!(
            refuse.admit(&invite(None), UNTRUSTED.into()),
            Admission::Forbidden
        );
    }

    #[test]
    fn challenge_offers_sha256_then_md5_and_accepts_either() {
        for pick in [DigestAlgorithm::Sha256, DigestAlgorithm::Md5] {
            let g = gate();
            let chs = challenges(g.admit(&invite(None), UNTRUSTED.into()));
            let algs: Vec<_> = chs.iter().map(|c| c.algorithm).collect();
            assert_eq!(algs, [DigestAlgorithm::Sha256, DigestAlgorithm::Md5]);
            assert!(chs.iter().all(|c| c.qop_auth && c.realm == "siphon"));
            let ch = chs.iter().find(|c| c.algorithm == pick).expect("offered");
            let auth = answer(ch, "pbx", "s3cret");
            assert_eq!(
                g.admit(&invite(Some(&auth)), UNTRUSTED.into()),
                Admission::Accept
            );
            // The nonce is spent: the same Authorization again is challenged.
            let again = g.admit(&invite(Some(&auth)), UNTRUSTED.into());
            assert!(matches!(again, Admission::Challenge(_)), "{again:?}");
        }
    }

    #[test]
    fn wrong_credentials_are_forbidden_unknown_nonces_rechallenged() {
        let g = gate();
        let ch = challenges(g.admit(&invite(None), UNTRUSTED.into())).remove(0);
        let wrong = answer(&ch, "pbx", "guess");
        assert_eq!(
            g.admit(&invite(Some(&wrong)), UNTRUSTED.into()),
            Admission::Forbidden
        );
        let ch = challenges(g.admit(&invite(None), UNTRUSTED.into())).remove(0);
        let user = answer(&ch, "intruder", "s3cret");
        assert_eq!(
            g.admit(&invite(Some(&user)), UNTRUSTED.into()),
            Admission::Forbidden
        );
        let mut foreign = ch.clone();
        foreign.nonce = "not-ours".into();
        let forged = answer(&foreign, "pbx", "s3cret");
        let a = g.admit(&invite(Some(&forged)), UNTRUSTED.into());
        assert!(matches!(a, Admission::Challenge(_)), "{a:?}");
        let a = g.admit(&invite(Some("Digest garbage")), UNTRUSTED.into());
        assert!(matches!(a, Admission::Challenge(_)), "{a:?}");
    }

    #[test]
    fn nonce_memory_is_bounded() {
        let g = gate();
        for _ in 0..NONCES_KEPT + 10 {
            let _ = g.admit(&invite(None), UNTRUSTED.into());
        }
        assert_eq!(g.nonces.lock().map(|n| n.len()).unwrap_or(0), NONCES_KEPT);
    }
}
