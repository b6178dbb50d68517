//! RFC 4475 and RFC 5118 torture messages, one test per file, judged by each corpus's
//! `index.tsv` verdict, plus the fields the RFC text names for each message.

// Test code: a failed expectation must abort the test with a message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::large_enum_variant
)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use pbx_sip::framing::{Frame, StreamDecoder};
use pbx_sip::{
    Contact, Host, Message, Method, ParseError, Policy, Transport, Uri, ValueError,
    scan::{percent_decode, unquote},
};
use pbx_test_support::conformance::{IndexRow, read_bytes, read_index, require_or_skip};

/// The outcome of the parse step plus the validate step every element runs.
enum Outcome {
    Accepted(Message),
    Rejected(ParseError),
}

struct Case {
    row: IndexRow,
    input: Bytes,
    outcome: Outcome,
}

fn load(corpus: &str, file: &str) -> Option<Case> {
    let dir: PathBuf = require_or_skip(corpus)?;
    let index = read_index(&dir).expect("index.tsv readable");
    let (key, path) = match corpus {
        "rfc5118" => (file.to_owned(), format!("wire/{file}.sip")),
        // A variant is judged by the row of the file it was derived from
        // (`variants/baddn-terminated.dat` → `baddn.dat`).
        _ => match file.strip_prefix("variants/") {
            Some(v) => (
                format!("{}.dat", v.split(['-', '.']).next().unwrap_or(v)),
                file.to_owned(),
            ),
            None => (file.to_owned(), file.to_owned()),
        },
    };
    let row = index
        .get(&key)
        .unwrap_or_else(|| panic!("{file} not in {corpus}/index.tsv"))
        .clone();
    if corpus == "rfc5118" {
        assert_eq!(row.get("wire_file"), path);
    }
    let input = Bytes::from(read_bytes(&dir, &path).expect("corpus file readable"));
    let outcome = match Message::parse_datagram(input.clone()) {
        Err(e) => Outcome::Rejected(e),
        Ok(msg) => {
            let checked = match &msg {
                Message::Request(r) => r.validate(),
                Message::Response(r) => r.validate(),
            };
            match checked {
                Ok(()) => Outcome::Accepted(msg),
                Err(e) => Outcome::Rejected(e),
            }
        }
    };
    Some(Case {
        row,
        input,
        outcome,
    })
}

/// Applies the verdict of the index row; returns the accepted message, if any.
fn judge(case: &Case, file: &str) -> Option<Message> {
    let verdict = case.row.get("verdict");
    let status = |e: &ParseError| e.status().map(|s| s.as_u16());
    match (&case.outcome, verdict) {
        (
            Outcome::Accepted(m),
            "valid-must-accept"
            | "valid-should-accept-backcompat"
            | "malformed-must-tolerate"
            | "valid-parse-semantic-reject"
            | "valid-parse-semantic"
            | "valid-parse-semantic-drop",
        ) => {
            check_print_back(case, m, file);
            Some(m.clone())
        }
        (Outcome::Rejected(e), "invalid-must-reject-400" | "invalid-should-reject-400") => {
            assert_eq!(status(e), Some(400), "{file}: {e}");
            None
        }
        (Outcome::Rejected(e), "invalid-must-reject-505") => {
            assert_eq!(status(e), Some(505), "{file}: {e}");
            None
        }
        (Outcome::Rejected(e), "invalid-reject-501-or-400") => {
            assert!(matches!(status(e), Some(400 | 501)), "{file}: {e}");
            None
        }
        (Outcome::Rejected(e), "invalid-may-reject-400-or-accept" | "parse-must-not-break") => {
            assert_eq!(status(e), Some(400), "{file}: {e}");
            None
        }
        (Outcome::Accepted(m), "invalid-may-reject-400-or-accept" | "parse-must-not-break") => {
            check_print_back(case, m, file);
            Some(m.clone())
        }
        (Outcome::Rejected(_), "invalid-response-discard") => None,
        (Outcome::Rejected(e), "unreferenced-invalid") => {
            assert!(matches!(status(e), Some(400) | None), "{file}: {e}");
            None
        }
        (Outcome::Accepted(_), v) => panic!("{file}: accepted, but verdict is {v}"),
        (Outcome::Rejected(e), v) => panic!("{file}: rejected ({e:?}), but verdict is {v}"),
    }
}

