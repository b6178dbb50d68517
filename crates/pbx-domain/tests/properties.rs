//! Property tests: parsers accept every notation they promise and normalise to one value.

// Reason: test code; a failed unwrap is the test failing.
#![allow(clippy::unwrap_used)]

use pbx_domain::credentials::base32;
use pbx_domain::{AuthUserName, E164, IpWhitelist, MacAddress, parse_network};
use proptest::prelude::*;

proptest! {
    #[test]
    fn mac_notations_agree(bytes in any::<[u8; 6]>()) {
        let bare = bytes.iter().map(|b| format!("{b:02X}")).collect::<String>();
        let colon = bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        let cisco = format!("{}.{}.{}", &bare[0..4], &bare[4..8], &bare[8..12]).to_lowercase();
        let expected = MacAddress::parse(&bare).unwrap();
        prop_assert_eq!(expected.octets(), bytes);
        prop_assert_eq!(MacAddress::parse(&colon).unwrap(), expected);
        prop_assert_eq!(MacAddress::parse(&cisco).unwrap(), expected);
        prop_assert_eq!(MacAddress::parse(&expected.to_string()).unwrap(), expected);
    }

    #[test]
    fn e164_canonical_form_is_a_fixed_point(first in 1u8..=9, rest in "[0-9]{1,14}") {
        let text = format!("+{first}{rest}");
        let number = E164::parse(&text).unwrap();
        prop_assert_eq!(number.as_str(), text.as_str());
        prop_assert_eq!(E164::parse(number.as_str()).unwrap(), number);
    }

    #[test]
    fn parsers_never_panic(text in "\\PC{0,40}") {
        let _ = MacAddress::parse(&text);
        let _ = E164::parse(&text);
        let _ = parse_network(&text);
        let _ = AuthUserName::parse(&text);
    }

    #[test]
    fn base32_length_and_alphabet(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let encoded = base32(&bytes);
        prop_assert_eq!(encoded.len(), (bytes.len() * 8).div_ceil(5));
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
    }

    #[test]
    fn ipv4_network_contains_its_hosts(address in any::<u32>(), prefix in 0u8..=32, host in any::<u32>()) {
        let network = parse_network(&format!("{}/{prefix}", std::net::Ipv4Addr::from(address))).unwrap();
        let list = IpWhitelist::new([network]);
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        let inside = std::net::Ipv4Addr::from((address & mask) | (host & !mask));
        prop_assert!(list.allows(inside.into()));
        let mapped = inside.to_ipv6_mapped();
        prop_assert!(list.allows(mapped.into()), "IPv4-mapped form matches too");
    }
}
