//! SIP URI comparison (RFC 3261 §19.1.4), used to match a Contact against stored bindings.

use pbx_sip::scan::percent_decode;
use pbx_sip::{Host, Params, SipUri, Uri};

/// Parameters that, when present in either URI, must be present and equal in both.
const STRICT_PARAMS: [&[u8]; 5] = [b"user", b"ttl", b"method", b"maddr", b"transport"];

/// Whether `a` and `b` are equivalent URIs: for SIP/SIPS the §19.1.4 rules (user and
/// password case-sensitive after unescaping, host case-insensitive, ports equal including
/// absence, `user`/`ttl`/`method`/`maddr`/`transport` required on both sides when on
/// either, other parameters compared only when on both, headers all equal); other schemes
/// byte for byte.
pub fn uri_equivalent(a: &Uri, b: &Uri) -> bool {
    match (a, b) {
        (Uri::Sip(a), Uri::Sip(b)) => sip_equivalent(a, b),
        _ => a.to_bytes() == b.to_bytes(),
    }
}

fn sip_equivalent(a: &SipUri, b: &SipUri) -> bool {
    a.scheme == b.scheme
        && decoded_eq(a.user.as_deref(), b.user.as_deref())
        && decoded_eq(a.password.as_deref(), b.password.as_deref())
        && host_eq(&a.host, &b.host)
        && a.port == b.port
        && params_eq(&a.params, &b.params)
        && headers_eq(a.headers.as_deref(), b.headers.as_deref())
}

fn decoded_eq(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => percent_decode(a) == percent_decode(b),
        (None, None) => true,
        _ => false,
    }
}

fn host_eq(a: &Host, b: &Host) -> bool {
    match (a, b) {
        (Host::Domain(a), Host::Domain(b)) => {
            percent_decode(a).eq_ignore_ascii_case(&percent_decode(b))
        }
        _ => a == b,
    }
}

fn find<'p>(params: &'p Params, name: &[u8]) -> Option<Option<&'p [u8]>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn value_eq(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => percent_decode(a).eq_ignore_ascii_case(&percent_decode(b)),
        (None, None) => true,
        _ => false,
    }
}

fn params_eq(a: &Params, b: &Params) -> bool {
    for name in STRICT_PARAMS {
        match (find(a, name), find(b, name)) {
            (None, None) => {}
            (Some(x), Some(y)) if value_eq(x, y) => {}
            _ => return false,
        }
    }
    a.iter().all(|(name, value)| {
        STRICT_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
            || find(b, name).is_none_or(|other| value_eq(value, other))
    })
}

fn header_pairs(headers: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = headers
        .split(|&b| b == b'&')
        .filter(|field| !field.is_empty())
        .map(|field| {
            let (name, value) = match field.iter().position(|&b| b == b'=') {
                Some(i) => (&field[..i], &field[i + 1..]),
                None => (field, &b""[..]),
            };
            (
                percent_decode(name).to_ascii_lowercase(),
                percent_decode(value).into_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn headers_eq(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    header_pairs(a.unwrap_or_default()) == header_pairs(b.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        uri_equivalent(
            &Uri::parse(a.to_owned()).unwrap(),
            &Uri::parse(b.to_owned()).unwrap(),
        )
    }

    #[test]
    fn rfc3261_equal_examples() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    #[test]
    fn rfc3261_unequal_examples() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com:6000;transport=tcp",
            "sip:bob@biloxi.com:5060;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
        assert!(!eq(
            "sip:%00@host5.example.com",
            "sip:%00%00@host5.example.com"
        ));
    }
}
