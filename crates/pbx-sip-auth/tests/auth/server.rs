//! Server side: challenges, verification, stale nonces, replay, decoys.

use std::net::{IpAddr, Ipv4Addr};

use pbx_sip_auth::{
    Algorithm, Answer, AuthError, AuthRole, Challenge, Credentials, Ha1, HashFunction,
    NonceCountTracker, NonceIssuer, RequestContext, Verifier, VerifierConfig,
};

use crate::support::{
    KEY, NOW, REALM, challenge_values, challenged_client, lookup, request, verifier, verifier_with,
    verify_header, verify_header_keyed,
};

/// A REGISTER answered by the client for the verifier's challenge, as a header string.
fn answered(verifier: &Verifier, password: &str, now: u64) -> String {
    let values = challenge_values(verifier, now, false);
    let mut client = challenged_client("alice", password, &values);
    client
        .authorization("REGISTER", "sip:pbx.example.com", [5; 16])
        .unwrap()
        .to_string()
}

#[test]
fn challenges_offer_sha256_before_md5_with_one_nonce() {
    let values = challenge_values(&verifier(), NOW, false);
    assert_eq!(values.len(), 2);
    let sha = Challenge::parse(values[0].as_bytes()).unwrap();
    let md5 = Challenge::parse(values[1].as_bytes()).unwrap();
    assert_eq!(sha.algorithm().unwrap(), Algorithm::Sha256);
    assert_eq!(md5.algorithm().unwrap(), Algorithm::Md5);
    assert_eq!(sha.nonce, md5.nonce);
    assert_eq!(sha.realm, REALM);
    assert!(sha.offers_qop_auth() && !sha.stale);
    assert!(values[0].starts_with("Digest realm=\"pbx.example.com\", nonce=\""));
    assert!(
        values[0].ends_with("algorithm=SHA-256, qop=\"auth\""),
        "{}",
        values[0]
    );
    let stale = challenge_values(&verifier(), NOW, true);
    assert!(stale[0].contains("stale=true"));
}

#[test]
fn register_round_trip_and_nonce_reuse() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let values = challenge_values(&verifier, NOW, false);
    let mut client = challenged_client("alice", "secret", &values);
    for expected_nc in 1..=3 {
        let header = client
            .authorization("REGISTER", "sip:pbx.example.com", [expected_nc as u8; 16])
            .unwrap()
            .to_string();
        assert_eq!(
            verify_header(&verifier, &header, &mut tracker, NOW + 10),
            Ok(expected_nc)
        );
    }
    assert_eq!(tracker.len(), 1);
}

#[test]
fn md5_only_phone_is_accepted() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let values = challenge_values(&verifier, NOW, false);
    // An old phone that only understands the MD5 challenge.
    let mut client = challenged_client("alice", "secret", &values[1..]);
    assert_eq!(client.algorithm(), Some(Algorithm::Md5));
    let header = client
        .authorization("REGISTER", "sip:pbx.example.com", [1; 16])
        .unwrap()
        .to_string();
    assert!(header.contains("algorithm=MD5"));
    assert_eq!(verify_header(&verifier, &header, &mut tracker, NOW), Ok(1));
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let wrong = answered(&verifier, "guess", NOW);
    let wrong_result = verify_header(&verifier, &wrong, &mut tracker, NOW);
    assert_eq!(wrong_result, Err(AuthError::InvalidResponse));

    let values = challenge_values(&verifier, NOW, false);
    let mut mallory = challenged_client("mallory", "guess", &values);
    let header = mallory
        .authorization("REGISTER", "sip:pbx.example.com", [1; 16])
        .unwrap()
        .to_string();
    let credentials = Credentials::parse(header.as_bytes()).unwrap();
    let mut asked = Vec::new();
    let unknown = verifier.verify(
        &request(),
        &credentials,
        |hash| {
            asked.push(hash);
            None
        },
        &mut tracker,
        NOW,
    );
    assert_eq!(unknown, Err(AuthError::InvalidResponse));
    assert_eq!(
        asked,
        [HashFunction::Sha256],
        "lookup asked once, for the right hash"
    );
    assert_eq!(
        unknown.unwrap_err().answer(AuthRole::Www),
        wrong_result.unwrap_err().answer(AuthRole::Www)
    );
    assert!(tracker.is_empty(), "failed attempts are not recorded");
}

