//! SDP bodies from the shared conformance corpora (RFC 4475, RFC 5118, PROTOS c07-sip), read in
//! place. Skips with a notice when the corpus is absent, except under `CI=true`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use pbx_sdp::{
    AnswerOptions, Codec, Direction, Origin, SdpError, SessionDescription, negotiate_answer,
};

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CLOUDPBX_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "conformance corpus missing at {}",
        dir.display()
    );
    eprintln!(
        "SKIP: conformance corpus not found at {} (set CLOUDPBX_CONFORMANCE_DIR)",
        dir.display()
    );
    None
}

/// The body after the first blank line of a SIP message, if it looks like SDP.
fn sdp_body(message: &[u8]) -> Option<&[u8]> {
    let at = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))?;
    let body = &message[at..];
    body.starts_with(b"v=").then_some(body)
}

/// Parses; when accepted, checks the print round trip and that B2BUA edits do not panic.
fn exercise(body: &[u8]) -> Result<SessionDescription, SdpError> {
    let sdp = SessionDescription::parse(body)?;
    let printed = sdp.to_bytes();
    let again = SessionDescription::parse(&printed).expect("printed description parses");
    assert_eq!(again.to_bytes(), printed);
    if body.ends_with(b"\r\n") && !body.ends_with(b"\r\n\r\n") {
        assert_eq!(
            &printed[..],
            body,
            "unchanged description prints byte-exact"
        );
    }
    let relay: IpAddr = "203.0.113.1".parse().unwrap();
    let mut edited = sdp.clone();
    edited.rewrite_connection(relay);
    for index in 0..edited.media().len() {
        edited.set_media_port(index, 30000).unwrap();
    }
    edited.set_direction(Direction::SendOnly);
    let _ = edited.restrict_to(&Codec::DEFAULT_SUPPORTED);
    SessionDescription::parse(&edited.to_bytes()).expect("edited description parses");
    let options = AnswerOptions::new(Origin::new("pbx", 1, 1, relay), relay, vec![30000; 8]);
    if let Ok(answer) = negotiate_answer(&sdp, &Codec::DEFAULT_SUPPORTED, &options) {
        SessionDescription::parse(&answer.to_bytes()).expect("answer parses");
    }
    Ok(sdp)
}

#[test]
fn rfc5118_sdp_bodies() {
    let Some(dir) = corpus_dir() else { return };
    let v6 = exercise(
        sdp_body(&std::fs::read(dir.join("rfc5118/wire/ipv6-in-sdp.sip")).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        v6.connection().and_then(|c| c.ip()),
        Some("2001:db8::20".parse().unwrap())
    );
    assert_eq!(v6.media().len(), 2);
    let multi = exercise(
        sdp_body(&std::fs::read(dir.join("rfc5118/wire/mult-ip-in-sdp.sip")).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(multi.connection(), None);
    assert_eq!(
        multi.effective_connection(1).and_then(|c| c.ip()),
        Some("2001:db8::1".parse().unwrap())
    );
    assert_eq!(multi.session_name(), b"");
    let mapped = exercise(
        sdp_body(&std::fs::read(dir.join("rfc5118/wire/ipv4-mapped-ipv6.sip")).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        mapped.connection().and_then(|c| c.ip()),
        Some("::ffff:192.0.2.2".parse().unwrap())
    );
}

#[test]
fn rfc4475_sdp_bodies() {
    let Some(dir) = corpus_dir() else { return };
    let mut results = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("rfc4475")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "dat") {
            continue;
        }
        let message = std::fs::read(&path).unwrap();
        if let Some(body) = sdp_body(&message) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            results.insert(name, exercise(body).err());
        }
    }
    eprintln!("rfc4475 SDP bodies: {results:?}");
    assert!(results.len() >= 15, "found {} SDP bodies", results.len());
    for (name, error) in &results {
        let expected = match name.as_str() {
            // The only RFC 4475 SDP body that is itself well-formed.
            "inv2543.dat" => None,
            // No s= line (the message tests a Content-Type mismatch; the SDP is broken too).
            "mismatch02.dat" => Some(SdpError::MissingSessionName { line: 3 }),
            // Body is `v=0` then `testing=123`.
            "test.dat" => Some(SdpError::MalformedLine { line: 2 }),
            // Every other torture message carries `a=rtpmap:31 LPC`: no clock rate, which the
            // RFC 8866 rtpmap grammar requires. We refuse it rather than guess.
            _ => Some(SdpError::InvalidRtpmap { line: 8 }),
        };
        assert_eq!(error, &expected, "{name}");
    }
    // The lenient parse takes the LPC ones, keeping the broken line byte-exact and untyped.
    let wsinv = std::fs::read(dir.join("rfc4475/wsinv.dat")).unwrap();
    let body = sdp_body(&wsinv).unwrap();
    let (sdp, demoted) = SessionDescription::parse_lenient(body).unwrap();
    assert_eq!(demoted, [SdpError::InvalidRtpmap { line: 8 }]);
    assert_eq!(&sdp.to_bytes()[..], body);
    assert_eq!(sdp.media()[1].rtpmap(31), None);
    assert_eq!(
        sdp.media()[1].codecs()[0].encoding,
        "H261",
        "static table still applies"
    );
}

#[test]
fn protos_c07_sdp_bodies_never_panic() {
    let Some(dir) = corpus_dir() else { return };
    let cases = dir.join("protos-c07-sip/cases");
    let mut per_group: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let index = std::fs::read_to_string(dir.join("protos-c07-sip/index.tsv")).unwrap();
    for row in index.lines().skip(1) {
        let mut columns = row.split('\t');
        let (Some(case), Some(group)) = (columns.next(), columns.next()) else {
            continue;
        };
        let file = std::fs::read(cases.join(case)).unwrap();
        let space = file.iter().position(|b| *b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&file[..space])
            .unwrap()
            .parse()
            .unwrap();
        let invite = &file[space + 1..space + 1 + len];
        let invite = replace(invite, b"<From-Address>", b"192.0.2.1");
        let invite = replace(&invite, b"<From-IP>", b"192.0.2.1");
        let Some(body) = sdp_body(&invite) else {
            continue;
        };
        let accepted = exercise(body).is_ok();
        let entry = per_group.entry(group.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(accepted);
        if group == "valid" {
            assert!(accepted, "case 0 (valid) must parse");
        }
    }
    eprintln!("PROTOS SDP (cases with an SDP body, accepted) per group: {per_group:?}");
    assert!(per_group.values().map(|v| v.0).sum::<usize>() > 4000);
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}
