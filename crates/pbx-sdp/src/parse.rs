//! The parser: splits lines (LF or CRLF), checks the RFC 8866 structure and builds typed lines
//! that share the input buffer.

use bytes::Bytes;

use crate::error::SdpError;
use crate::fields::{MediaLine, MediaLineFault, Origin};
use crate::line::{Line, Raw};
use crate::media::MediaDescription;
use crate::session::SessionDescription;

/// Largest description accepted, in bytes (a SIP body over UDP cannot be larger).
pub const MAX_SDP_LEN: usize = 65_535;

impl SessionDescription {
    /// Parses a session description (LF or CRLF line ends).
    ///
    /// Strict where RFC 8866 is: `v=0` first, then `o=`, `s=`, at least one `t=` before the
    /// media, the `m=` grammar, no unknown line types, `c=` in force for every active stream.
    /// Tolerant where real peers differ harmlessly: extra spaces between fields, an empty
    /// `s=`, a last line without line end, blank lines at the very end.
    pub fn parse(input: &[u8]) -> Result<Self, SdpError> {
        check_len(input.len())?;
        Self::parse_bytes(Bytes::copy_from_slice(input))
    }

    /// Like [`Self::parse`], but shares `input` instead of copying it (e.g. a SIP body).
    pub fn parse_bytes(input: Bytes) -> Result<Self, SdpError> {
        check_len(input.len())?;
        Parser::new(input, false).run().map(|(sdp, _)| sdp)
    }

    /// Like [`Self::parse`], except that a known attribute with a malformed value (e.g.
    /// `a=rtpmap:31 LPC`, found in RFC 4475's messages) is kept byte-exact as an
    /// [`crate::Attribute::Other`] instead of failing the whole description; the errors it
    /// would have raised come back alongside, for logging. Everything else stays strict.
    ///
    /// The typed accessors then do not see that line: a dynamic payload type whose `a=rtpmap`
    /// was malformed has no codec and is never negotiated.
    pub fn parse_lenient(input: &[u8]) -> Result<(Self, Vec<SdpError>), SdpError> {
        check_len(input.len())?;
        Parser::new(Bytes::copy_from_slice(input), true).run()
    }
}

fn check_len(len: usize) -> Result<(), SdpError> {
    if len > MAX_SDP_LEN {
        return Err(SdpError::TooLarge {
            len,
            limit: MAX_SDP_LEN,
        });
    }
    Ok(())
}

struct Parser {
    input: Bytes,
    pos: usize,
    line: usize,
    /// Demote malformed known attributes to unknown ones instead of failing.
    lenient: bool,
    demoted: Vec<SdpError>,
}

/// One line: its number, type letter and value bytes.
struct RawLine {
    number: usize,
    kind: u8,
    value: Bytes,
}

impl Parser {
    fn new(input: Bytes, lenient: bool) -> Self {
        Parser {
            input,
            pos: 0,
            line: 0,
            lenient,
            demoted: Vec::new(),
        }
    }

    /// Parses a line below the header; in lenient mode a malformed attribute value is demoted.
    fn typed_line(&mut self, line: RawLine) -> Result<Line, SdpError> {
        // Keep the bytes for a demotion only when one can happen.
        let raw = self.lenient.then(|| line.value.clone());
        match Line::parse(line.kind, line.value, line.number) {
            Err(
                error @ (SdpError::InvalidRtpmap { .. }
                | SdpError::InvalidFmtp { .. }
                | SdpError::InvalidPtime { .. }
                | SdpError::InvalidRtcp { .. }
                | SdpError::UnexpectedAttributeValue { .. }),
            ) if self.lenient => {
                let demoted = raw
                    .and_then(Line::demoted_attribute)
                    .ok_or_else(|| error.clone())?;
                self.demoted.push(error);
                Ok(demoted)
            }
            other => other,
        }
    }