#[test]
fn decoy_ha1_is_deterministic_per_user() {
    let a = Ha1::decoy(HashFunction::Md5, REALM, "ghost", b"server secret");
    let b = Ha1::decoy(HashFunction::Md5, REALM, "ghost", b"server secret");
    let c = Ha1::decoy(HashFunction::Md5, REALM, "ghost2", b"server secret");
    let d = Ha1::decoy(HashFunction::Md5, REALM, "ghost", b"other secret");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
    assert_eq!(a.as_hex().len(), 32);
    assert_eq!(
        Ha1::decoy(HashFunction::Sha256, REALM, "ghost", b"k")
            .as_hex()
            .len(),
        64
    );
    let verifier = verifier();
    let debug = format!("{verifier:?}");
    assert!(
        debug.contains(REALM) && !debug.contains("decoy_secret"),
        "{debug}"
    );
    assert_eq!(
        verifier.decoy_ha1(HashFunction::Md5, "ghost"),
        verifier.decoy_ha1(HashFunction::Md5, "ghost")
    );
}

#[test]
fn stale_nonce_with_right_password_gets_stale_challenge() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let header = answered(&verifier, "secret", NOW);
    let later = NOW + 300;
    let result = verify_header(&verifier, &header, &mut tracker, later);
    assert_eq!(result, Err(AuthError::StaleNonce));
    assert_eq!(
        result.unwrap_err().answer(AuthRole::Www),
        Answer::Challenge {
            status: 401,
            stale: true
        }
    );
    // With a wrong password the expired nonce is not reported as stale (RFC 7616 §3.3).
    let wrong = answered(&verifier, "guess", NOW);
    assert_eq!(
        verify_header(&verifier, &wrong, &mut tracker, later),
        Err(AuthError::InvalidResponse)
    );
    // One second earlier the nonce is still fresh.
    assert_eq!(
        verify_header(&verifier, &header, &mut tracker, later - 1),
        Ok(1)
    );
}

/// The client's next credentials for a REGISTER to `sip:pbx.example.com` (cnonce bytes `cnonce`).
fn authorization(client: &mut pbx_sip_auth::DigestClient, cnonce: u8) -> String {
    client
        .authorization("REGISTER", "sip:pbx.example.com", [cnonce; 16])
        .unwrap()
        .to_string()
}

#[test]
fn a_retransmission_with_the_same_key_is_accepted_but_no_other_reuse() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let values = challenge_values(&verifier, NOW, false);
    let mut client = challenged_client("alice", "secret", &values);
    let first = authorization(&mut client, 1);
    let check = |tracker: &mut NonceCountTracker, key| {
        verify_header_keyed(&verifier, &first, tracker, NOW, key)
    };
    assert_eq!(check(&mut tracker, Some(7)), Ok(1));
    // The same request again (a UDP retransmission answered statelessly): accepted.
    assert_eq!(check(&mut tracker, Some(7)), Ok(1));
    assert_eq!(check(&mut tracker, Some(7)), Ok(1));
    // The same credentials on another request, or without a key: a replay.
    assert_eq!(check(&mut tracker, Some(8)), Err(AuthError::Replay));
    assert_eq!(check(&mut tracker, None), Err(AuthError::Replay));
    // The next count moves on; the old request's retransmission is then a replay.
    let second = authorization(&mut client, 2);
    assert_eq!(
        verify_header_keyed(&verifier, &second, &mut tracker, NOW, Some(9)),
        Ok(2)
    );
    assert_eq!(check(&mut tracker, Some(7)), Err(AuthError::Replay));
    // A request without a key never opens the retransmission pass for a later key 0.
    let third = authorization(&mut client, 3);
    assert_eq!(verify_header(&verifier, &third, &mut tracker, NOW), Ok(3));
    assert_eq!(
        verify_header(&verifier, &third, &mut tracker, NOW),
        Err(AuthError::Replay)
    );
}

