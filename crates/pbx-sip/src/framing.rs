//! Stream framing for TCP/TLS (RFC 3261 §18.3, RFC 5626 §4.4.1 keep-alives).
//!
//! Feed received octets into a `BytesMut` and call [`StreamDecoder::decode`] until it
//! returns `Ok(None)` (need more data). Every error means the byte stream can no longer be
//! framed: answer if you can (see [`FramingError::status`]) and close the connection.

use bytes::{Bytes, BytesMut};

use crate::limits::Limits;
use crate::scan::{parse_u32, trim, trim_end};
use crate::status::StatusCode;

/// One unit taken off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One whole message (head and body, exactly Content-Length octets of body). Parse it
    /// with [`crate::Message::parse`].
    Message(Bytes),
    /// A double CRLF keep-alive ping: answer with a single CRLF.
    KeepAlivePing,
    /// A single CRLF keep-alive pong (answer to our ping).
    KeepAlivePong,
}

/// Why a stream cannot be framed any more. The connection must be closed after any of
/// these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// No empty line within the header section limit.
    #[error("header section exceeds {limit} octets")]
    HeaderSectionTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// More header lines than allowed.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// Content-Length missing (mandatory on streams).
    #[error("Content-Length missing on a stream")]
    MissingContentLength,
    /// Content-Length is not a non-negative 32-bit number.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// More than one Content-Length.
    #[error("conflicting Content-Length header fields")]
    ConflictingContentLength,
    /// The body (or whole message) is larger than allowed.
    #[error("message body of {size} octets exceeds the limit of {limit}")]
    BodyTooLarge {
        /// Announced body size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
}

impl FramingError {
    /// Always true: after a framing error the stream position is unknown.
    pub fn must_close(&self) -> bool {
        true
    }

    /// A status worth sending before closing (best effort; there may be no request to
    /// answer).
    pub fn status(&self) -> StatusCode {
        match self {
            FramingError::BodyTooLarge { .. } | FramingError::HeaderSectionTooLarge { .. } => {
                StatusCode::REQUEST_ENTITY_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Which end of the connection this decoder serves; decides how a lone CRLF is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    /// We accepted the connection (phones ping us): a lone CRLF may be the first half of a
    /// `CRLF CRLF` ping, so wait for more octets.
    #[default]
    Inbound,
    /// We opened the connection (we ping, e.g. a trunk): a lone CRLF is the pong.
    Outbound,
}

/// Splits a byte stream into messages and keep-alives.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    limits: Limits,
    side: Side,
    /// Total length of the message at the front of the buffer, once its head was seen.
    pending: Option<usize>,
    /// Where to resume searching for the end of the head.
    scanned: usize,
}

impl StreamDecoder {
    /// A decoder for an inbound connection with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self::for_side(Side::Inbound, limits)
    }

    /// A decoder for the given side of a connection.
    pub fn for_side(side: Side, limits: Limits) -> Self {
        Self {
            limits,
            side,
            pending: None,
            scanned: 0,
        }
    }

    /// Takes the next frame off the front of `buf`, or `Ok(None)` if more octets are needed.
    ///
    /// At a message boundary, `CRLF CRLF` is a ping and a `CRLF` followed by anything else
    /// is a pong. A `CRLF` with nothing after it is a pong on an [`Side::Outbound`]
    /// connection and waits for more octets on an [`Side::Inbound`] one.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if self.pending.is_none() && self.scanned == 0 {
            if buf.starts_with(b"\r\n\r\n") {
                let _ = buf.split_to(4);
                return Ok(Some(Frame::KeepAlivePing));
            }
            if buf.starts_with(b"\r\n") {
                let maybe_ping = match buf.len() {
                    2 => self.side == Side::Inbound,
                    3 => buf[2] == b'\r',
                    _ => false,
                };
                if maybe_ping {
                    return Ok(None);
                }
                let _ = buf.split_to(2);
                return Ok(Some(Frame::KeepAlivePong));
            }
            if buf.as_ref() == b"\r" {
                return Ok(None);
            }
        }
        let total = match self.pending {
            Some(total) => total,
            None => {
                let from = self.scanned.saturating_sub(3);
                let Some(end) = memchr::memmem::find(&buf[from..], b"\r\n\r\n").map(|i| i + from)
                else {
                    if buf.len() > self.limits.max_header_block {
                        return Err(FramingError::HeaderSectionTooLarge {
                            limit: self.limits.max_header_block,
                        });
                    }
                    self.scanned = buf.len();
                    return Ok(None);
                };
                if end + 4 > self.limits.max_header_block {
                    return Err(FramingError::HeaderSectionTooLarge {
                        limit: self.limits.max_header_block,
                    });
                }
                let body = self.content_length(&buf[..end])?;
                if body > self.limits.max_body_size || end + 4 + body > self.limits.max_message_size
                {
                    return Err(FramingError::BodyTooLarge {
                        size: body,
                        limit: self.limits.max_body_size,
                    });
                }
                let total = end + 4 + body;
                self.pending = Some(total);
                total
            }
        };
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        self.pending = None;
        self.scanned = 0;
        Ok(Some(Frame::Message(buf.split_to(total).freeze())))
    }

    /// Finds the single Content-Length in a header section (folded values included).
    fn content_length(&self, head: &[u8]) -> Result<usize, FramingError> {
        let mut found: Option<usize> = None;
        let mut lines = 0usize;
        let mut rest = head;
        // Skip the start line.
        match memchr::memchr(b'\n', rest) {
            Some(nl) => rest = &rest[nl + 1..],
            None => return Err(FramingError::MissingContentLength),
        }
        while !rest.is_empty() {
            let mut end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            while end < rest.len() && matches!(rest[end], b' ' | b'\t') {
                end = memchr::memchr(b'\n', &rest[end..]).map_or(rest.len(), |i| end + i + 1);
            }
            let field = &rest[..end];
            rest = &rest[end..];
            lines += 1;
            if lines > self.limits.max_headers {
                return Err(FramingError::TooManyHeaders {
                    limit: self.limits.max_headers,
                });
            }
            let Some(colon) = memchr::memchr(b':', field) else {
                continue;
            };
            let name = trim_end(&field[..colon]);
            if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
                continue;
            }
            let n = content_length_value(&field[colon + 1..])?;
            if found.replace(n).is_some() {
                return Err(FramingError::ConflictingContentLength);
            }
        }
        found.ok_or(FramingError::MissingContentLength)
    }
}

