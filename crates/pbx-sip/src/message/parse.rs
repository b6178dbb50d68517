//! The head parser: start line and header fields over one `Bytes` buffer. Header values
//! are recorded as ranges (no allocation per field); only folded values are copied, once,
//! to unfold them.

use bytes::Bytes;

use super::{BodyFraming, Message, Request, Response};
use crate::error::ParseError;
use crate::header::{HeaderName, Headers};
use crate::limits::Limits;
use crate::method::Method;
use crate::scan::{is_token, parse_u32};
use crate::status::StatusCode;
use crate::uri::Uri;

pub(super) fn parse(
    buf: Bytes,
    limits: &Limits,
    framing: BodyFraming,
) -> Result<Message, ParseError> {
    // Header offsets are stored as 31-bit values (see `Headers`), whatever the limits say.
    if buf.len() > limits.max_message_size || buf.len() >= 1 << 31 {
        return Err(ParseError::MessageTooLarge {
            size: buf.len(),
            limit: limits.max_message_size,
        });
    }
    let b: &[u8] = &buf;
    // RFC 3261 §7.5: empty lines before the start line are ignored.
    let mut pos = 0;
    while pos < b.len() && (b[pos] == b'\r' || b[pos] == b'\n') {
        pos += 1;
    }
    if pos == b.len() {
        return Err(ParseError::Empty);
    }
    let mut lines = Lines { b };
    let (start_line, mut pos) = lines
        .line_at(pos)
        .ok_or_else(|| ParseError::UnterminatedHeaders)?;
    let start_range = (start_line.0, start_line.1);
    let line = &b[start_range.0..start_range.1];
    let start = if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        let (status, reason) = status_line(&buf, line)?;
        StartLine::Status(status, reason)
    } else {
        let (method, uri) = request_line(&buf, line)?;
        StartLine::Request(method, uri)
    };

    let mut headers = Headers::with_buffer(buf.clone(), 16);
    let mut content_length: Option<usize> = None;
    let body_start = loop {
        if pos > limits.max_header_block {
            return Err(ParseError::MessageTooLarge {
                size: pos,
                limit: limits.max_header_block,
            });
        }
        let ((ls, le), next) = lines
            .line_at(pos)
            .ok_or_else(|| ParseError::UnterminatedHeaders)?;
        if ls == le {
            break next;
        }
        if matches!(b[ls], b' ' | b'\t') {
            // A continuation line with no field before it.
            return Err(ParseError::InvalidHeaderLine);
        }
        // Extend over folded continuation lines.
        let mut field_end = le;
        let mut after = next;
        let mut folded = false;
        while after < b.len() && matches!(b[after], b' ' | b'\t') {
            let ((_, cle), cnext) = lines
                .line_at(after)
                .ok_or_else(|| ParseError::UnterminatedHeaders)?;
            field_end = cle;
            after = cnext;
            folded = true;
        }
        if field_end - ls > limits.max_header_line {
            return Err(ParseError::HeaderTooLong {
                limit: limits.max_header_line,
            });
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        // Name: a token, optional whitespace, then the colon (scanned inline: names are
        // short, a memchr call costs more than it saves).
        let line = &b[ls..le];
        let name_len = line
            .iter()
            .position(|&c| !is_token(c))
            .unwrap_or(line.len());
        let colon_off = if line.get(name_len) == Some(&b':') {
            name_len
        } else {
            name_len
                + line[name_len..]
                    .iter()
                    .position(|&c| c != b' ' && c != b'\t')
                    .unwrap_or(line.len() - name_len)
        };
        if name_len == 0 || line.get(colon_off) != Some(&b':') {
            return Err(ParseError::InvalidHeaderLine);
        }
        let (name_end, colon) = (ls + name_len, ls + colon_off);
        let name = HeaderName::from_bytes_in(&buf, &b[ls..name_end]);
        let is_cl = matches!(name, HeaderName::ContentLength);
        if folded {
            let value = unfold(&b[colon + 1..field_end]);
            if is_cl {
                note_content_length(&mut content_length, &value)?;
            }
            headers.push_received_unfolded(name, (ls, field_end), Bytes::from(value));
        } else {
            let (vs, ve) = trim_range(b, colon + 1, le);
            if is_cl {
                note_content_length(&mut content_length, &b[vs..ve])?;
            }
            headers.push_received(name, (ls, le), (vs, ve));
        }
        pos = after;
    };

    let available = b.len() - body_start;
    let body_len = match (content_length, framing) {
        (Some(n), _) if n > available => {
            return Err(ParseError::BodyTruncated {
                declared: n,
                available,
            });
        }
        (Some(n), BodyFraming::Exact) if n < available => {
            return Err(ParseError::TrailingOctets {
                extra: available - n,
            });
        }
        (Some(n), _) => n,
        (None, _) => available,
    };
    if body_len > limits.max_body_size {
        return Err(ParseError::MessageTooLarge {
            size: body_len,
            limit: limits.max_body_size,
        });
    }
    let body = if body_len == 0 {
        Bytes::new()
    } else {
        buf.slice(body_start..body_start + body_len)
    };
    let raw_line = buf.slice(start_range.0..start_range.1);
    Ok(match start {
        StartLine::Status(status, reason) => Message::Response(Response::from_parts(
            status,
            reason,
            headers,
            body,
            Some(raw_line),
        )),
        StartLine::Request(method, uri) => Message::Request(Request::from_parts(
            method,
            uri,
            headers,
            body,
            Some(raw_line),
        )),
    })
}