#[test]
fn replayed_nonce_count_is_rejected() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let values = challenge_values(&verifier, NOW, false);
    let mut client = challenged_client("alice", "secret", &values);
    let first = authorization(&mut client, 1);
    let second = authorization(&mut client, 2);
    assert_eq!(verify_header(&verifier, &second, &mut tracker, NOW), Ok(2));
    let replay = verify_header(&verifier, &second, &mut tracker, NOW);
    assert_eq!(replay, Err(AuthError::Replay));
    assert_eq!(
        replay.unwrap_err().answer(AuthRole::Proxy),
        Answer::Challenge {
            status: 407,
            stale: true
        }
    );
    assert_eq!(
        verify_header(&verifier, &first, &mut tracker, NOW),
        Err(AuthError::Replay),
        "a lower count is rejected too"
    );
}

#[test]
fn tampered_or_foreign_nonces_are_invalid() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let header = answered(&verifier, "secret", NOW);
    let credentials = Credentials::parse(header.as_bytes()).unwrap();
    let nonce = credentials.nonce.to_string();
    // Change one character of the nonce (its timestamp, salt or tag).
    for index in [0, 5, 12, 20, 42] {
        let mut bytes = nonce.clone().into_bytes();
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        let tampered = header.replace(&nonce, std::str::from_utf8(&bytes).unwrap());
        assert_eq!(
            verify_header(&verifier, &tampered, &mut tracker, NOW),
            Err(AuthError::InvalidNonce),
            "index {index}"
        );
    }
    for bogus in ["", "short", "dcd98b7102dd2f0e8b11d0f600bfb0c093"] {
        let forged = header.replace(&nonce, bogus);
        assert_eq!(
            verify_header(&verifier, &forged, &mut tracker, NOW),
            Err(AuthError::InvalidNonce)
        );
    }
    // A nonce from a server with another key.
    let other = Verifier::new(&[1; 32], VerifierConfig::new(REALM)).unwrap();
    let foreign = answered(&other, "secret", NOW);
    assert_eq!(
        verify_header(&verifier, &foreign, &mut tracker, NOW),
        Err(AuthError::InvalidNonce)
    );
    // A nonce from the future beyond the allowed clock skew.
    assert_eq!(
        verify_header(&verifier, &header, &mut tracker, NOW - 31),
        Err(AuthError::InvalidNonce)
    );
}

#[test]
fn nonce_issuer_binds_realm_and_client() {
    assert!(NonceIssuer::new(&[0; 31], 300).is_err());
    let issuer = NonceIssuer::new(&KEY, 300).unwrap();
    let client = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    let nonce = issuer.issue("a.example", client, NOW, [3; 8]);
    assert_eq!(nonce.as_str().len(), pbx_sip_auth::NONCE_LEN);
    let info = issuer
        .check(nonce.as_str(), "a.example", client, NOW + 1)
        .unwrap();
    assert_eq!((info.issued_at, info.expires_at), (NOW, NOW + 300));
    let mapped = Some("::ffff:192.0.2.7".parse().unwrap());
    assert!(
        issuer
            .check(nonce.as_str(), "a.example", mapped, NOW)
            .is_ok()
    );
    assert!(
        issuer
            .check(nonce.as_str(), "b.example", client, NOW)
            .is_err()
    );
    assert!(
        issuer
            .check(nonce.as_str(), "a.example", None, NOW)
            .is_err()
    );
    let other_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)));
    assert!(
        issuer
            .check(nonce.as_str(), "a.example", other_ip, NOW)
            .is_err()
    );
    assert_ne!(
        nonce,
        issuer.issue("a.example", client, NOW, [4; 8]),
        "salt matters"
    );
    assert!(!format!("{issuer:?}").contains("66"), "Debug hides the key");
}

