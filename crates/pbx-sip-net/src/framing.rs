//! Content-Length framing of a SIP byte stream (RFC 3261 §18.3) with CRLF keep-alives
//! (RFC 5626 §4.4.1).
//!
//! Kept local to the transport: it only finds message boundaries and never interprets more
//! than the Content-Length header; the full parse is pbx-sip's job.

use bytes::{Bytes, BytesMut};

/// One unit cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A CRLFCRLF keep-alive ping: answer with a CRLF pong.
    Ping,
    /// A lone CRLF: a pong (or a stray line end before a message); nothing to do.
    Pong,
    /// One complete SIP message (header section and exactly Content-Length body octets).
    Message(Bytes),
}

/// Why a stream cannot be framed; the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// No blank line within the header size limit.
    #[error("header section longer than {0} octets")]
    HeaderTooLong(usize),
    /// The header section has no Content-Length (mandatory on streams).
    #[error("Content-Length missing on a stream")]
    MissingContentLength,
    /// Content-Length is not a decimal number, or several disagree.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Header section plus announced body exceed the message size limit.
    #[error("message of {0} octets exceeds the limit")]
    MessageTooLarge(usize),
}

/// Incremental framer: feed it the connection's read buffer after every read.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    max_header_bytes: usize,
    max_message_bytes: usize,
    /// Length of the complete message at the head of the buffer, once its header is parsed.
    pending: Option<usize>,
}

impl StreamFramer {
    /// A framer with the given size limits.
    #[must_use]
    pub fn new(max_header_bytes: usize, max_message_bytes: usize) -> Self {
        Self {
            max_header_bytes,
            max_message_bytes,
            pending: None,
        }
    }

    /// Cut the next frame off the front of `buffer`; `Ok(None)` means more bytes are needed.
    ///
    /// # Errors
    /// [`FramingError`] when the stream cannot be framed; the caller closes the connection.
    pub fn next_frame(&mut self, buffer: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if self.pending.is_none() {
            if buffer.starts_with(b"\r\n\r\n") {
                let _ = buffer.split_to(4);
                return Ok(Some(Frame::Ping));
            }
            if buffer.starts_with(b"\r\n") {
                // "\r\n" or "\r\n\r" may still become a ping: wait for the next octet.
                if buffer.len() < 3 || (buffer.len() == 3 && buffer[2] == b'\r') {
                    return Ok(None);
                }
                let _ = buffer.split_to(2);
                return Ok(Some(Frame::Pong));
            }
            let Some(header_end) = find_blank_line(buffer, self.max_header_bytes) else {
                if buffer.len() > self.max_header_bytes {
                    return Err(FramingError::HeaderTooLong(self.max_header_bytes));
                }
                return Ok(None);
            };
            let body = content_length(&buffer[..header_end])?;
            let total = header_end.saturating_add(body);
            if total > self.max_message_bytes {
                return Err(FramingError::MessageTooLarge(total));
            }
            self.pending = Some(total);
        }
        match self.pending {
            Some(total) if buffer.len() >= total => {
                self.pending = None;
                Ok(Some(Frame::Message(buffer.split_to(total).freeze())))
            }
            _ => Ok(None),
        }
    }
}

/// Offset just past the first CRLFCRLF, searched within `limit` octets.
fn find_blank_line(buffer: &[u8], limit: usize) -> Option<usize> {
    let window = &buffer[..buffer.len().min(limit.saturating_add(4))];
    window
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The Content-Length of a header section (long or compact `l` form); all occurrences must
/// agree.
fn content_length(header: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in header.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::InvalidContentLength);
        }
        let parsed = value.iter().fold(0usize, |acc, &digit| {
            acc.saturating_mul(10)
                .saturating_add(usize::from(digit - b'0'))
        });
        if found.is_some_and(|previous| previous != parsed) {
            return Err(FramingError::InvalidContentLength);
        }
        found = Some(parsed);
    }
    found.ok_or(FramingError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> StreamFramer {
        StreamFramer::new(1024, 4096)
    }

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\nVia: x\r\n\r\nabc";

    #[test]
    fn split_writes_and_pipelining() {
        let mut framer = framer();
        let mut buffer = BytesMut::new();
        let mut frames = Vec::new();
        let stream = [b"\r\n\r\n".as_slice(), MSG, MSG, b"\r\n"].concat();
        for chunk in stream.chunks(5) {
            buffer.extend_from_slice(chunk);
            while let Some(frame) = framer.next_frame(&mut buffer).unwrap() {
                frames.push(frame);
            }
        }
        buffer.extend_from_slice(b"X");
        while let Some(frame) = framer.next_frame(&mut buffer).unwrap() {
            frames.push(frame);
        }
        let message = Frame::Message(Bytes::from_static(MSG));
        assert_eq!(
            frames,
            vec![Frame::Ping, message.clone(), message, Frame::Pong]
        );
    }

    #[test]
    fn errors() {
        let mut buffer = BytesMut::from(&b"INVITE x SIP/2.0\r\nVia: x\r\n\r\n"[..]);
        assert_eq!(
            framer().next_frame(&mut buffer),
            Err(FramingError::MissingContentLength)
        );
        let mut buffer = BytesMut::from(&b"INVITE x SIP/2.0\r\nContent-Length: -1\r\n\r\n"[..]);
        assert_eq!(
            framer().next_frame(&mut buffer),
            Err(FramingError::InvalidContentLength)
        );
        let mut buffer =
            BytesMut::from(&b"INVITE x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n"[..]);
        assert_eq!(
            framer().next_frame(&mut buffer),
            Err(FramingError::InvalidContentLength)
        );
        let mut buffer = BytesMut::from(&b"INVITE x SIP/2.0\r\nContent-Length: 99999\r\n\r\n"[..]);
        assert!(matches!(
            framer().next_frame(&mut buffer),
            Err(FramingError::MessageTooLarge(_))
        ));
        let mut buffer = BytesMut::from(vec![b'a'; 2000].as_slice());
        assert_eq!(
            framer().next_frame(&mut buffer),
            Err(FramingError::HeaderTooLong(1024))
        );
    }
}