/// An accepted message prints back byte-identical (up to the end of its body), and stream
/// framing cuts exactly the same octets when it carries Content-Length.
fn check_print_back(case: &Case, m: &Message, file: &str) {
    let printed = m.to_bytes();
    assert!(
        case.input.starts_with(&printed),
        "{file}: printed form differs from the input"
    );
    if printed.len() != case.input.len() {
        assert_eq!(
            file, "dblreq.dat",
            "{file}: only dblreq carries trailing octets"
        );
    }
    let reparsed = Message::parse(printed.clone()).expect("printed form parses");
    assert_eq!(reparsed.to_bytes(), printed, "{file}: print is stable");
    if m.headers().contains(&pbx_sip::HeaderName::ContentLength) {
        let mut buf = BytesMut::from(&printed[..]);
        let frame = StreamDecoder::default().decode(&mut buf).expect("frames");
        assert_eq!(
            frame,
            Some(Frame::Message(printed.clone())),
            "{file}: stream framing"
        );
    }
}

fn request(m: &Option<Message>) -> &pbx_sip::Request {
    m.as_ref()
        .and_then(Message::as_request)
        .expect("an accepted request")
}

fn rejected(case: &Case) -> &ParseError {
    match &case.outcome {
        Outcome::Rejected(e) => e,
        Outcome::Accepted(_) => panic!("expected a rejection"),
    }
}

fn sip(uri: &Uri) -> &pbx_sip::SipUri {
    uri.as_sip().expect("a sip: URI")
}

fn v6(s: &str) -> Host {
    Host::Ipv6(s.parse::<Ipv6Addr>().unwrap())
}

fn contact_uri(c: &Contact) -> &pbx_sip::SipUri {
    sip(c.uri().expect("not *"))
}