#[test]
fn bound_nonce_is_refused_from_another_address() {
    let verifier = verifier_with(|config| config.bind_client_address = true);
    let mut tracker = NonceCountTracker::new(64);
    let phone = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
    let values: Vec<String> = verifier
        .challenges(NOW, [1; 8], phone, false)
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut client = challenged_client("alice", "secret", &values);
    let header = client
        .authorization("REGISTER", "sip:pbx.example.com", [1; 16])
        .unwrap()
        .to_string();
    let credentials = Credentials::parse(header.as_bytes()).unwrap();
    let users = lookup("alice", "secret");
    let from = |client| RequestContext {
        method: "REGISTER",
        client,
        retransmission: None,
    };
    let elsewhere = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)));
    assert_eq!(
        verifier
            .verify(
                &from(elsewhere),
                &credentials,
                |h| users("alice", h),
                &mut tracker,
                NOW
            )
            .unwrap_err(),
        AuthError::InvalidNonce
    );
    assert!(
        verifier
            .verify(
                &from(phone),
                &credentials,
                |h| users("alice", h),
                &mut tracker,
                NOW
            )
            .is_ok()
    );
}

#[test]
fn wrong_realm_is_refused() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let header = answered(&verifier, "secret", NOW).replace(REALM, "other.example.com");
    let result = verify_header(&verifier, &header, &mut tracker, NOW);
    assert_eq!(result, Err(AuthError::RealmMismatch));
    assert_eq!(
        result.unwrap_err().answer(AuthRole::Www),
        Answer::Challenge {
            status: 401,
            stale: false
        }
    );
}

#[test]
fn qop_auth_without_nc_or_cnonce_is_a_bad_request() {
    // What SIPVicious svcrack sends: qop=auth but no nc and no cnonce.
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let header = answered(&verifier, "secret", NOW);
    let credentials = Credentials::parse(header.as_bytes()).unwrap();
    let mut no_nc = credentials.clone();
    no_nc.nc = None;
    let mut no_cnonce = credentials.clone();
    no_cnonce.cnonce = None;
    let mut neither = credentials.clone();
    neither.nc = None;
    neither.cnonce = None;
    for (broken, expected) in [
        (no_nc, AuthError::MissingNonceCount),
        (no_cnonce, AuthError::MissingCnonce),
        (neither, AuthError::MissingNonceCount),
    ] {
        let header = broken.to_string();
        let result = verify_header(&verifier, &header, &mut tracker, NOW);
        assert_eq!(result, Err(expected));
        assert_eq!(
            result.unwrap_err().answer(AuthRole::Www),
            Answer::BadRequest
        );
    }
}

#[test]
fn unknown_scheme_gets_a_challenge() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let result = verify_header(
        &verifier,
        "NoOneKnowsThisScheme opaque-data=here",
        &mut tracker,
        NOW,
    );
    assert_eq!(result, Err(AuthError::UnsupportedScheme));
    assert_eq!(
        result.unwrap_err().answer(AuthRole::Www),
        Answer::Challenge {
            status: 401,
            stale: false
        }
    );
    let garbage = verify_header(&verifier, "Digest username", &mut tracker, NOW);
    assert_eq!(
        garbage.unwrap_err().answer(AuthRole::Www),
        Answer::BadRequest
    );
}