/// A Content-Length value: digits surrounded by (possibly folded) whitespace, ≤ 2^32-1.
fn content_length_value(raw: &[u8]) -> Result<usize, FramingError> {
    let digits = trim(raw);
    if digits.is_empty() || digits.iter().any(|&b| !b.is_ascii_digit()) {
        return Err(FramingError::InvalidContentLength);
    }
    parse_u32(digits)
        .map(|n| n as usize)
        .map_err(|_| FramingError::InvalidContentLength)
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new(Limits::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 4\r\n\r\nbody";

    #[test]
    fn frames_messages_split_anywhere() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\nX");
        for chunk in [1usize, 3, 7, 1000] {
            let mut dec = StreamDecoder::default();
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    frames.push(f);
                }
            }
            assert_eq!(
                frames,
                vec![
                    Frame::KeepAlivePing,
                    Frame::Message(Bytes::from_static(MSG)),
                    Frame::Message(Bytes::from_static(MSG)),
                    Frame::KeepAlivePong
                ],
                "chunk size {chunk}"
            );
            assert_eq!(&buf[..], b"X");
        }
    }

    #[test]
    fn lone_crlf_depends_on_side() {
        let mut buf = BytesMut::from(&b"\r\n"[..]);
        assert_eq!(StreamDecoder::default().decode(&mut buf), Ok(None));
        let mut out = StreamDecoder::for_side(Side::Outbound, Limits::DEFAULT);
        assert_eq!(out.decode(&mut buf), Ok(Some(Frame::KeepAlivePong)));
        assert!(buf.is_empty());
    }

    #[test]
    fn content_length_rules() {
        let mut dec = StreamDecoder::default();
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FramingError::MissingContentLength)
        );
        let mut dec = StreamDecoder::default();
        let mut buf =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FramingError::InvalidContentLength)
        );
        let mut dec = StreamDecoder::default();
        let mut buf =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\n"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FramingError::ConflictingContentLength)
        );
        let mut dec = StreamDecoder::default();
        let mut buf =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length   :\r\n 2\r\n\r\nab"[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Some(Frame::Message(_)))));
    }

    #[test]
    fn caps() {
        let limits = Limits {
            max_header_block: 64,
            max_body_size: 10,
            ..Limits::DEFAULT
        };
        let mut dec = StreamDecoder::new(limits);
        let mut buf = BytesMut::from(&[b'a'; 100][..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FramingError::HeaderSectionTooLarge { .. })
        ));
        let mut dec = StreamDecoder::new(limits);
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nl: 11\r\n\r\n"[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FramingError::BodyTooLarge { .. })
        ));
        let limits = Limits {
            max_headers: 2,
            ..Limits::DEFAULT
        };
        let mut dec = StreamDecoder::new(limits);
        let mut buf =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\na: 1\r\nb: 2\r\nc: 3\r\nl: 0\r\n\r\n"[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FramingError::TooManyHeaders { .. })
        ));
    }
}
