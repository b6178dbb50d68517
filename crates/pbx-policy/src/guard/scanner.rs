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

/// Whether a User-Agent (raw header bytes, any case) is a known scanner's. Runs for every
/// request with a User-Agent: the value is lowercased once (on the stack when it is short)
/// and each needle found with a prebuilt `memmem` finder.
pub fn scanner_user_agent(ua: &[u8]) -> bool {
    const STACK: usize = 256;
    let mut stack = [0u8; STACK];
    let heap;
    let lower: &[u8] = if ua.len() <= STACK {
        let lower = &mut stack[..ua.len()];
        for (to, from) in lower.iter_mut().zip(ua) {
            *to = from.to_ascii_lowercase();
        }
        lower
    } else {
        heap = ua.to_ascii_lowercase();
        &heap
    };
    finders().iter().any(|finder| finder.find(lower).is_some())
}

/// One finder per entry of [`SCANNER_USER_AGENTS`] (all lowercase), built once.
fn finders() -> &'static [memchr::memmem::Finder<'static>] {
    static FINDERS: std::sync::OnceLock<Vec<memchr::memmem::Finder<'static>>> =
        std::sync::OnceLock::new();
    FINDERS.get_or_init(|| {
        SCANNER_USER_AGENTS
            .iter()
            .map(|needle| memchr::memmem::Finder::new(needle.as_bytes()))
            .collect()
    })
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

    #[test]
    fn every_needle_is_found_in_any_case_and_anywhere_in_a_long_value() {
        for needle in SCANNER_USER_AGENTS {
            assert_eq!(
                needle.to_ascii_lowercase(),
                *needle,
                "needles are lowercase"
            );
            let shouting = needle.to_ascii_uppercase();
            assert!(scanner_user_agent(shouting.as_bytes()), "{shouting}");
            // Past the stack buffer's 256 bytes.
            let long = format!("{}{shouting}/1.0", "x".repeat(300));
            assert!(scanner_user_agent(long.as_bytes()), "{long}");
        }
        let long_phone = format!("Yealink SIP-T54W {}", "9".repeat(400));
        assert!(!scanner_user_agent(long_phone.as_bytes()));
        // A needle cut by the end of the value is not a match.
        assert!(!scanner_user_agent(b"friendly-scanne"));
    }
}