#[test]
fn rfc2069_credentials_only_when_enabled() {
    let header = {
        let verifier = verifier();
        let values: Vec<String> = challenge_values(&verifier, NOW, false)
            .into_iter()
            .map(|v| v.replace(", qop=\"auth\"", ""))
            .collect();
        let mut client = challenged_client("alice", "secret", &values);
        client
            .authorization("REGISTER", "sip:pbx.example.com", [1; 16])
            .unwrap()
            .to_string()
    };
    assert!(
        !header.contains("qop") && !header.contains("nc="),
        "{header}"
    );
    let mut tracker = NonceCountTracker::new(64);
    assert_eq!(
        verify_header(&verifier(), &header, &mut tracker, NOW),
        Err(AuthError::QopRequired)
    );
    let legacy = verifier_with(|config| config.allow_rfc2069 = true);
    assert_eq!(verify_header(&legacy, &header, &mut tracker, NOW), Ok(0));
}

#[test]
fn algorithm_qop_opaque_and_response_checks() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(64);
    let header = answered(&verifier, "secret", NOW);
    let sha512 = header.replace("algorithm=SHA-256", "algorithm=SHA-512-256");
    assert_eq!(
        verify_header(&verifier, &sha512, &mut tracker, NOW),
        Err(AuthError::UnsupportedAlgorithm),
        "not enabled in the config"
    );
    let unknown = header.replace("algorithm=SHA-256", "algorithm=SHA-1");
    assert_eq!(
        verify_header(&verifier, &unknown, &mut tracker, NOW),
        Err(AuthError::UnsupportedAlgorithm)
    );
    let auth_int = header.replace("qop=auth", "qop=auth-int");
    assert_eq!(
        verify_header(&verifier, &auth_int, &mut tracker, NOW),
        Err(AuthError::UnsupportedQop)
    );
    let credentials = Credentials::parse(header.as_bytes()).unwrap();
    let response = credentials.response.to_string();
    let short = header.replace(&response, &response[..32]);
    assert_eq!(
        verify_header(&verifier, &short, &mut tracker, NOW),
        Err(AuthError::MalformedResponse)
    );
    let upper = header.replace(&response, &response.to_uppercase());
    assert_eq!(
        verify_header(&verifier, &upper, &mut tracker, NOW),
        Ok(1),
        "hex case ignored"
    );

    let with_opaque = verifier_with(|config| config.opaque = Some("tenant-7".into()));
    let no_opaque = answered(&with_opaque, "secret", NOW).replace(", opaque=\"tenant-7\"", "");
    assert_eq!(
        verify_header(&with_opaque, &no_opaque, &mut tracker, NOW),
        Err(AuthError::OpaqueMismatch)
    );
    // Same key, realm, time and salt as above: the nonce is the one already used, so use a
    // fresh tracker.
    let echoed = answered(&with_opaque, "secret", NOW);
    assert!(echoed.contains("opaque=\"tenant-7\""));
    let mut fresh = NonceCountTracker::new(64);
    assert_eq!(verify_header(&with_opaque, &echoed, &mut fresh, NOW), Ok(1));
}

#[test]
fn session_and_sha512_algorithms_verify_when_enabled() {
    for algorithm in [
        Algorithm::Md5Sess,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ] {
        let verifier = verifier_with(|config| config.algorithms = vec![algorithm]);
        let mut tracker = NonceCountTracker::new(8);
        let values = challenge_values(&verifier, NOW, false);
        let mut client = challenged_client("alice", "secret", &values);
        assert_eq!(client.algorithm(), Some(algorithm));
        let header = client
            .authorization("REGISTER", "sip:pbx.example.com", [1; 16])
            .unwrap()
            .to_string();
        let credentials = Credentials::parse(header.as_bytes()).unwrap();
        let stored = Ha1::compute(algorithm, "alice", REALM, "secret");
        let identity = verifier
            .verify(
                &request(),
                &credentials,
                |_| Some(stored),
                &mut tracker,
                NOW,
            )
            .unwrap();
        assert_eq!(identity.algorithm, algorithm);
    }
}

