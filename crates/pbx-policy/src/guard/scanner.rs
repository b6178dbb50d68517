//! Known SIP scanner and attack-tool User-Agent strings.

/// Substrings (matched case-insensitively) of User-Agent values sent by SIP scanning and
/// brute-force tools. Legitimate phones never send these. The list collects the tools seen in
/// honeypot reports and in the default filters of fail2ban, Kamailio's `secfilter` and
/// Asterisk-era blocklists: SIPVicious (`friendly-scanner`, `sipvicious`, `sipcli`), VaxSIP,
/// `sundayddr`, iWar, SIVuS, SIPScan, pplsip, `sip-scan`, `smap`, `sipsak`-based scanners
/// (`Ozeki`-branded scans are left out: the Ozeki SDK is also used legitimately).
pub const SCANNER_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "vaxipuseragent",
    "sundayddr",
    "iwar",
    "sivus",
    "sipscan",
    "sip-scan",
    "pplsip",
    "smap",
    "sipptk",
    "siparmyknife",
    "nmap",
    "masscan",
    "voip-scanner",
    "fscan",
];

/// Whether a User-Agent (raw header bytes, any case) is a known scanner's.
pub fn scanner_user_agent(ua: &[u8]) -> bool {
    SCANNER_USER_AGENTS
        .iter()
        .any(|needle| contains_ignore_case(ua, needle.as_bytes()))
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || haystack.len() < needle.len() {
        return needle.is_empty();
    }
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scanners() {
        for ua in [
            &b"friendly-scanner"[..],
            b"sipvicious 0.3.0",
            b"sipcli/v1.8",
            b"VaxSIPUserAgent/3.1",
            b"sundayddr",
            b"iWar",
            b"SIVuS Scanner",
            b"SIPScan",
            b"pplsip",
        ] {
            assert!(scanner_user_agent(ua), "{}", String::from_utf8_lossy(ua));
        }
        for ua in [
            &b"Yealink SIP-T54W 96.86.0.70"[..],
            b"Linphone/5.2",
            b"",
            b"Grandstream GXP2170",
        ] {
            assert!(!scanner_user_agent(ua), "{}", String::from_utf8_lossy(ua));
        }
    }
}