/// The per-file checks of RFC 4475.
fn rfc4475(file: &str) {
    let Some(case) = load("rfc4475", file) else {
        return;
    };
    let m = judge(&case, file);
    let uas = Policy::default();
    match file {
        "wsinv.dat" => {
            let r = request(&m);
            assert_eq!(r.via().unwrap().len(), 3);
            assert_eq!(r.max_forwards().unwrap(), Some(68));
            assert_eq!(r.cseq().unwrap().seq, 9);
            assert_eq!(r.cseq().unwrap().method, Method::Invite);
            assert_eq!(r.to().unwrap().tag.as_deref(), Some(&b"1918181833n"[..]));
            let from = r.from().unwrap();
            assert_eq!(from.tag.as_deref(), Some(&b"98asjd8"[..]));
            assert_eq!(
                &*from.display_name_unquoted().unwrap(),
                br#"J Rosenberg \""#
            );
            let odd = pbx_sip::HeaderName::from("UnknownHeaderWithUnusualValue");
            assert_eq!(r.headers().get(&odd), Some(&b";;,,;;,;"[..]));
            assert!(memmem(
                &r.to_bytes(),
                b"\r\nUnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
            ));
            let fangled = pbx_sip::HeaderName::from("newfangledheader");
            assert_eq!(
                r.headers().get(&fangled),
                Some(&b"newfangled value continued newfangled value"[..])
            );
            assert_eq!(
                r.headers().get(&pbx_sip::HeaderName::Subject),
                Some(&b""[..])
            );
            let contacts = r.contacts().unwrap();
            assert_eq!(contacts.len(), 1);
            assert_eq!(contacts[0].address().unwrap().q, Some(pbx_sip::QValue(330)));
            assert!(
                contacts[0]
                    .address()
                    .unwrap()
                    .name_addr
                    .params
                    .contains("secondparam")
            );
            assert_eq!(r.route().unwrap().len(), 1);
            assert!(sip(&r.route().unwrap()[0].uri).params.contains("lr"));
            let vias = r.via().unwrap();
            assert_eq!(vias[1].transport, Transport::Tcp);
            assert_eq!(vias[2].branch.as_deref(), Some(&b"z9hG4bK30239"[..]));
            assert_eq!(r.body().len(), 150);
        }
        "intmeth.dat" => {
            let r = request(&m);
            assert_eq!(
                r.method(),
                &Method::Extension(Bytes::from_static(
                    b"!interesting-Method0123456789_*+`.%indeed'~"
                ))
            );
            let to = r.to().unwrap();
            assert_eq!(
                &*to.display_name_unquoted().unwrap(),
                b"BEL:\x07 NUL:\x00 DEL:\x7f"
            );
            let uri = sip(r.uri());
            assert_eq!(
                uri.user.as_deref(),
                Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
            );
            assert_eq!(
                uri.password.as_deref(),
                Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..])
            );
            assert_eq!(
                &r.call_id().unwrap()[..],
                b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
            );
            let ext = pbx_sip::HeaderName::from("extensionHeader-!.%*+_`'~");
            assert_eq!(
                std::str::from_utf8(r.headers().get(&ext).unwrap()).unwrap(),
                "\u{FEFF}\u{5927}\u{505C}\u{96FB}"
            );
            assert!(r.from().unwrap().params.contains("fromParam''~+*_!.-%"));
        }
        "esc01.dat" => {
            let r = request(&m);
            assert_eq!(
                &*sip(r.uri()).user_unescaped().unwrap(),
                b"sips:user@example.com"
            );
            assert_eq!(
                &*sip(&r.to().unwrap().uri).user_unescaped().unwrap(),
                b"user"
            );
            assert_eq!(
                &*sip(&r.from().unwrap().uri).user_unescaped().unwrap(),
                b"I have spaces"
            );
            let c = r.contacts().unwrap();
            let params = &contact_uri(&c[0]).params;
            assert!(params.contains("%6C%72"));
            assert_eq!(
                &*percent_decode(params.value("n%61me").unwrap()),
                b"value%41"
            );
        }
        "escnull.dat" => {
            let r = request(&m);
            let to = r.to().unwrap();
            assert_eq!(&*sip(&to.uri).user_unescaped().unwrap(), b"null-\0-null");
            let c = r.contacts().unwrap();
            assert_eq!(c.len(), 2);
            assert_eq!(&*contact_uri(&c[0]).user_unescaped().unwrap(), b"\0");
            assert_eq!(&*contact_uri(&c[1]).user_unescaped().unwrap(), b"\0\0");
            assert_eq!(r.content_length().unwrap(), Some(0));
        }
        "esc02.dat" => {
            let r = request(&m);
            assert_eq!(
                r.method(),
                &Method::Extension(Bytes::from_static(b"RE%47IST%45R"))
            );
            assert_eq!(r.contacts().unwrap().len(), 2);
            assert_eq!(
                r.headers().count(&pbx_sip::HeaderName::from("C%6Fntact")),
                1
            );
            assert_eq!(
                r.from().unwrap().display_name.as_deref(),
                Some(&b"\"%Z%45\""[..])
            );
            assert_eq!(
                r.top_via().unwrap().branch.as_deref(),
                Some(&b"z9hG4bK209%fzsnel234"[..])
            );
        }
        "lwsdisp.dat" => {
            let from = request(&m).from().unwrap();
            assert_eq!(from.display_name.as_deref(), Some(&b"caller"[..]));
            assert_eq!(from.tag.as_deref(), Some(&b"323"[..]));
        }
        "longreq.dat" => {
            let r = request(&m);
            assert_eq!(r.via().unwrap().len(), 34);
            assert!(r.from().unwrap().tag.unwrap().len() > 50);
            assert!(r.to().unwrap().display_name.unwrap().len() > 50);
            let to_uri = r.to().unwrap().uri;
            assert!(sip(&to_uri).params.contains("verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongParameterNameWithNoValue"));
            assert!(r.call_id().unwrap().len() > 100);
        }
        "dblreq.dat" => {
            let r = request(&m);
            assert_eq!(r.method(), &Method::Register);
            assert!(r.body().is_empty());
            assert_eq!(
                &r.call_id().unwrap()[..],
                b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"
            );
            assert!(!memmem(&r.to_bytes(), b"INVITE"));
            assert!(matches!(
                Message::parse(case.input.clone()),
                Err(ParseError::TrailingOctets { .. })
            ));
        }
        "semiuri.dat" => {
            let uri = sip(request(&m).uri());
            assert_eq!(uri.user.as_deref(), Some(&b"user;par=u%40example.net"[..]));
            assert_eq!(&*uri.user_unescaped().unwrap(), b"user;par=u@example.net");
            assert_eq!(uri.host, Host::Domain(Bytes::from_static(b"example.com")));
            assert!(uri.params.is_empty());
        }
        "transports.dat" => {
            let t: Vec<Transport> = request(&m)
                .via()
                .unwrap()
                .into_iter()
                .map(|v| v.transport)
                .collect();
            let unknown = Transport::Other(Bytes::from_static(b"UNKNOWN"));
            assert_eq!(
                t,
                vec![
                    Transport::Udp,
                    Transport::Sctp,
                    Transport::Tls,
                    unknown,
                    Transport::Tcp
                ]
            );
        }
        "mpart01.dat" => {
            let r = request(&m);
            assert_eq!(r.body().len() as u32, r.content_length().unwrap().unwrap());
            assert!(r.body().contains(&0));
            let ct = r.content_type().unwrap().unwrap();
            assert!(ct.is("multipart", "mixed"));
            assert_eq!(ct.params.value("boundary"), Some(&b"7a9cbec02ceef655"[..]));
            assert!(r.headers().contains(&pbx_sip::HeaderName::Identity));
        }
        "unreason.dat" => {
            let resp = m.as_ref().and_then(Message::as_response).unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let phrase = std::str::from_utf8(resp.reason_phrase()).unwrap();
            assert!(phrase.starts_with("= 2**3 * 5**2 "));
            assert!(phrase.contains("\u{43d}\u{43e}"));
        }
        "noreason.dat" => {
            let resp = m.as_ref().and_then(Message::as_response).unwrap();
            assert_eq!(resp.status().as_u16(), 100);
            assert!(resp.reason_phrase().is_empty());
        }
        "badinv01.dat" | "quotbal.dat" | "badaspec.dat" | "regbadct.dat" => {
            assert!(
                matches!(rejected(&case), ParseError::InvalidHeaderValue { .. }),
                "{:?}",
                rejected(&case)
            );
        }
        "baddn.dat" => assert_eq!(rejected(&case), &ParseError::UnterminatedHeaders),
        "variants/baddn-terminated.dat" => {
            assert!(matches!(
                rejected(&case),
                ParseError::InvalidHeaderValue {
                    kind: ValueError::InvalidDisplayName,
                    ..
                }
            ));
        }
        "clerr.dat" => assert!(matches!(
            rejected(&case),
            ParseError::BodyTruncated { declared: 9999, .. }
        )),
        "ncl.dat" => assert_eq!(rejected(&case), &ParseError::InvalidContentLength),
        "mcl01.dat" => assert_eq!(rejected(&case), &ParseError::ConflictingContentLength),
        "scalar02.dat" => assert!(matches!(
            rejected(&case),
            ParseError::InvalidHeaderValue {
                kind: ValueError::OutOfRange,
                ..
            }
        )),
        "scalarlg.dat" | "bigcode.dat" => {}
        "ltgtruri.dat" | "lwsruri.dat" | "lwsstart.dat" | "escruri.dat" => {
            assert_eq!(rejected(&case), &ParseError::InvalidRequestUri);
        }
        "trws.dat" | "test.dat" => assert_eq!(rejected(&case), &ParseError::InvalidStartLine),
        "badvers.dat" => assert_eq!(rejected(&case), &ParseError::UnsupportedVersion),
        "mismatch01.dat" | "mismatch02.dat" => {
            assert_eq!(rejected(&case), &ParseError::CSeqMethodMismatch)
        }
        "insuf.dat" => assert!(matches!(rejected(&case), ParseError::MissingHeader(_))),
        "multi01.dat" => assert!(matches!(
            rejected(&case),
            ParseError::DuplicateSingletonHeader(_)
        )),
        "baddate.dat" => {
            let r = request(&m);
            assert!(
                r.headers()
                    .get(&pbx_sip::HeaderName::Date)
                    .unwrap()
                    .ends_with(b"EST")
            );
        }
        "badbranch.dat" => {
            let via = request(&m).top_via().unwrap();
            assert_eq!(via.branch.as_deref(), Some(&b"z9hG4bK"[..]));
            assert!(!via.is_rfc3261_branch());
        }
        "unkscm.dat" | "novelsc.dat" => {
            let r = request(&m);
            assert!(matches!(r.uri(), Uri::Absolute(_)));
            let expected = case.row.expected_status().unwrap();
            assert_eq!(expected, 416);
            assert_eq!(
                r.validate_for_uas(&uas)
                    .unwrap_err()
                    .status()
                    .unwrap()
                    .as_u16(),
                expected
            );
        }
        "unksm2.dat" => {
            let r = request(&m);
            assert_eq!(
                r.to().unwrap().uri,
                Uri::Absolute(Bytes::from_static(b"isbn:2983792873"))
            );
            assert_eq!(
                r.from().unwrap().uri,
                Uri::Absolute(Bytes::from_static(b"http://www.example.com"))
            );
            let c = r.contacts().unwrap();
            assert_eq!(
                c[0].uri().unwrap(),
                &Uri::Absolute(Bytes::from_static(b"name:John_Smith"))
            );
        }
        "bext01.dat" => {
            let r = request(&m);
            assert_eq!(case.row.expected_status(), Some(420));
            let err = r.validate_for_uas(&uas).unwrap_err();
            assert_eq!(err.status().unwrap().as_u16(), 420);
            let ParseError::BadExtension { unsupported } = err else {
                panic!()
            };
            assert_eq!(
                unsupported,
                vec![
                    Bytes::from_static(b"nothingSupportsThis"),
                    Bytes::from_static(b"nothingSupportsThisEither")
                ]
            );
            let err = r.validate_for_proxy(&uas).unwrap_err();
            let ParseError::BadExtension { unsupported } = err else {
                panic!()
            };
            assert_eq!(unsupported.len(), 2);
            assert_eq!(&unsupported[0][..], b"noProxiesSupportThis");
            let both = Policy {
                supported_extensions: vec![
                    "nothingSupportsThis".into(),
                    "NOTHINGSUPPORTSTHISEITHER".into(),
                ],
                ..Policy::default()
            };
            assert!(r.validate_for_uas(&both).is_ok());
            assert_eq!(r.top_via().unwrap().transport, Transport::Tls);
        }
        "invut.dat" => {
            let r = request(&m);
            assert_eq!(case.row.expected_status(), Some(415));
            let sdp_only = Policy {
                accepted_content_types: vec!["application/sdp".into()],
                ..Policy::default()
            };
            assert_eq!(
                r.validate_for_uas(&sdp_only).unwrap_err(),
                ParseError::UnsupportedMediaType
            );
            assert!(
                r.content_type()
                    .unwrap()
                    .unwrap()
                    .is("application", "unknownformat")
            );
        }
        "regaut01.dat" => {
            let r = request(&m);
            assert!(r.authorization()[0].starts_with(b"NoOneKnowsThisScheme"));
            assert_eq!(r.content_length().unwrap(), Some(0));
        }
        "bcast.dat" => {
            let resp = m.as_ref().and_then(Message::as_response).unwrap();
            assert_eq!(resp.via().unwrap()[1].host, Host::Ipv4(Ipv4Addr::BROADCAST));
        }
        "zeromf.dat" => {
            let r = request(&m);
            assert_eq!(r.max_forwards().unwrap(), Some(0));
            assert!(r.validate_for_uas(&uas).is_ok());
            assert_eq!(
                r.validate_for_proxy(&uas)
                    .unwrap_err()
                    .status()
                    .unwrap()
                    .as_u16(),
                483
            );
        }
        "cparam01.dat" => {
            let c = request(&m).contacts().unwrap();
            assert!(contact_uri(&c[0]).params.is_empty());
            assert!(
                c[0].address()
                    .unwrap()
                    .name_addr
                    .params
                    .contains("unknownparam")
            );
        }
        "cparam02.dat" => {
            let c = request(&m).contacts().unwrap();
            assert!(contact_uri(&c[0]).params.contains("unknownparam"));
            assert!(c[0].address().unwrap().name_addr.params.is_empty());
        }
        "regescrt.dat" => {
            let c = request(&m).contacts().unwrap();
            assert_eq!(
                contact_uri(&c[0]).headers.as_deref(),
                Some(&b"Route=%3Csip:sip.example.com%3E"[..])
            );
        }
        "sdp01.dat" => {
            let r = request(&m);
            assert_eq!(
                r.headers().get(&pbx_sip::HeaderName::Accept),
                Some(&b"text/nobodyKnowsThis"[..])
            );
        }
        "inv2543.dat" => {
            let r = request(&m);
            assert_eq!(r.top_via().unwrap().branch, None);
            assert_eq!(r.from().unwrap().tag, None);
            assert_eq!(r.max_forwards().unwrap(), None);
            assert_eq!(r.content_length().unwrap(), None);
            assert!(r.body().starts_with(b"v=0"));
            assert!(r.body().len() > 50);
        }
        other => panic!("no field checks for {other}"),
    }
    if let Some(Message::Request(r)) = &m {
        assert!(r.from().is_ok() && r.to().is_ok() && r.cseq().is_ok() && r.call_id().is_ok());
        let _ = unquote(b"");
    }
}