    /// The next non-final line, `None` at the end (trailing blank lines included).
    fn next_line(&mut self) -> Result<Option<RawLine>, SdpError> {
        if self.pos >= self.input.len() {
            return Ok(None);
        }
        let rest = &self.input[self.pos..];
        let (end, next) = match memchr::memchr(b'\n', rest) {
            Some(at) => (self.pos + at, self.pos + at + 1),
            None => (self.input.len(), self.input.len()),
        };
        let start = self.pos;
        self.pos = next;
        self.line += 1;
        let number = self.line;
        let mut content = &self.input[start..end];
        if let Some(stripped) = content.strip_suffix(b"\r") {
            content = stripped;
        }
        if content.is_empty() {
            if self.input[start..]
                .iter()
                .all(|b| matches!(b, b'\r' | b'\n'))
            {
                self.pos = self.input.len();
                return Ok(None);
            }
            return Err(SdpError::BlankLine { line: number });
        }
        let kind = content[0];
        if content.len() < 2 || content[1] != b'=' || !kind.is_ascii_lowercase() {
            return Err(SdpError::MalformedLine { line: number });
        }
        if memchr::memchr2(b'\r', 0, content).is_some() {
            return Err(SdpError::InvalidCharacter { line: number });
        }
        if !b"vosiuepcbtrzkam".contains(&kind) {
            return Err(SdpError::UnknownLineType {
                line: number,
                kind: char::from(kind),
            });
        }
        let value = self.input.slice(start + 2..start + content.len());
        Ok(Some(RawLine {
            number,
            kind,
            value,
        }))
    }

    fn run(mut self) -> Result<(SessionDescription, Vec<SdpError>), SdpError> {
        let version = self.next_line()?.ok_or(SdpError::Empty)?;
        if version.kind != b'v' {
            return Err(SdpError::MissingVersion);
        }
        if &version.value[..] != b"0" {
            return Err(SdpError::UnsupportedVersion {
                line: version.number,
            });
        }
        let origin_line = self.next_line()?.filter(|l| l.kind == b'o');
        let origin_line = origin_line.ok_or(SdpError::MissingOrigin {
            line: self.line.max(2),
        })?;
        let origin = Origin::parse(&origin_line.value).ok_or(SdpError::InvalidOrigin {
            line: origin_line.number,
        })?;
        let name_line = self.next_line()?.filter(|l| l.kind == b's');
        let name_line = name_line.ok_or(SdpError::MissingSessionName {
            line: self.line.max(3),
        })?;

        let mut session = SessionDescription {
            origin: Raw {
                value: origin,
                raw: origin_line.value,
            },
            session_name: name_line.value,
            lines: Vec::new(),
            media: Vec::new(),
        };
        let mut media_line_numbers = Vec::new();
        let mut seen_timing = false;
        let mut seen_connection = false;
        while let Some(line) = self.next_line()? {
            let out_of_place = SdpError::LineOutOfPlace {
                line: line.number,
                kind: char::from(line.kind),
            };
            match (line.kind, session.media.last_mut()) {
                (b'm', _) => {
                    if !seen_timing {
                        return Err(SdpError::MissingTiming);
                    }
                    let media_line = MediaLine::parse(&line.value)
                        .map_err(|fault| media_error(fault, line.number))?;
                    media_line_numbers.push(line.number);
                    session.media.push(MediaDescription {
                        media_line: Raw {
                            value: media_line,
                            raw: line.value,
                        },
                        lines: Vec::new(),
                    });
                }
                (b'v' | b'o' | b's', _) => {
                    return Err(SdpError::DuplicateLine {
                        line: line.number,
                        kind: char::from(line.kind),
                    });
                }
                (b'i' | b'c' | b'b' | b'k' | b'a', Some(media)) => {
                    media.lines.push(self.typed_line(line)?);
                }
                (_, Some(_)) => return Err(out_of_place),
                (b'r', None) if !seen_timing => return Err(out_of_place),
                (kind, None) => {
                    if kind == b'c' {
                        if seen_connection {
                            return Err(SdpError::DuplicateLine {
                                line: line.number,
                                kind: 'c',
                            });
                        }
                        seen_connection = true;
                    }
                    seen_timing |= kind == b't';
                    session.lines.push(self.typed_line(line)?);
                }
            }
        }
        if !seen_timing {
            return Err(SdpError::MissingTiming);
        }
        for (media, number) in session.media.iter().zip(media_line_numbers) {
            if media.port() != 0 && !seen_connection && media.connection().is_none() {
                return Err(SdpError::MissingConnection { line: number });
            }
        }
        Ok((session, self.demoted))
    }
}

fn media_error(fault: MediaLineFault, line: usize) -> SdpError {
    match fault {
        MediaLineFault::Grammar => SdpError::InvalidMediaLine { line },
        MediaLineFault::Port => SdpError::InvalidPort { line },
        MediaLineFault::NoFormats => SdpError::MissingFormats { line },
        MediaLineFault::PayloadType => SdpError::InvalidPayloadType { line },
    }
}