enum StartLine {
    Request(Method, Uri),
    Status(StatusCode, Bytes),
}

/// Line ends of the buffer, found front to back.
struct Lines<'a> {
    b: &'a [u8],
}

impl Lines<'_> {
    /// The line starting at `pos`: ((start, end excluding CR LF), index after LF).
    #[inline]
    fn line_at(&mut self, pos: usize) -> Option<((usize, usize), usize)> {
        let nl = find_lf(self.b, pos)?;
        let end = if nl > pos && self.b[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        Some(((pos, end), nl + 1))
    }
}

/// Position of the first LF at or after `from` (one `memchr` call per line: an 8-octet
/// SWAR loop measured slower, and the `memchr` iterator no faster).
#[inline]
fn find_lf(b: &[u8], from: usize) -> Option<usize> {
    let rest = b.get(from..)?;
    memchr::memchr(b'\n', rest).map(|p| from + p)
}

#[inline]
fn trim_range(b: &[u8], s: usize, e: usize) -> (usize, usize) {
    // `Name: value` with one space and no trailing blank: the spelling of nearly every field.
    if s + 1 < e
        && b[s] == b' '
        && !matches!(b[s + 1], b' ' | b'\t')
        && !matches!(b[e - 1], b' ' | b'\t')
    {
        return (s + 1, e);
    }
    let v = &b[s..e];
    let start = v
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |p| p + 1);
    (s + start, s + end)
}

/// Replaces each line break and the whitespace around it with one SP, then trims.
fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'\r' || c == b'\n' {
            while out.last().is_some_and(|&l| l == b' ' || l == b'\t') {
                out.pop();
            }
            while i < raw.len() && matches!(raw[i], b'\r' | b'\n' | b' ' | b'\t') {
                i += 1;
            }
            out.push(b' ');
            continue;
        }
        out.push(c);
        i += 1;
    }
    let start = out
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |p| p + 1);
    out.truncate(end);
    out.drain(..start);
    out
}

fn note_content_length(seen: &mut Option<usize>, value: &[u8]) -> Result<(), ParseError> {
    let n = parse_u32(value).map_err(|_| ParseError::InvalidContentLength)? as usize;
    if seen.is_some() {
        return Err(ParseError::ConflictingContentLength);
    }
    *seen = Some(n);
    Ok(())
}