#[test]
fn bad_configs_are_refused() {
    use pbx_sip_auth::ConfigError;
    let config = VerifierConfig::new(REALM);
    assert_eq!(
        Verifier::new(&[0; 16], config.clone()).unwrap_err(),
        ConfigError::KeyTooShort
    );
    let mut bad = config.clone();
    bad.realm = "a\r\nb".into();
    assert_eq!(
        Verifier::new(&KEY, bad).unwrap_err(),
        ConfigError::InvalidRealm
    );
    let mut bad = config.clone();
    bad.algorithms.clear();
    assert_eq!(
        Verifier::new(&KEY, bad).unwrap_err(),
        ConfigError::NoAlgorithms
    );
    let mut bad = config;
    bad.nonce_lifetime_secs = 0;
    assert_eq!(
        Verifier::new(&KEY, bad).unwrap_err(),
        ConfigError::ZeroLifetime
    );
}

#[test]
fn tracker_is_bounded_and_eviction_never_reopens_replay() {
    let verifier = verifier();
    let mut tracker = NonceCountTracker::new(2);
    // Three nonces issued one second apart, each used once.
    let headers: Vec<String> = (0..3)
        .map(|i| answered(&verifier, "secret", NOW + i))
        .collect();
    let replays: Vec<String> = headers.clone();
    for header in &headers {
        assert_eq!(
            verify_header(&verifier, header, &mut tracker, NOW + 5),
            Ok(1)
        );
    }
    assert_eq!(tracker.len(), 2);
    assert_eq!(tracker.evictions(), 1);
    // The evicted nonce (the oldest) cannot be replayed.
    assert_eq!(
        verify_header(&verifier, &replays[0], &mut tracker, NOW + 6),
        Err(AuthError::Replay)
    );
    // A fresh nonce issued later is accepted.
    let fresh = answered(&verifier, "secret", NOW + 7);
    assert_eq!(
        verify_header(&verifier, &fresh, &mut tracker, NOW + 7),
        Ok(1)
    );
    // Expired entries are purged.
    tracker.purge_expired(NOW + 1000);
    assert!(tracker.is_empty());
}

#[test]
fn response_compare_is_constant_time() {
    // Structural check: the response comparison goes through `subtle`, and no `==` on the
    // digest bytes exists in the verifier.
    let source = include_str!("../../src/server.rs");
    assert!(source.contains("expected.as_bytes().ct_eq(received)"));
    assert!(!source.contains("expected.as_bytes() =="));
    assert!(!source.contains("expected.as_str() =="));
    // The nonce tag is checked with the MAC's own constant-time verification.
    assert!(include_str!("../../src/nonce.rs").contains("verify_truncated_left"));
}

/// The printed challenges the registrar sends (`challenge_values`, from templates) are the
/// `Display` of `challenges`, for every algorithm set, opaque, stale flag and binding.
#[test]
fn printed_challenge_values_equal_the_displayed_challenges() {
    let configs: [fn(&mut VerifierConfig); 4] = [
        |_| {},
        |c| c.algorithms = vec![Algorithm::Md5],
        |c| c.opaque = Some("op\"aque\\x".to_owned()),
        |c| {
            c.realm = "realm with \"quotes\" nonce=\"NONCE\"".to_owned();
            c.bind_client_address = true;
        },
    ];
    let client = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    for edit in configs {
        let verifier = verifier_with(edit);
        for stale in [false, true] {
            for salt in [[0; 8], [9; 8]] {
                let displayed: Vec<String> = verifier
                    .challenges(NOW, salt, client, stale)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                let printed: Vec<String> = verifier
                    .challenge_values(NOW, salt, client, stale)
                    .map(|value| String::from_utf8(value).unwrap())
                    .collect();
                assert_eq!(printed, displayed);
                for value in &printed {
                    let parsed = Challenge::parse(value.as_bytes()).unwrap();
                    assert_eq!(parsed.stale, stale);
                    assert_eq!(parsed.realm, verifier.realm());
                }
            }
        }
    }
}