fn rfc5118(file: &str) {
    let Some(case) = load("rfc5118", file) else {
        return;
    };
    let m = judge(&case, file);
    let both_v6 = |host: &str| {
        let r = request(&m);
        assert_eq!(sip(r.uri()).host, v6(host));
        assert_eq!(sip(&r.to().unwrap().uri).host, v6(host));
    };
    match file {
        "ipv6-good" => {
            let r = request(&m);
            assert_eq!(sip(r.uri()).host, v6("2001:db8::10"));
            assert_eq!(r.top_via().unwrap().host, v6("2001:db8::9:1"));
            assert_eq!(
                contact_uri(&r.contacts().unwrap()[0]).host,
                v6("2001:db8::1")
            );
        }
        "ipv6-bad" => assert_eq!(rejected(&case), &ParseError::InvalidRequestUri),
        "port-ambiguous" => {
            let uri = sip(request(&m).uri());
            assert_eq!(
                (uri.host.clone(), uri.port),
                (v6("2001:db8::10:5070"), None)
            );
        }
        "port-unambiguous" => {
            let uri = sip(request(&m).uri());
            assert_eq!(
                (uri.host.clone(), uri.port),
                (v6("2001:db8::10"), Some(5070))
            );
        }
        "via-received-param-with-delim" | "via-received-param-no-delim" => {
            let via = request(&m).top_via().unwrap();
            assert_eq!(via.received, Some(v6("2001:db8::9:255")));
            assert_eq!(via.host, v6("2001:db8::9:1"));
        }
        "ipv6-in-sdp" | "mult-ip-in-sdp" => {
            let r = request(&m);
            assert_eq!(r.body().len() as u32, r.content_length().unwrap().unwrap());
            assert!(r.content_type().unwrap().unwrap().is("application", "sdp"));
            assert!(memmem(r.body(), b"IN IP6 2001:db8::"));
        }
        "mult-ip-in-header" => {
            let v = request(&m).via().unwrap();
            assert_eq!(
                (v[0].host.clone(), v[0].port),
                (v6("2001:db8::9:1"), Some(6050))
            );
            assert_eq!(v[1].host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)));
            assert_eq!(v[2].host, v6("2001:db8::9:255"));
            assert_eq!(
                v[2].received,
                Some(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 200)))
            );
        }
        "ipv4-mapped-ipv6" => {
            let r = request(&m);
            let v = r.via().unwrap();
            assert_eq!(
                (v[0].host.clone(), v[0].port),
                (v6("::ffff:192.0.2.10"), Some(19823))
            );
            assert_eq!(v[1].host, v6("::ffff:192.0.2.2"));
            assert_eq!(
                contact_uri(&r.contacts().unwrap()[0]).host,
                v6("::ffff:192.0.2.2")
            );
        }
        "ipv6-bug-abnf-3-colons" | "ipv6-correct-abnf-2-colons" => both_v6("2001:db8::192.0.2.1"),
        other => panic!("no field checks for {other}"),
    }
}

fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

macro_rules! corpus_tests {
    ($runner:ident, $list:ident: $( $name:ident => $file:literal ),* $(,)?) => {
        $( #[test] fn $name() { $runner($file); } )*
        const $list: &[&str] = &[$($file),*];
    };
}

corpus_tests! { rfc4475, RFC4475_FILES:
    rfc4475_wsinv => "wsinv.dat",
    rfc4475_intmeth => "intmeth.dat",
    rfc4475_esc01 => "esc01.dat",
    rfc4475_escnull => "escnull.dat",
    rfc4475_esc02 => "esc02.dat",
    rfc4475_lwsdisp => "lwsdisp.dat",
    rfc4475_longreq => "longreq.dat",
    rfc4475_dblreq => "dblreq.dat",
    rfc4475_semiuri => "semiuri.dat",
    rfc4475_transports => "transports.dat",
    rfc4475_mpart01 => "mpart01.dat",
    rfc4475_unreason => "unreason.dat",
    rfc4475_noreason => "noreason.dat",
    rfc4475_badinv01 => "badinv01.dat",
    rfc4475_clerr => "clerr.dat",
    rfc4475_ncl => "ncl.dat",
    rfc4475_scalar02 => "scalar02.dat",
    rfc4475_scalarlg => "scalarlg.dat",
    rfc4475_quotbal => "quotbal.dat",
    rfc4475_ltgtruri => "ltgtruri.dat",
    rfc4475_lwsruri => "lwsruri.dat",
    rfc4475_lwsstart => "lwsstart.dat",
    rfc4475_trws => "trws.dat",
    rfc4475_escruri => "escruri.dat",
    rfc4475_baddate => "baddate.dat",
    rfc4475_regbadct => "regbadct.dat",
    rfc4475_badaspec => "badaspec.dat",
    rfc4475_baddn => "baddn.dat",
    rfc4475_baddn_terminated => "variants/baddn-terminated.dat",
    rfc4475_badvers => "badvers.dat",
    rfc4475_mismatch01 => "mismatch01.dat",
    rfc4475_mismatch02 => "mismatch02.dat",
    rfc4475_bigcode => "bigcode.dat",
    rfc4475_badbranch => "badbranch.dat",
    rfc4475_insuf => "insuf.dat",
    rfc4475_unkscm => "unkscm.dat",
    rfc4475_novelsc => "novelsc.dat",
    rfc4475_unksm2 => "unksm2.dat",
    rfc4475_bext01 => "bext01.dat",
    rfc4475_invut => "invut.dat",
    rfc4475_regaut01 => "regaut01.dat",
    rfc4475_multi01 => "multi01.dat",
    rfc4475_mcl01 => "mcl01.dat",
    rfc4475_bcast => "bcast.dat",
    rfc4475_zeromf => "zeromf.dat",
    rfc4475_cparam01 => "cparam01.dat",
    rfc4475_cparam02 => "cparam02.dat",
    rfc4475_regescrt => "regescrt.dat",
    rfc4475_sdp01 => "sdp01.dat",
    rfc4475_inv2543 => "inv2543.dat",
    rfc4475_test => "test.dat",
}

corpus_tests! { rfc5118, RFC5118_FILES:
    rfc5118_ipv6_good => "ipv6-good",
    rfc5118_ipv6_bad => "ipv6-bad",
    rfc5118_port_ambiguous => "port-ambiguous",
    rfc5118_port_unambiguous => "port-unambiguous",
    rfc5118_via_received_param_with_delim => "via-received-param-with-delim",
    rfc5118_via_received_param_no_delim => "via-received-param-no-delim",
    rfc5118_ipv6_in_sdp => "ipv6-in-sdp",
    rfc5118_mult_ip_in_header => "mult-ip-in-header",
    rfc5118_mult_ip_in_sdp => "mult-ip-in-sdp",
    rfc5118_ipv4_mapped_ipv6 => "ipv4-mapped-ipv6",
    rfc5118_ipv6_bug_abnf_3_colons => "ipv6-bug-abnf-3-colons",
    rfc5118_ipv6_correct_abnf_2_colons => "ipv6-correct-abnf-2-colons",
}

/// Every file of each corpus has its own test above (a new file must get one).
#[test]
fn every_corpus_file_has_a_test() {
    if let Some(dir) = require_or_skip("rfc4475") {
        let mut on_disk = BTreeSet::new();
        for sub in ["", "variants/"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".dat") {
                    on_disk.insert(format!("{sub}{name}"));
                }
            }
        }
        let tested: BTreeSet<String> = RFC4475_FILES.iter().map(|s| s.to_string()).collect();
        assert_eq!(on_disk, tested);
        assert_eq!(on_disk.len(), 51);
        let index = read_index(&dir).unwrap();
        for file in RFC4475_FILES.iter().filter(|f| !f.starts_with("variants/")) {
            assert!(index.contains_key(*file), "{file} missing from index.tsv");
        }
    }
    if let Some(dir) = require_or_skip("rfc5118") {
        let index = read_index(&dir).unwrap();
        let indexed: BTreeSet<String> = index.keys().cloned().collect();
        let tested: BTreeSet<String> = RFC5118_FILES.iter().map(|s| s.to_string()).collect();
        assert_eq!(indexed, tested);
    }
}
