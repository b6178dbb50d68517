//! One media section: the `m=` line and the lines below it up to the next `m=`.

use bytes::Bytes;

use crate::attribute::{Attribute, Direction, Fmtp, Rtcp, Rtpmap};
use crate::error::EditError;
use crate::fields::{Bandwidth, Connection, MediaLine};
use crate::line::{Line, LineValue, Raw, field_range, field_ranges, insert_ordered, splice};

/// A media section (`m=` and its `i=`, `c=`, `b=`, `k=`, `a=` lines, in their original order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub(crate) media_line: Raw<MediaLine>,
    pub(crate) lines: Vec<Line>,
}

impl MediaDescription {
    /// A section with only an `m=` line.
    pub fn new(media_line: MediaLine) -> Result<Self, EditError> {
        Ok(MediaDescription {
            media_line: raw_media_line(media_line)?,
            lines: Vec::new(),
        })
    }

    /// The typed `m=` line.
    pub fn media_line(&self) -> &MediaLine {
        &self.media_line.value
    }

    /// The media type: `audio`, `video`, `image`, ...
    pub fn media_type(&self) -> &str {
        &self.media_line.value.media
    }

    /// The transport port (0 = rejected or disabled stream).
    pub fn port(&self) -> u16 {
        self.media_line.value.port
    }

    /// The transport protocol (`RTP/AVP`, `udptl`, ...).
    pub fn proto(&self) -> &str {
        &self.media_line.value.proto
    }

    /// The formats in the `m=` line, in order of preference.
    pub fn formats(&self) -> &[String] {
        &self.media_line.value.formats
    }

    /// Whether this is an RTP stream (formats are payload type numbers).
    pub fn is_rtp(&self) -> bool {
        self.media_line.value.is_rtp()
    }

    /// Port 0: the stream is rejected (in an answer) or disabled (in an offer).
    pub fn is_rejected(&self) -> bool {
        self.port() == 0
    }

    /// Replaces the `m=` line.
    pub fn set_media_line(&mut self, media_line: MediaLine) -> Result<(), EditError> {
        self.media_line = raw_media_line(media_line)?;
        Ok(())
    }

    /// Sets the port in the `m=` line, leaving everything else on it as it was.
    pub fn set_port(&mut self, port: u16) {
        if self.port() == port {
            return;
        }
        // Only the port digits change (a `/count` and the original spacing stay): the m= value
        // always has a port as its second field, parsed or built.
        let raw = &self.media_line.raw;
        if let Some(field) = field_range(raw, 1) {
            let end = raw[field.clone()]
                .iter()
                .position(|b| *b == b'/')
                .map_or(field.end, |slash| field.start + slash);
            self.media_line.raw = splice(raw, field.start..end, port.to_string().as_bytes());
            self.media_line.value.port = port;
        }
    }

    /// Keeps the `m=` formats for which `keep` says true, editing only the format list (the rest
    /// of the line keeps its bytes). The caller makes sure at least one format stays.
    pub(crate) fn retain_formats(&mut self, keep: impl Fn(&str) -> bool) {
        let raw = &self.media_line.raw;
        let ranges: Vec<std::ops::Range<usize>> = field_ranges(raw).collect();
        let (Some(proto), Some(last)) = (ranges.get(2), ranges.last()) else {
            return;
        };
        let mut out = Vec::with_capacity(raw.len());
        out.extend_from_slice(&raw[..proto.end]);
        for range in ranges.iter().skip(3) {
            let format = &raw[range.clone()];
            if std::str::from_utf8(format).is_ok_and(&keep) {
                out.push(b' ');
                out.extend_from_slice(format);
            }
        }
        out.extend_from_slice(&raw[last.end..]);
        self.media_line.raw = Bytes::from(out);
        self.media_line.value.formats.retain(|f| keep(f));
    }

