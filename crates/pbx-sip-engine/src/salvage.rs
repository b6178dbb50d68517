//! Answers to requests that do not parse at all (RFC 3261 §8.2: a malformed request gets a
//! 400, a wrong version a 505). The message model cannot hand us a `Request`, so this scans
//! the raw header lines for the five fields a response copies (Via, From, To, Call-ID, CSeq)
//! and builds the answer from them. It needs at least one Via line; when the top Via does
//! not parse either, the caller answers to the source address.
//!
//! Work-around: pbx-sip has no "salvage" API for unparsable requests yet.

use bytes::Bytes;
use pbx_sip::{HeaderName, Response, StatusCode, Via};

/// The longest header section scanned (larger messages are dropped unanswered).
const MAX_SCAN: usize = 16 * 1024;

/// An error response for the unparsable request in `raw`, and its top Via if that parses;
/// `None` when `raw` looks like a response or an ACK, or has no Via line.
pub(crate) fn error_response(raw: &[u8], status: StatusCode) -> Option<(Response, Option<Via>)> {
    let raw = &raw[..raw.len().min(MAX_SCAN)];
    let header_end = find(raw, b"\r\n\r\n")
        .or_else(|| find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let mut lines = unfolded_lines(&raw[..header_end]).into_iter();
    let start = lines.next()?;
    if start.starts_with(b"SIP/") || start.starts_with(b"ACK ") || start.is_empty() {
        return None;
    }
    let mut vias: Vec<Bytes> = Vec::new();
    let mut copied: Vec<(HeaderName, Bytes)> = Vec::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(trim(&line[..colon]));
        let value = Bytes::copy_from_slice(trim(&line[colon + 1..]));
        match name {
            HeaderName::Via => vias.push(value),
            HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq
                if !copied.iter().any(|(n, _)| *n == name) =>
            {
                copied.push((name, value));
            }
            _ => {}
        }
    }
    let first = vias.first()?;
    let top = first.split(|&b| b == b',').next().unwrap_or(first);
    let via = Via::parse(top).ok();
    let mut response = Response::new(status);
    let headers = response.headers_mut();
    for value in vias {
        headers.push(HeaderName::Via, value);
    }
    for (name, value) in copied {
        headers.push(name, value);
    }
    headers.push(HeaderName::ContentLength, Bytes::from_static(b"0"));
    Some((response, via))
}

/// Header lines with continuation lines (leading SP/HT) joined to the previous one.
fn unfolded_lines(section: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in section.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match (line.first(), lines.last_mut()) {
            (Some(b' ' | b'\t'), Some(previous)) => {
                previous.push(b' ');
                previous.extend_from_slice(trim(line));
            }
            _ => lines.push(line.to_vec()),
        }
    }
    lines
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_version_gets_505_with_the_copied_fields() {
        let raw = b"OPTIONS sip:t@example.com SIP/7.0\r\nVia: SIP/7.0/UDP c.example.com;branch=z9hG4bKx\r\n\
            Via: SIP/2.0/UDP p.example.com;branch=z9hG4bKy\r\nCall-ID: abc\r\nt: <sip:t@example.com>\r\n\
            From: <sip:f@example.com>;tag=1\r\nCSeq: 8\r\n  OPTIONS\r\nContent-Length: 0\r\n\r\n";
        // The top Via has version 7.0: an answer, but no Via to route it by.
        let (response, via) = error_response(raw, StatusCode::VERSION_NOT_SUPPORTED).unwrap();
        assert!(via.is_none());
        assert_eq!(response.status(), StatusCode::VERSION_NOT_SUPPORTED);
        let fixed = String::from_utf8_lossy(raw).replacen("SIP/7.0/UDP", "SIP/2.0/UDP", 1);
        let (response, via) =
            error_response(fixed.as_bytes(), StatusCode::VERSION_NOT_SUPPORTED).unwrap();
        assert_eq!(via.unwrap().branch.as_deref(), Some(&b"z9hG4bKx"[..]));
        assert_eq!(response.via().unwrap().len(), 2);
        assert_eq!(response.cseq().unwrap().seq, 8, "folded CSeq unfolded");
        assert_eq!(response.call_id().unwrap(), "abc");
        assert!(response.to().is_ok(), "compact To copied");
    }

    #[test]
    fn responses_acks_and_garbage_get_nothing() {
        assert!(
            error_response(
                b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
                StatusCode::BAD_REQUEST
            )
            .is_none()
        );
        assert!(
            error_response(
                b"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
                StatusCode::BAD_REQUEST
            )
            .is_none()
        );
        assert!(error_response(b"\x00\x01\x02", StatusCode::BAD_REQUEST).is_none());
        assert!(error_response(b"", StatusCode::BAD_REQUEST).is_none());
        assert!(
            error_response(
                b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n",
                StatusCode::BAD_REQUEST
            )
            .is_none(),
            "no Via line"
        );
    }
}