fn check_version(v: &[u8]) -> Result<(), ParseError> {
    // The spelling of nearly every message; the general check below gives the same answer.
    if v.len() == 7 && v[..4].eq_ignore_ascii_case(b"SIP/") && &v[4..] == b"2.0" {
        return Ok(());
    }
    if v.len() < 7 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(ParseError::InvalidStartLine);
    }
    let num = &v[4..];
    let dot = crate::scan::find(b'.', num).ok_or_else(|| ParseError::InvalidStartLine)?;
    let (major, minor) = (&num[..dot], &num[dot + 1..]);
    if major.is_empty() || minor.is_empty() || !major.iter().chain(minor).all(u8::is_ascii_digit) {
        return Err(ParseError::InvalidStartLine);
    }
    if major == b"2" && minor == b"0" {
        Ok(())
    } else {
        Err(ParseError::UnsupportedVersion)
    }
}

fn status_line(buf: &Bytes, line: &[u8]) -> Result<(StatusCode, Bytes), ParseError> {
    let sp = crate::scan::find(b' ', line).ok_or_else(|| ParseError::InvalidStartLine)?;
    check_version(&line[..sp])?;
    let rest = &line[sp + 1..];
    let code_end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    let code = &rest[..code_end];
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::InvalidStatusCode);
    }
    let n = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&n) {
        return Err(ParseError::InvalidStatusCode);
    }
    let reason = if code_end < rest.len() {
        crate::scan::slice_of(buf, &rest[code_end + 1..])
    } else {
        Bytes::new()
    };
    if reason.iter().any(|&c| c < b' ' && c != b'\t') {
        return Err(ParseError::InvalidStartLine);
    }
    Ok((StatusCode(n), reason))
}

fn request_line(buf: &Bytes, line: &[u8]) -> Result<(Method, Uri), ParseError> {
    let sp1 = crate::scan::find(b' ', line).ok_or_else(|| ParseError::InvalidStartLine)?;
    let sp2 = crate::scan::rfind(b' ', line).ok_or_else(|| ParseError::InvalidStartLine)?;
    if sp1 == sp2 {
        return Err(ParseError::InvalidStartLine);
    }
    check_version(&line[sp2 + 1..])?;
    let method =
        Method::from_token_in(buf, &line[..sp1]).ok_or_else(|| ParseError::InvalidMethod)?;
    // Spaces and tabs inside are rejected by the URI parser (scheme characters are checked
    // one by one, everything after the colon by its forbidden-octet scan).
    let uri = &line[sp1 + 1..sp2];
    let uri = Uri::parse_in(buf, uri).map_err(|_| ParseError::InvalidRequestUri)?;
    Ok((method, uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds() {
        assert_eq!(
            unfold(b" SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw"),
            b"SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw"
        );
        assert_eq!(unfold(b"\r\n sip:x ;  tag = 1"), b"sip:x ;  tag = 1");
    }

    #[test]
    fn line_feeds_found_at_every_offset() {
        let mut buf = vec![b'a'; 200];
        for at in [0usize, 1, 7, 8, 9, 63, 64, 65, 71, 72, 130, 199] {
            buf[at] = b'\n';
            for from in [0usize, 1, 5, 8, 60, 64, 100] {
                let want = buf[from.min(buf.len())..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map(|p| p + from);
                assert_eq!(find_lf(&buf, from), want, "lf at {at}, from {from}");
            }
            buf[at] = b'a';
        }
        assert_eq!(find_lf(&buf, 0), None);
        assert_eq!(find_lf(b"", 0), None);
        assert_eq!(find_lf(b"\n", 1), None);
        assert_eq!(find_lf(&[0x8a, 0x0a], 0), Some(1));
    }

    #[test]
    fn versions() {
        assert_eq!(check_version(b"SIP/2.0"), Ok(()));
        assert_eq!(check_version(b"sip/2.0"), Ok(()));
        assert_eq!(
            check_version(b"SIP/7.0"),
            Err(ParseError::UnsupportedVersion)
        );
        assert_eq!(
            check_version(b"SIP/2.0x"),
            Err(ParseError::InvalidStartLine)
        );
        assert_eq!(
            check_version(b"HTTP/1.1"),
            Err(ParseError::InvalidStartLine)
        );
    }
}
