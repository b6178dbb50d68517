//! Property tests: print/parse round trips and no panic on hostile bytes.

use std::borrow::Cow;

use pbx_sip_auth::{
    AuthParam, Challenge, Credentials, NonceCount, NonceCountTracker, RequestContext,
};
use proptest::prelude::*;

use crate::support::{NOW, verifier};

/// Text a quoted string can carry: anything but CR and LF (which no quoted string can hold).
fn quotable() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[^\r\n]{0,24}").unwrap()
}

fn token() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9.!%*_+`'~-]{1,12}").unwrap()
}

/// Extension parameters whose names are not ones the parsers interpret.
fn extra_params() -> impl Strategy<Value = Vec<AuthParam<'static>>> {
    let param = (
        token(),
        prop_oneof![
            quotable().prop_map(|v| (v, true)),
            token().prop_map(|v| (v, false)),
        ],
    )
        .prop_map(|(name, (value, quoted))| AuthParam {
            name: Cow::Owned(format!("x-{name}")),
            value: Cow::Owned(value),
            quoted,
        });
    proptest::collection::vec(param, 0..4)
}

fn cow(text: String) -> Cow<'static, str> {
    Cow::Owned(text)
}

prop_compose! {
    fn credentials()(
        username in quotable(), realm in quotable(), nonce in quotable(), uri in quotable(),
        response in quotable(), algorithm in proptest::option::of(token()),
        cnonce in proptest::option::of(quotable()), opaque in proptest::option::of(quotable()),
        qop in proptest::option::of(token()), nc in proptest::option::of(any::<u32>()),
        params in extra_params(),
    ) -> Credentials<'static> {
        Credentials {
            username: cow(username), realm: cow(realm), nonce: cow(nonce), uri: cow(uri),
            response: cow(response), algorithm: algorithm.map(cow), cnonce: cnonce.map(cow),
            opaque: opaque.map(cow), qop: qop.map(cow), nc: nc.map(NonceCount::new), params,
        }
    }
}

prop_compose! {
    fn challenge()(
        realm in quotable(), domain in proptest::option::of(quotable()), nonce in quotable(),
        opaque in proptest::option::of(quotable()), stale in any::<bool>(),
        algorithm in proptest::option::of(token()), qop in proptest::option::of(quotable()),
        params in extra_params(),
    ) -> Challenge<'static> {
        Challenge {
            realm: cow(realm), domain: domain.map(cow), nonce: cow(nonce),
            opaque: opaque.map(cow), stale, algorithm: algorithm.map(cow), qop: qop.map(cow),
            params,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn credentials_round_trip(credentials in credentials()) {
        let printed = credentials.to_string();
        prop_assert_eq!(Credentials::parse(printed.as_bytes()).unwrap(), credentials);
    }

    #[test]
    fn challenge_round_trip(challenge in challenge()) {
        let printed = challenge.to_string();
        prop_assert_eq!(Challenge::parse(printed.as_bytes()).unwrap(), challenge.clone());
        // Several challenges in one value come back in order.
        let list = format!("{printed}, {printed}");
        let parsed = Challenge::parse_list(list.as_bytes()).unwrap();
        prop_assert_eq!(parsed, vec![challenge.clone(), challenge]);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Credentials::parse(&bytes);
        let _ = Challenge::parse(&bytes);
        let _ = Challenge::parse_list(&bytes);
    }

    #[test]
    fn digest_shaped_bytes_never_panic(
        tail in proptest::collection::vec(
            prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b','), Just(b'='), Just(b' '), Just(b'\r'),
                Just(b'\n'), Just(b'a'), Just(0xc3), Just(0x00), any::<u8>(),
            ],
            0..128,
        ),
        names in proptest::collection::vec(
            prop_oneof![Just("username"), Just("realm"), Just("nonce"), Just("nc"),
                Just("qop"), Just("stale"), Just("Digest"), Just("Basic")],
            0..6,
        ),
    ) {
        let mut value = b"Digest ".to_vec();
        for name in names {
            value.extend_from_slice(name.as_bytes());
            value.extend_from_slice(b"=");
            value.extend_from_slice(&tail);
            value.extend_from_slice(b", ");
        }
        value.extend_from_slice(&tail);
        let _ = Challenge::parse_list(&value);
        if let Ok(credentials) = Credentials::parse(&value) {
            // Whatever parses must print back to something that parses the same.
            let printed = credentials.to_string();
            prop_assert_eq!(Credentials::parse(printed.as_bytes()).unwrap(), credentials.clone());
            let mut tracker = NonceCountTracker::new(4);
            let request = RequestContext { method: "REGISTER", client: None, retransmission: None };
            let _ = verifier().verify(&request, &credentials, |_| None, &mut tracker, NOW);
        }
    }

    #[test]
    fn issued_nonces_check_until_they_expire(
        now in 0u64..(u64::MAX / 2), salt in any::<[u8; 8]>(), realm in quotable(),
        ip in proptest::option::of(any::<[u8; 16]>()), age in 0u64..600,
    ) {
        let issuer = pbx_sip_auth::NonceIssuer::new(&[9; 40], 300).unwrap();
        let client = ip.map(std::net::IpAddr::from);
        let nonce = issuer.issue(&realm, client, now, salt);
        let checked = issuer.check(nonce.as_str(), &realm, client, now + age);
        if age < 300 {
            prop_assert_eq!(checked.map(|info| info.issued_at), Ok(now));
        } else {
            prop_assert!(matches!(checked, Err(pbx_sip_auth::NonceError::Expired(_))));
        }
    }

    #[test]
    fn random_nonces_are_never_authentic(nonce in "[A-Za-z0-9_-]{43}") {
        let verifier = verifier();
        prop_assert!(verifier.issuer().check(&nonce, verifier.realm(), None, NOW).is_err());
    }
}
