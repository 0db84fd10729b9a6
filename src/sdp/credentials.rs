//! Checks of a browser's ICE credentials (RFC 8839) and DTLS fingerprint
//! (RFC 8122) while its description is read, so that a bad one is refused
//! with a 488 naming the fault instead of failing later as the leg is built.

use super::session::Parsed;
use super::transport::{Fingerprint, IceCredentials};
use super::SdpError;

/// The hash the DTLS leg pins a peer certificate with (RFC 8827 §6.5).
pub const REQUIRED_HASH: &str = "sha-256";

/// RFC 8122 hash function names and their digest lengths in bytes.
const HASHES: [(&str, usize); 7] = [
    ("sha-1", 20),
    ("sha-224", 28),
    ("sha-256", 32),
    ("sha-384", 48),
    ("sha-512", 64),
    ("md5", 16),
    ("md2", 16),
];

/// The ICE credentials of a description, checked against RFC 8839 section 5.4:
/// ufrag 4-256 and pwd 22-256 characters of ALPHA / DIGIT / "+" / "/".
pub fn ice_credentials(p: &Parsed) -> Result<IceCredentials, SdpError> {
    let (ufrag, pwd) = match (p.attr("ice-ufrag"), p.attr("ice-pwd")) {
        (Some(ufrag), Some(pwd)) if !ufrag.trim().is_empty() && !pwd.trim().is_empty() => {
            (ufrag.trim(), pwd.trim())
        }
        _ => return Err(SdpError::MissingIceCredentials),
    };
    check_ice("ice-ufrag", ufrag, 4)?;
    check_ice("ice-pwd", pwd, 22)?;
    Ok(IceCredentials {
        ufrag: ufrag.to_owned(),
        pwd: pwd.to_owned(),
    })
}

fn check_ice(name: &str, value: &str, min: usize) -> Result<(), SdpError> {
    let len = value.chars().count();
    if !(min..=256).contains(&len) {
        let why = format!("{name} has {len} characters, RFC 8839 needs {min} to 256");
        return Err(SdpError::InvalidIceCredentials(why));
    }
    let ice_char = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    if let Some(bad) = value.chars().find(|&c| !ice_char(c)) {
        let why = format!("{name} contains {bad:?}; RFC 8839 allows A-Z a-z 0-9 + /");
        return Err(SdpError::InvalidIceCredentials(why));
    }
    Ok(())
}

/// The sha-256 fingerprint of a description. Every a=fingerprint line (of
/// the audio m-line, else of the session) must have a digest as long as
/// its hash label says; one of them must be sha-256.
pub fn dtls_fingerprint(p: &Parsed) -> Result<Fingerprint, SdpError> {
    let media: Vec<&str> = p
        .audio()
        .get_attribute_values("fingerprint")
        .flatten()
        .collect();
    let values = if media.is_empty() {
        p.session
            .get_attribute_values("fingerprint")
            .flatten()
            .collect()
    } else {
        media
    };
    let mut found = Vec::with_capacity(values.len());
    for value in values {
        found.push(fingerprint(value)?);
    }
    let Some(first) = found.first() else {
        return Err(SdpError::MissingFingerprint);
    };
    let unsupported = SdpError::UnsupportedFingerprint(first.algorithm.clone());
    found
        .into_iter()
        .find(|f| f.algorithm == REQUIRED_HASH)
        .ok_or(unsupported)
}

/// One `hash-func SP fingerprint` value, its label lowercased and its
/// length checked against the label.
fn fingerprint(value: &str) -> Result<Fingerprint, SdpError> {
    let value = value.trim();
    let invalid = |why: String| SdpError::InvalidFingerprint(why);
    let (label, digest) = value
        .split_once(' ')
        .ok_or_else(|| invalid("expected a hash name and a digest".to_owned()))?;
    let label = label.to_ascii_lowercase();
    let digest = digest.trim();
    let bytes = digest_len(digest).ok_or_else(|| {
        invalid(format!(
            "the {label} digest is not colon-separated hex byte pairs"
        ))
    })?;
    let Some(&(_, expected)) = HASHES.iter().find(|(name, _)| *name == label) else {
        let shown: String = label.chars().take(16).collect();
        return Err(invalid(format!("unknown hash function {shown:?}")));
    };
    if bytes != expected {
        let why = format!("a {label} digest has {expected} bytes, this one has {bytes}");
        return Err(invalid(why));
    }
    Ok(Fingerprint {
        algorithm: label,
        value: digest.to_owned(),
    })
}

