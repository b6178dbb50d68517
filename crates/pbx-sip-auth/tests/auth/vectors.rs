//! Published test vectors: RFC 2617 §3.5 and RFC 7616 §3.9.1.

use pbx_sip_auth::{Algorithm, Challenge, Credentials, Ha1, ResponseInput, compute_response};

/// RFC 2617 §3.5, as printed in the RFC (line folding included).
const RFC2617_AUTHORIZATION: &str = "Digest username=\"Mufasa\",\r\n \
                 realm=\"testrealm@host.com\",\r\n \
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n \
                 uri=\"/dir/index.html\",\r\n \
                 qop=auth,\r\n \
                 nc=00000001,\r\n \
                 cnonce=\"0a4f113b\",\r\n \
                 response=\"6629fae49393a05397450978507c4ef1\",\r\n \
                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

/// RFC 7616 §3.9.1, SHA-256 credentials.
const RFC7616_AUTHORIZATION: &str = "Digest username=\"Mufasa\",
       realm=\"http-auth@example.org\",
       uri=\"/dir/index.html\",
       algorithm=SHA-256,
       nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",
       nc=00000001,
       cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\",
       qop=auth,
       response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",
       opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

fn response_for(credentials: &Credentials<'_>, password: &str, method: &str) -> String {
    let algorithm = credentials.algorithm().unwrap();
    let ha1 = Ha1::compute(
        algorithm,
        &credentials.username,
        &credentials.realm,
        password,
    );
    compute_response(
        &ha1,
        &ResponseInput {
            algorithm,
            method,
            uri: &credentials.uri,
            nonce: &credentials.nonce,
            cnonce: credentials.cnonce.as_deref(),
            nc: credentials.nc.as_ref().map(|nc| nc.as_str()),
            qop: credentials.qop.as_deref(),
        },
    )
    .as_str()
    .to_owned()
}

#[test]
fn rfc2617_section_3_5_md5_qop_auth() {
    let credentials = Credentials::parse(RFC2617_AUTHORIZATION.as_bytes()).unwrap();
    assert_eq!(credentials.username, "Mufasa");
    assert_eq!(credentials.nc.unwrap().value(), 1);
    assert_eq!(credentials.algorithm().unwrap(), Algorithm::Md5);
    assert_eq!(
        response_for(&credentials, "Circle Of Life", "GET"),
        "6629fae49393a05397450978507c4ef1"
    );
    assert_eq!(credentials.response, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn rfc7616_section_3_9_1_sha256() {
    let credentials = Credentials::parse(RFC7616_AUTHORIZATION.as_bytes()).unwrap();
    assert_eq!(credentials.algorithm().unwrap(), Algorithm::Sha256);
    assert_eq!(
        response_for(&credentials, "Circle of Life", "GET"),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn rfc7616_section_3_9_1_md5_variant() {
    // The same exchange answered with MD5 (the RFC's second Authorization example).
    let md5 = RFC7616_AUTHORIZATION
        .replace("algorithm=SHA-256", "algorithm=MD5")
        .replace(
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            "8ca523f5e9506fed4657c9700eebdbec",
        );
    let credentials = Credentials::parse(md5.as_bytes()).unwrap();
    assert_eq!(
        response_for(&credentials, "Circle of Life", "GET"),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
}

#[test]
fn rfc7616_section_3_9_1_two_challenges() {
    let sha = Challenge::parse(
        b"Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n \
          algorithm=SHA-256,\r\n nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n \
          opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    )
    .unwrap();
    assert_eq!(sha.algorithm().unwrap(), Algorithm::Sha256);
    assert!(sha.offers_qop_auth());
    assert_eq!(sha.realm, "http-auth@example.org");
    assert_eq!(
        sha.opaque.as_deref(),
        Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    );
}

#[test]
fn ha1_stored_values_are_hex_of_the_hash() {
    let md5 = Ha1::compute(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
    );
    // H(Mufasa:testrealm@host.com:Circle Of Life), RFC 2617 errata-checked value.
    assert_eq!(md5.as_hex(), "939e7578ed9e3c518a452acee763bce9");
    let reloaded = Ha1::from_hex(
        pbx_sip_auth::HashFunction::Md5,
        &md5.as_hex().to_uppercase(),
    )
    .unwrap();
    assert_eq!(reloaded, md5);
    assert!(Ha1::from_hex(pbx_sip_auth::HashFunction::Sha256, md5.as_hex()).is_err());
    let sess = Ha1::compute(
        Algorithm::Md5Sess,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
    );
    assert_eq!(sess, md5, "-sess variants store the base HA1");
    assert!(
        !format!("{md5:?}").contains(md5.as_hex()),
        "Debug hides HA1"
    );
}

#[test]
fn unix_secs_converts_caller_supplied_times() {
    use std::time::{Duration, UNIX_EPOCH};
    assert_eq!(
        pbx_sip_auth::unix_secs(UNIX_EPOCH + Duration::from_millis(1_500)),
        1
    );
    assert_eq!(
        pbx_sip_auth::unix_secs(UNIX_EPOCH - Duration::from_secs(5)),
        0
    );
}
