//! Header grammar: parsing and printing of credentials and challenges.

use pbx_sip_auth::{Challenge, Credentials, ParseError, digest_uri_matches};

const SIP_AUTHORIZATION: &[u8] = b"Digest username=\"bob\", realm=\"biloxi.com\", \
    nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:bob@biloxi.com\", \
    qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
    response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

#[test]
fn parses_sip_credentials_with_case_insensitive_names() {
    let lower = Credentials::parse(SIP_AUTHORIZATION).unwrap();
    let shouting = String::from_utf8(SIP_AUTHORIZATION.to_vec())
        .unwrap()
        .replace("Digest", "DIGEST")
        .replace("username=", "UserName =")
        .replace("qop=auth", "QOP= \"auth\"");
    let upper = Credentials::parse(shouting.as_bytes()).unwrap();
    assert_eq!(upper.username, lower.username);
    assert_eq!(upper.qop.as_deref(), Some("auth"));
    assert_eq!(lower.uri, "sip:bob@biloxi.com");
    assert_eq!(
        lower.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
}

#[test]
fn quoted_strings_unescape_and_print_back_escaped() {
    let value = br#"Digest username="a\"b\\c", realm="r", nonce="n", uri="sip:x", response="00""#;
    let credentials = Credentials::parse(value).unwrap();
    assert_eq!(credentials.username, "a\"b\\c");
    let printed = credentials.to_string();
    assert!(printed.contains(r#"username="a\"b\\c""#), "{printed}");
    assert_eq!(Credentials::parse(printed.as_bytes()).unwrap(), credentials);
}

#[test]
fn unknown_parameters_are_kept_in_order() {
    let value = b"Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", \
        response=\"00\", userhash=false, x-ext=\"hello, world\"";
    let credentials = Credentials::parse(value).unwrap();
    let names: Vec<&str> = credentials.params.iter().map(|p| &*p.name).collect();
    assert_eq!(names, ["userhash", "x-ext"]);
    assert_eq!(credentials.params[1].value, "hello, world");
    assert!(credentials.params[1].quoted);
    assert!(!credentials.params[0].quoted);
    let printed = credentials.to_string();
    assert!(
        printed.ends_with("userhash=false, x-ext=\"hello, world\""),
        "{printed}"
    );
}

#[test]
fn other_schemes_are_reported_as_unsupported() {
    for value in [
        &b"NoOneKnowsThisScheme opaque-data=here"[..],
        b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        b"Bearer",
    ] {
        assert_eq!(
            Credentials::parse(value),
            Err(ParseError::UnsupportedScheme)
        );
        assert_eq!(Challenge::parse(value), Err(ParseError::UnsupportedScheme));
    }
}

#[test]
fn malformed_values_are_errors() {
    let cases: [(&[u8], ParseError); 10] = [
        (b"", ParseError::Empty),
        (b"   ", ParseError::Empty),
        (b"Digest username=\"u", ParseError::UnterminatedQuotedString),
        (b"Digest username", ParseError::ExpectedEquals { at: 15 }),
        (b"Digest username=", ParseError::ExpectedValue { at: 16 }),
        (
            b"Digest,username=\"u\"",
            ParseError::ExpectedWhitespace { at: 6 },
        ),
        (
            b"Digest username=\"u\" realm=\"r\"",
            ParseError::ExpectedComma { at: 20 },
        ),
        (
            b"Digest username=\"u\", username=\"v\"",
            ParseError::DuplicateParameter("username"),
        ),
        (
            b"Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\"",
            ParseError::MissingParameter("username"),
        ),
        (
            b"Digest username=\"a\x01b\"",
            ParseError::InvalidCharacter { at: 18 },
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(
            Credentials::parse(value),
            Err(expected),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
    assert_eq!(
        Credentials::parse(b"Digest \xff"),
        Err(ParseError::InvalidUtf8)
    );
    assert_eq!(
        Credentials::parse(&vec![b'a'; 9000]),
        Err(ParseError::TooLong)
    );
}

#[test]
fn nonce_count_must_be_eight_hex_digits() {
    let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\"";
    for bad in ["1", "0000000g", "000000001"] {
        let value = format!("{base}, nc={bad}");
        assert_eq!(
            Credentials::parse(value.as_bytes()),
            Err(ParseError::InvalidNonceCount),
            "{bad}"
        );
    }
    let value = format!("{base}, nc=0000000A");
    let credentials = Credentials::parse(value.as_bytes()).unwrap();
    let nc = credentials.nc.unwrap();
    assert_eq!((nc.value(), nc.as_str()), (10, "0000000A"), "kept as sent");
}

#[test]
fn too_many_extension_parameters_are_refused() {
    let mut value = String::from("Digest realm=\"r\", nonce=\"n\"");
    for i in 0..17 {
        value.push_str(&format!(", x{i}=y"));
    }
    assert_eq!(
        Challenge::parse(value.as_bytes()),
        Err(ParseError::TooManyParameters)
    );
}

#[test]
fn challenge_list_with_several_algorithms_and_other_schemes() {
    let value = b"Basic realm=\"legacy\", Digest realm=\"r\", nonce=\"n1\", algorithm=SHA-256, \
        qop=\"auth\", Negotiate abc==, Digest realm=\"r\", nonce=\"n1\", algorithm=MD5, \
        qop=\"auth,auth-int\", stale=TRUE";
    let challenges = Challenge::parse_list(value).unwrap();
    assert_eq!(challenges.len(), 2);
    assert_eq!(challenges[0].algorithm.as_deref(), Some("SHA-256"));
    assert!(!challenges[0].stale);
    assert_eq!(challenges[1].algorithm.as_deref(), Some("MD5"));
    assert!(challenges[1].stale);
    assert!(challenges[1].offers_qop_auth());
    // A single-challenge parse refuses the list.
    assert!(Challenge::parse(value).is_err());
    assert_eq!(
        Challenge::parse_list(b"Basic realm=\"x\""),
        Err(ParseError::UnsupportedScheme)
    );
}

#[test]
fn challenge_prints_in_sip_form() {
    let challenge = Challenge::parse(
        b"Digest realm=\"atlanta.com\", domain=\"sip:ss1.carrier.com\", qop=\"auth\", \
          nonce=\"f84f1cec41e6cbe5aea9c8e88d359\", opaque=\"\", stale=FALSE, algorithm=MD5",
    )
    .unwrap();
    assert_eq!(
        challenge.to_string(),
        "Digest realm=\"atlanta.com\", domain=\"sip:ss1.carrier.com\", \
         nonce=\"f84f1cec41e6cbe5aea9c8e88d359\", opaque=\"\", algorithm=MD5, qop=\"auth\""
    );
}

#[test]
fn printing_never_emits_line_breaks() {
    let mut credentials = Credentials::parse(SIP_AUTHORIZATION).unwrap();
    credentials.username = "evil\r\nVia: injected".into();
    let printed = credentials.to_string();
    assert!(
        !printed.contains('\r') && !printed.contains('\n'),
        "{printed}"
    );
}

#[test]
fn digest_uri_comparison() {
    assert!(digest_uri_matches(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com"
    ));
    assert!(digest_uri_matches(
        "SIP:bob@BILOXI.com",
        "sip:bob@biloxi.com"
    ));
    assert!(!digest_uri_matches(
        "sip:Bob@biloxi.com",
        "sip:bob@biloxi.com"
    ));
    assert!(digest_uri_matches("sip:Biloxi.com", "sip:biloxi.com"));
    assert!(!digest_uri_matches("sip:biloxi.com", "sip:bob@biloxi.com"));
    assert!(!digest_uri_matches("sip:evil.com", "sip:biloxi.com"));
}

#[test]
fn digest_uri_ipv6_host_matches_without_brackets() {
    // SIPp 3.6 over IPv6 writes the Request-URI host without its brackets.
    assert!(digest_uri_matches("sip:::1:15060", "sip:[::1]:15060"));
    assert!(digest_uri_matches("sip:[::1]:15060", "sip:[::1]:15060"));
    assert!(digest_uri_matches("sip:[::1]:15060", "sip:::1:15060"));
    assert!(digest_uri_matches(
        "sip:alice@2001:db8::7;transport=tcp",
        "sip:alice@[2001:DB8::7];transport=tcp"
    ));
    // Every other difference still fails.
    assert!(!digest_uri_matches("sip:::2:15060", "sip:[::1]:15060"));
    assert!(!digest_uri_matches("sip:::1:15061", "sip:[::1]:15060"));
    assert!(!digest_uri_matches("sip:::1", "sip:[::1]:15060"));
    assert!(!digest_uri_matches(
        "sip:bob@::1:15060",
        "sip:alice@[::1]:15060"
    ));
    assert!(!digest_uri_matches("sips:::1:15060", "sip:[::1]:15060"));
    // Brackets around something that is not an IPv6 address are not dropped.
    assert!(!digest_uri_matches("sip:host:5060", "sip:[host]:5060"));
}