/// The byte count of "AB:CD:..." when every part is two hex digits.
fn digest_len(digest: &str) -> Option<usize> {
    let mut count = 0;
    for part in digest.split(':') {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        count += 1;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{CHROME_OFFER, FIREFOX_OFFER, SAFARI_OFFER};
    use super::super::session::parse;
    use super::*;

    const CHROME_PWD: &str = "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y";
    const CHROME_FP: &str = "sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F";

    fn creds(sdp: &str) -> Result<IceCredentials, SdpError> {
        ice_credentials(&parse(sdp).unwrap())
    }

    fn fp(sdp: &str) -> Result<Fingerprint, SdpError> {
        dtls_fingerprint(&parse(sdp).unwrap())
    }

    fn sha(bytes: usize) -> String {
        vec!["AB"; bytes].join(":")
    }

    #[test]
    fn captured_browser_offers_pass() {
        for sdp in [CHROME_OFFER, FIREFOX_OFFER, SAFARI_OFFER] {
            assert!(creds(sdp).is_ok());
            assert_eq!(fp(sdp).unwrap().algorithm, "sha-256");
        }
    }

    #[test]
    fn a_short_ice_pwd_is_refused_with_its_length() {
        let sdp = CHROME_OFFER.replace(CHROME_PWD, "a=ice-pwd:short1234567");
        let err = creds(&sdp).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid ICE credentials: ice-pwd has 12 characters, RFC 8839 needs 22 to 256"
        );
    }

    #[test]
    fn a_short_or_odd_ice_ufrag_is_refused() {
        let short = CHROME_OFFER.replace("a=ice-ufrag:EsAw", "a=ice-ufrag:Es");
        assert!(
            matches!(creds(&short), Err(SdpError::InvalidIceCredentials(m)) if m.contains("ice-ufrag has 2"))
        );
        let odd = CHROME_OFFER.replace("a=ice-ufrag:EsAw", "a=ice-ufrag:Es-Aw");
        assert!(
            matches!(creds(&odd), Err(SdpError::InvalidIceCredentials(m)) if m.contains("'-'"))
        );
        let long = CHROME_OFFER.replace(
            "a=ice-ufrag:EsAw",
            &format!("a=ice-ufrag:{}", "u".repeat(257)),
        );
        assert!(matches!(
            creds(&long),
            Err(SdpError::InvalidIceCredentials(_))
        ));
    }

    #[test]
    fn missing_credentials_stay_their_own_error() {
        let sdp = CHROME_OFFER.replace(CHROME_PWD, "a=ice-pwd:");
        assert_eq!(creds(&sdp), Err(SdpError::MissingIceCredentials));
    }

    #[test]
    fn a_sha1_fingerprint_is_unsupported() {
        let sdp = CHROME_OFFER.replace(CHROME_FP, &format!("sha-1 {}", sha(20)));
        let err = fp(&sdp).unwrap_err();
        assert_eq!(err, SdpError::UnsupportedFingerprint("sha-1".to_owned()));
        assert_eq!(
            err.to_string(),
            "unsupported DTLS fingerprint hash sha-1 (sha-256 required)"
        );
    }

    #[test]
    fn the_label_must_match_the_digest_length() {
        for (label, bytes) in [
            ("sha-256", 20),
            ("sha-256", 33),
            ("sha-1", 32),
            ("SHA-512", 32),
        ] {
            let sdp = CHROME_OFFER.replace(CHROME_FP, &format!("{label} {}", sha(bytes)));
            let err = fp(&sdp).unwrap_err();
            assert!(
                matches!(&err, SdpError::InvalidFingerprint(m) if m.contains(&format!("this one has {bytes}"))),
                "{label} {bytes}: {err}"
            );
        }
    }

    #[test]
    fn unknown_hashes_and_bad_hex_are_invalid() {
        for value in [
            format!("sha-3 {}", sha(32)),
            "sha-256 ZZ:1F".to_owned(),
            "sha-256".to_owned(),
            "sha-256 ABC:DE".to_owned(),
        ] {
            let sdp = CHROME_OFFER.replace(CHROME_FP, &value);
            assert!(
                matches!(fp(&sdp), Err(SdpError::InvalidFingerprint(_))),
                "{value}"
            );
        }
    }

    #[test]
    fn sha256_is_picked_among_several_and_labels_are_case_blind() {
        let two = format!("sha-1 {}\na=fingerprint:SHA-256 {}", sha(20), sha(32));
        let sdp = CHROME_OFFER.replacen(CHROME_FP, &two, 1);
        let picked = fp(&sdp).unwrap();
        assert_eq!(
            (picked.algorithm.as_str(), picked.value),
            ("sha-256", sha(32))
        );
    }
}
