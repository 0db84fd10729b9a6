//! Tests of token verification and minting.
use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_700_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs arbitrary header and payload text, to build tokens `mint` never would.
fn sign(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes any key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

fn hs256(payload: &str) -> String {
    sign(r#"{"alg":"HS256","typ":"JWT"}"#, payload, SECRET)
}

fn err(token: &str) -> AuthError {
    verify(token, SECRET, NOW).expect_err("token must be refused")
}

#[test]
fn minted_token_verifies() {
    let token = mint("alice", Duration::from_secs(60), SECRET, NOW).expect("mint");
    let claims = verify(&token, SECRET, NOW).expect("verify");
    assert_eq!(
        claims,
        Claims {
            sub: "alice".into(),
            exp: NOW + 60
        }
    );
    assert!(token.starts_with(HEADER_B64));
    let payload = token.split('.').nth(1).expect("payload");
    let payload: Value =
        serde_json::from_slice(&decode_part(payload, "p").expect("b64")).expect("json");
    assert_eq!(payload["iat"], NOW);
}

#[test]
fn header_constant_matches_its_json() {
    assert_eq!(HEADER_B64, b64(br#"{"alg":"HS256","typ":"JWT"}"#));
}

#[test]
fn other_secret_is_bad_signature() {
    let token = mint("alice", Duration::from_secs(60), b"another secret", NOW).expect("mint");
    assert_eq!(err(&token), AuthError::BadSignature);
    assert_eq!(verify(&token, b"", NOW), Err(AuthError::BadSignature));
}

#[test]
fn tampered_payload_is_bad_signature() {
    let token = mint("alice", Duration::from_secs(60), SECRET, NOW).expect("mint");
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(format!(r#"{{"sub":"admin","exp":{}}}"#, NOW + 60).as_bytes());
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(err(&tampered), AuthError::BadSignature);
}

#[test]
fn every_single_character_change_is_refused() {
    let token = mint("alice", Duration::from_secs(60), SECRET, NOW).expect("mint");
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    for i in 0..token.len() {
        assert!(verify(&token[..i], SECRET, NOW).is_err(), "prefix {i}");
        for c in alphabet.chars() {
            let mut bytes = token.clone().into_bytes();
            if bytes[i] == c as u8 {
                continue;
            }
            bytes[i] = c as u8;
            let changed = String::from_utf8(bytes).expect("ascii");
            assert!(verify(&changed, SECRET, NOW).is_err(), "{changed}");
        }
    }
}

#[test]
fn expiry_is_exclusive() {
    let token = hs256(&format!(r#"{{"sub":"a","exp":{NOW}}}"#));
    assert_eq!(err(&token), AuthError::Expired);
    assert_eq!(verify(&token, SECRET, NOW - 1).map(|c| c.exp), Ok(NOW));
    assert_eq!(verify(&token, SECRET, u64::MAX), Err(AuthError::Expired));
}

#[test]
fn a_token_is_refused_before_its_nbf() {
    let exp = NOW + 600;
    let early = hs256(&format!(r#"{{"sub":"a","exp":{exp},"nbf":{}}}"#, NOW + 1));
    assert_eq!(err(&early), AuthError::NotYetValid);
    assert_eq!(err(&early).code(), "not_yet_valid");
    assert_eq!(
        verify(&early, SECRET, NOW + 1).map(|c| c.sub),
        Ok("a".into())
    );
    let now = hs256(&format!(r#"{{"sub":"a","exp":{exp},"nbf":{NOW}}}"#));
    assert!(verify(&now, SECRET, NOW).is_ok());
    // A fraction of a second still in the future is in the future.
    let fraction = hs256(&format!(r#"{{"sub":"a","exp":{exp},"nbf":{NOW}.25}}"#));
    assert_eq!(err(&fraction), AuthError::NotYetValid);
    let garbage = hs256(&format!(r#"{{"sub":"a","exp":{exp},"nbf":"soon"}}"#));
    assert_eq!(err(&garbage).code(), "malformed");
}

#[test]
fn the_audience_must_be_ours() {
    let exp = NOW + 600;
    let with = |aud: &str| hs256(&format!(r#"{{"sub":"a","exp":{exp},"aud":{aud}}}"#));
    // Without an audience of its own, siphon refuses any token meant for one.
    assert_eq!(err(&with(r#""siphon""#)), AuthError::WrongAudience);
    assert_eq!(err(&with("[]")), AuthError::WrongAudience);
    let ours = |token: &str| verify_for(token, SECRET, Some("siphon"), NOW);
    assert!(ours(&with(r#""siphon""#)).is_ok());
    assert!(ours(&with(r#"["pbx","siphon"]"#)).is_ok());
    assert_eq!(ours(&with(r#""pbx""#)), Err(AuthError::WrongAudience));
    assert_eq!(ours(&with(r#"["pbx"]"#)), Err(AuthError::WrongAudience));
    assert_eq!(ours(&with("7")).map_err(|e| e.code()), Err("malformed"));
    assert_eq!(
        ours(&with(r#"["siphon",7]"#)).map_err(|e| e.code()),
        Err("malformed")
    );
    let minted = mint_for("a", Duration::from_secs(60), SECRET, Some("siphon"), NOW).unwrap();
    assert!(ours(&minted).is_ok());
    assert_eq!(err(&minted), AuthError::WrongAudience);
    let none = hs256(&format!(r#"{{"sub":"a","exp":{exp}}}"#));
    assert_eq!(ours(&none), Err(AuthError::MissingClaim("aud")));
    assert!(verify(&none, SECRET, NOW).is_ok());
}

#[test]
fn required_claims() {
    assert_eq!(
        err(&hs256(r#"{"sub":"a"}"#)),
        AuthError::MissingClaim("exp")
    );
    assert_eq!(
        err(&hs256(r#"{"sub":"a","exp":null}"#)),
        AuthError::MissingClaim("exp")
    );
    let no_sub = hs256(&format!(r#"{{"exp":{}}}"#, NOW + 1));
    assert_eq!(err(&no_sub), AuthError::MissingClaim("sub"));
}

#[test]
fn claims_of_the_wrong_shape_are_malformed() {
    let late = NOW + 10;
    let cases = [
        r#"{"sub":"a","exp":"never"}"#.to_owned(),
        r#"{"sub":"a","exp":-5}"#.to_owned(),
        r#"{"sub":"a","exp":true}"#.to_owned(),
        format!(r#"{{"sub":7,"exp":{late}}}"#),
        format!(r#"{{"sub":"","exp":{late}}}"#),
        format!(r#"{{"sub":"a\nb","exp":{late}}}"#),
        format!(r#"{{"sub":"{}","exp":{late}}}"#, "é".repeat(129)),
        format!(r#"{{"sub":"a","exp":1,"exp":{late}}}"#),
        format!(r#"[{{"sub":"a","exp":{late}}}]"#),
        format!(r#"["a",{late}]"#),
        "not json".to_owned(),
    ];
    for payload in cases {
        assert_eq!(err(&hs256(&payload)).code(), "malformed", "{payload}");
    }
    let longest = format!(r#"{{"sub":"{}","exp":{late}.5}}"#, "é".repeat(128));
    assert_eq!(
        verify(&hs256(&longest), SECRET, NOW).map(|c| c.exp),
        Ok(late)
    );
}

#[test]
fn only_hs256_is_accepted() {
    let claims = format!(r#"{{"sub":"a","exp":{}}}"#, NOW + 10);
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS512","typ":"JWT"}"#,
        r#"{"alg":"RS256"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"typ":"JWT"}"#,
    ] {
        assert_eq!(
            err(&sign(header, &claims, SECRET)),
            AuthError::WrongAlgorithm,
            "{header}"
        );
    }
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.as_bytes()));
    assert_eq!(err(&unsigned), AuthError::WrongAlgorithm);
    let crit = sign(
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        &claims,
        SECRET,
    );
    assert_eq!(err(&crit).code(), "malformed");
}

#[test]
fn garbage_is_malformed_or_missing() {
    assert_eq!(err(""), AuthError::Missing);
    assert_eq!(err("  "), AuthError::Missing);
    let good = hs256(&format!(r#"{{"sub":"a","exp":{}}}"#, NOW + 10));
    let padded = good.replacen('.', "=.", 1);
    let header_not_json = format!("{}.{}", b64(b"HS256"), good.split_once('.').expect("dot").1);
    let header_array = format!("{}.{}", b64(b"[]"), good.split_once('.').expect("dot").1);
    for token in [
        "no dots at all",
        "two.parts",
        "a.b.c.d",
        "...",
        "!!!.@@@.###",
        "eyJhbGciOiJIUzI1NiJ9.e30.%%%",
        &format!("{good}.x"),
        &padded,
        &header_not_json,
        &header_array,
        &"a".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert_eq!(err(token).code(), "malformed", "{token}");
    }
}

#[test]
fn hand_built_token_verifies() {
    // {"alg":"HS256","typ":"JWT"} . {"sub":"bob","exp":4102444800}
    let input = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2IiLCJleHAiOjQxMDI0NDQ4MDB9";
    let mut mac = HmacSha256::new_from_slice(SECRET).expect("hmac takes any key");
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
    let claims = verify(&token, SECRET, NOW).expect("verify");
    assert_eq!(
        claims,
        Claims {
            sub: "bob".into(),
            exp: 4_102_444_800
        }
    );
}

#[test]
fn independently_signed_tokens_verify() {
    let secret = b"your-256-bit-secret";
    // The jwt.io HS256 example's claims plus "exp":1516242622, signed outside this crate.
    let with_exp = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ikpv\
        aG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyLCJleHAiOjE1MTYyNDI2MjJ9.kdtHmE7_Cg5Vp_kuDoGp6XnWIfOxeaopNXumatFfDQg";
    let claims = verify(with_exp, secret, 1_516_239_022).expect("verify");
    assert_eq!(
        claims,
        Claims {
            sub: "1234567890".into(),
            exp: 1_516_242_622
        }
    );
    assert_eq!(
        verify(with_exp, secret, 1_516_242_622),
        Err(AuthError::Expired)
    );
    assert_eq!(
        verify(with_exp, SECRET, 1_516_239_022),
        Err(AuthError::BadSignature)
    );

    // The jwt.io example itself carries no exp: its signature passes, then the claim check refuses it.
    let classic = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ikpv\
        aG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    assert_eq!(
        verify(classic, secret, NOW),
        Err(AuthError::MissingClaim("exp"))
    );
}

#[test]
fn rfc7515_appendix_a1_signature_verifies() {
    // RFC 7515 A.1: CRLF-laden JSON, exp 1300819380, no sub.
    let key = URL_SAFE_NO_PAD
        .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
        .expect("key");
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6\
        Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_eq!(
        verify(token, &key, 1_300_819_379),
        Err(AuthError::MissingClaim("sub"))
    );
    assert_eq!(
        verify(token, SECRET, 1_300_819_379),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn mint_refuses_what_verify_would() {
    let hour = Duration::from_secs(3600);
    assert_eq!(
        mint("", hour, SECRET, NOW).map_err(|e| e.code()),
        Err("malformed")
    );
    assert!(mint(&"x".repeat(129), hour, SECRET, NOW).is_err());
    assert!(mint("a\u{7}", hour, SECRET, NOW).is_err());
    assert!(mint("alice", hour, b"", NOW).is_err());
    assert!(mint("alice", Duration::from_millis(999), SECRET, NOW).is_err());
    assert!(mint("alice", hour, SECRET, u64::MAX - 10).is_err());
}

#[test]
fn error_codes_and_text() {
    let all = [
        (AuthError::Missing, "missing"),
        (AuthError::Malformed("x".into()), "malformed"),
        (AuthError::BadSignature, "bad_signature"),
        (AuthError::Expired, "expired"),
        (AuthError::NotYetValid, "not_yet_valid"),
        (AuthError::WrongAudience, "wrong_audience"),
        (AuthError::WrongAlgorithm, "wrong_algorithm"),
        (AuthError::MissingClaim("exp"), "missing_claim"),
    ];
    for (error, code) in all {
        assert_eq!(error.code(), code);
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(
        AuthError::MissingClaim("exp").to_string(),
        "token lacks the `exp` claim"
    );
}

#[test]
fn ttl_forms() {
    let ok = [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3_600),
        ("7d", 604_800),
        ("3600", 3_600),
        (" 1h ", 3_600),
        ("365d", 31_536_000),
        ("31536000", 31_536_000),
        ("007s", 7),
    ];
    for (text, secs) in ok {
        assert_eq!(parse_ttl(text), Ok(Duration::from_secs(secs)), "{text}");
    }
    let bad = [
        "",
        "0",
        "0s",
        "0d",
        "366d",
        "31536001",
        "8761h",
        "s",
        "-5",
        "+5",
        "1.5h",
        "1h30m",
        "10 s",
        "5w",
        "1H",
        "h1",
        "99999999999999999999",
        "18446744073709551615d",
    ];
    for text in bad {
        assert!(parse_ttl(text).is_err(), "{text}");
    }
}

#[test]
fn ttl_errors_name_the_text() {
    assert_eq!(
        parse_ttl(" 5w ").unwrap_err().to_string(),
        "invalid ttl \"5w\": expected seconds, or a number followed by s, m, h or d"
    );
    assert_eq!(
        parse_ttl("366d").unwrap_err().to_string(),
        "invalid ttl \"366d\": longer than 365 days"
    );
    assert_eq!(
        parse_ttl("0s").unwrap_err().to_string(),
        "invalid ttl \"0s\": must be positive"
    );
}