    /// All lines below `m=`, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// All attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.lines.iter().filter_map(Line::attribute)
    }

    /// The first attribute with this name (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The media-level `c=` (the first one, if a multicast section lists several).
    pub fn connection(&self) -> Option<&Connection> {
        self.lines.iter().find_map(Line::connection)
    }

    /// The media-level `b=` lines.
    pub fn bandwidths(&self) -> impl Iterator<Item = &Bandwidth> {
        self.lines.iter().filter_map(Line::bandwidth)
    }

    /// The media-level direction attribute, if any (see
    /// [`crate::SessionDescription::effective_direction`] for the one in force).
    pub fn direction(&self) -> Option<Direction> {
        self.attributes().find_map(|a| match a {
            Attribute::Direction(direction) => Some(*direction),
            _ => None,
        })
    }

    /// The `a=rtpmap` lines.
    pub fn rtpmaps(&self) -> impl Iterator<Item = &Rtpmap> {
        self.attributes().filter_map(|a| match a {
            Attribute::Rtpmap(rtpmap) => Some(rtpmap),
            _ => None,
        })
    }

    /// The `a=rtpmap` for a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&Rtpmap> {
        self.rtpmaps().find(|r| r.payload_type == payload_type)
    }

    /// The `a=fmtp` lines.
    pub fn fmtps(&self) -> impl Iterator<Item = &Fmtp> {
        self.attributes().filter_map(|a| match a {
            Attribute::Fmtp(fmtp) => Some(fmtp),
            _ => None,
        })
    }

    /// The `a=fmtp` for a format.
    pub fn fmtp(&self, format: &str) -> Option<&Fmtp> {
        self.fmtps().find(|f| f.format == format)
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attributes().find_map(|a| match a {
            Attribute::MaxPtime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes().find_map(|a| match a {
            Attribute::Rtcp(rtcp) => Some(rtcp),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes().any(|a| matches!(a, Attribute::RtcpMux))
    }

    /// Payload types mapped to `telephone-event` (RFC 4733), with their clock rates.
    pub fn telephone_events(&self) -> impl Iterator<Item = (u8, u32)> {
        self.rtpmaps()
            .filter(|r| r.encoding.eq_ignore_ascii_case("telephone-event"))
            .filter(|r| {
                self.formats()
                    .iter()
                    .any(|f| f.parse::<u8>().ok() == Some(r.payload_type))
            })
            .map(|r| (r.payload_type, r.clock_rate))
    }

    /// Whether the stream offers telephone-event (RFC 4733 DTMF).
    pub fn has_telephone_event(&self) -> bool {
        self.telephone_events().next().is_some()
    }

    /// Appends an attribute after the existing ones.
    pub fn push_attribute(&mut self, attribute: Attribute) -> Result<(), EditError> {
        insert_ordered(&mut self.lines, Line::from_attribute(attribute)?);
        Ok(())
    }

    /// Inserts any line at its RFC 8866 place (`c=` before `b=` before `a=`).
    pub fn push_line(&mut self, line: Line) -> Result<(), EditError> {
        if !matches!(line.kind(), 'i' | 'c' | 'b' | 'k' | 'a') {
            return Err(EditError::InvalidValue {
                what: "line type not allowed in a media section",
            });
        }
        insert_ordered(&mut self.lines, line);
        Ok(())
    }

    /// Removes every attribute with this name (case-insensitive); returns how many went.
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        let before = self.lines.len();
        self.lines.retain(|l| {
            l.attribute()
                .is_none_or(|a| !a.name().eq_ignore_ascii_case(name))
        });
        before - self.lines.len()
    }

    /// Keeps only the lines for which `keep` says true.
    pub fn retain_lines(&mut self, keep: impl FnMut(&Line) -> bool) {
        self.lines.retain(keep);
    }

    /// Sets the media-level direction: replaces the first direction attribute in place, drops
    /// any others, or appends one.
    pub fn set_direction(&mut self, direction: Direction) {
        replace_direction(&mut self.lines, Some(direction));
    }

    /// Removes media-level direction attributes (the session level or `sendrecv` then applies).
    pub fn clear_direction(&mut self) {
        replace_direction(&mut self.lines, None);
    }

    /// Sets (`Some`) or removes (`None`) the media-level `c=` line(s).
    pub fn set_connection(&mut self, connection: Option<Connection>) -> Result<(), EditError> {
        let line = connection.map(Line::from_connection).transpose()?;
        replace_first(&mut self.lines, |l| l.kind() == 'c', line);
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) the `a=rtcp` attribute, in place when present.
    pub fn set_rtcp(&mut self, rtcp: Option<Rtcp>) -> Result<(), EditError> {
        let line = rtcp
            .map(|r| Line::from_attribute(Attribute::Rtcp(r)))
            .transpose()?;
        replace_first(
            &mut self.lines,
            |l| matches!(l.attribute(), Some(Attribute::Rtcp(_))),
            line,
        );
        Ok(())
    }

    /// Rewrites every `c=` and `a=rtcp` address in the section to `address`, leaving
    /// `0.0.0.0`/`::` (RFC 2543 hold) as it is when `keep_hold`.
    pub(crate) fn rewrite_addresses(&mut self, address: std::net::IpAddr, keep_hold: bool) {
        for line in &mut self.lines {
            let replacement = match line.value() {
                LineValue::Connection(c) if !(keep_hold && c.is_unspecified()) => {
                    Line::from_connection(Connection::new(address))
                }
                LineValue::Attribute(Attribute::Rtcp(Rtcp {
                    port,
                    connection: Some(c),
                })) if !(keep_hold && c.is_unspecified()) => {
                    Line::from_attribute(Attribute::Rtcp(Rtcp {
                        port: *port,
                        connection: Some(Connection::new(address)),
                    }))
                }
                _ => continue,
            };
            if let Ok(replacement) = replacement {
                *line = replacement;
            }
        }
    }
}

/// Replaces the first line matching `pick` with `line` (or removes it when `None`), removes
/// further matches, and inserts `line` at its ordered place when nothing matched.
pub(crate) fn replace_first(
    lines: &mut Vec<Line>,
    pick: impl Fn(&Line) -> bool,
    line: Option<Line>,
) {
    let mut replacement = line;
    let mut index = 0;
    let mut replaced = false;
    while index < lines.len() {
        if pick(&lines[index]) {
            match replacement.take() {
                Some(new) if !replaced => {
                    lines[index] = new;
                    replaced = true;
                    index += 1;
                }
                _ => {
                    lines.remove(index);
                }
            }
        } else {
            index += 1;
        }
    }
    if let Some(new) = replacement {
        insert_ordered(lines, new);
    }
}

pub(crate) fn replace_direction(lines: &mut Vec<Line>, direction: Option<Direction>) {
    let line = direction.and_then(|d| Line::from_attribute(Attribute::Direction(d)).ok());
    replace_first(
        lines,
        |l| matches!(l.attribute(), Some(Attribute::Direction(_))),
        line,
    );
}

pub(crate) fn raw_media_line(media_line: MediaLine) -> Result<Raw<MediaLine>, EditError> {
    if !media_line.is_writable() {
        return Err(EditError::InvalidValue { what: "m= line" });
    }
    let mut raw = String::with_capacity(32);
    media_line.write(&mut raw);
    Ok(Raw {
        value: media_line,
        raw: Bytes::from(raw),
    })
}
