//! The session description: header lines, session-level lines and media sections; accessors,
//! the B2BUA edits and printing.

use std::fmt;
use std::net::IpAddr;

use bytes::Bytes;

use crate::attribute::{Attribute, Direction, Rtcp};
use crate::error::EditError;
use crate::fields::{Bandwidth, Connection, Origin, Timing};
use crate::line::{Line, Raw, field_range, insert_ordered, splice};
use crate::media::{MediaDescription, replace_direction, replace_first};

/// A parsed (or built) SDP session description.
///
/// Lines keep their original bytes; printing an unchanged description reproduces a CRLF input
/// byte for byte. Edits rewrite only the lines they touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub(crate) origin: Raw<Origin>,
    pub(crate) session_name: Bytes,
    pub(crate) lines: Vec<Line>,
    pub(crate) media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A description with `v=0`, the given `o=` and `s=`, and `t=0 0`; no media yet.
    pub fn new(origin: Origin, session_name: &str) -> Result<Self, EditError> {
        let name = session_name.as_bytes();
        if name.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(EditError::InvalidValue {
                what: "session name",
            });
        }
        Ok(SessionDescription {
            origin: raw_origin(origin)?,
            session_name: Bytes::copy_from_slice(name),
            lines: vec![Line::from_timing(Timing { start: 0, stop: 0 })],
            media: Vec::new(),
        })
    }

    /// The `o=` line.
    pub fn origin(&self) -> &Origin {
        &self.origin.value
    }

    /// Replaces the `o=` line.
    pub fn set_origin(&mut self, origin: Origin) -> Result<(), EditError> {
        self.origin = raw_origin(origin)?;
        Ok(())
    }

    /// Increments the `o=` session version (saturating) and returns the new value.
    ///
    /// RFC 3264 §8: every new offer or answer on a leg that changes anything must carry a
    /// higher version. [`crate::LegOrigin`] does this bookkeeping per leg.
    pub fn bump_version(&mut self) -> u64 {
        let version = self.origin.value.session_version.saturating_add(1);
        // Only the version digits change: the o= value always has six fields, parsed or built.
        if let Some(field) = field_range(&self.origin.raw, 2) {
            self.origin.raw = splice(&self.origin.raw, field, version.to_string().as_bytes());
            self.origin.value.session_version = version;
        }
        self.origin.value.session_version
    }

    /// The `s=` text as raw bytes (UTF-8 by default, but not guaranteed).
    pub fn session_name(&self) -> &[u8] {
        &self.session_name
    }

    /// Session-level lines after `s=`, in order (`i=` ... `a=`).
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Session-level `c=`.
    pub fn connection(&self) -> Option<&Connection> {
        self.lines.iter().find_map(Line::connection)
    }

    /// Session-level `b=` lines.
    pub fn bandwidths(&self) -> impl Iterator<Item = &Bandwidth> {
        self.lines.iter().filter_map(Line::bandwidth)
    }

    /// `t=` lines.
    pub fn timings(&self) -> impl Iterator<Item = &Timing> {
        self.lines.iter().filter_map(Line::timing)
    }

    /// Session-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.lines.iter().filter_map(Line::attribute)
    }

    /// The first session-level attribute with this name (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes().find_map(|a| match a {
            Attribute::Direction(direction) => Some(*direction),
            _ => None,
        })
    }

    /// The media sections.
    pub fn media(&self) -> &[MediaDescription] {
        &self.media
    }

    /// One media section, mutable.
    pub fn media_mut(&mut self, index: usize) -> Result<&mut MediaDescription, EditError> {
        let count = self.media.len();
        self.media
            .get_mut(index)
            .ok_or(EditError::NoSuchMedia { index, count })
    }

    /// All media sections, mutable.
    pub fn media_iter_mut(&mut self) -> impl Iterator<Item = &mut MediaDescription> {
        self.media.iter_mut()
    }

    /// Appends a media section.
    pub fn push_media(&mut self, media: MediaDescription) {
        self.media.push(media);
    }

    /// Inserts a session-level line at its RFC 8866 place.
    pub fn push_line(&mut self, line: Line) -> Result<(), EditError> {
        if !matches!(
            line.kind(),
            'i' | 'u' | 'e' | 'p' | 'c' | 'b' | 't' | 'r' | 'z' | 'k' | 'a'
        ) {
            return Err(EditError::InvalidValue {
                what: "line type not allowed at session level",
            });
        }
        insert_ordered(&mut self.lines, line);
        Ok(())
    }

    /// Removes every session-level attribute with this name; returns how many went.
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        let before = self.lines.len();
        self.lines.retain(|l| {
            l.attribute()
                .is_none_or(|a| !a.name().eq_ignore_ascii_case(name))
        });
        before - self.lines.len()
    }

    /// The connection in force for a media section: its own `c=`, else the session's.
    pub fn effective_connection(&self, index: usize) -> Option<&Connection> {
        let media = self.media.get(index)?;
        media.connection().or_else(|| self.connection())
    }

    /// The direction in force for a media section: media level, else session level, else
    /// `sendrecv` (RFC 3264 §5.1).
    pub fn effective_direction(&self, index: usize) -> Option<Direction> {
        let media = self.media.get(index)?;
        Some(
            media
                .direction()
                .or_else(|| self.direction())
                .unwrap_or_default(),
        )
    }

    /// Whether a media section asks for hold: `sendonly`/`inactive` in force, or the RFC 2543
    /// style `c=0.0.0.0` (see [`Self::is_legacy_hold`]). `None` for a missing or rejected
    /// (port 0) section.
    pub fn is_media_hold(&self, index: usize) -> Option<bool> {
        self.media.get(index).filter(|m| !m.is_rejected())?;
        let direction = self.effective_direction(index)?;
        Some(self.is_legacy_hold(index) || !direction.receives())
    }

    /// Whether a media section is held the RFC 2543 way: its connection address is `0.0.0.0`
    /// (or `::`) and ICE is not in use (with ICE, RFC 8839, 0.0.0.0 only means "no candidate
    /// yet").
    pub fn is_legacy_hold(&self, index: usize) -> bool {
        let Some(media) = self.media.get(index) else {
            return false;
        };
        let ice = media.attribute("ice-ufrag").is_some() || self.attribute("ice-ufrag").is_some();
        !ice && self
            .effective_connection(index)
            .is_some_and(Connection::is_unspecified)
    }

    /// Whether the whole description puts the call on hold: at least one active stream, and
    /// every active stream is on hold (see [`Self::is_media_hold`]).
    pub fn is_hold(&self) -> bool {
        let mut active = (0..self.media.len())
            .filter_map(|i| self.is_media_hold(i))
            .peekable();
        active.peek().is_some() && active.all(|hold| hold)
    }

    /// Topology hiding: points every `c=` (session and media), every `a=rtcp` address and the
    /// `o=` address at `address` (our relay). Adds a session `c=` when there is none.
    ///
    /// `0.0.0.0`/`::` connection lines (RFC 2543 hold) are left as they are, so the hold still
    /// reaches the other leg and no address leaks; with ICE (`a=ice-ufrag`) they are ICE
    /// placeholders and are rewritten too. ICE candidates themselves are not touched: call this
    /// first, then drop them with [`MediaDescription::remove_attributes`] when anchoring media.
    pub fn rewrite_connection(&mut self, address: IpAddr) {
        let addr_type = crate::fields::AddrType::of(address).as_str();
        let text = address.to_string();
        let origin = &mut self.origin;
        if (origin.value.addr_type != addr_type || origin.value.address != text)
            && let (Some(from), Some(to)) =
                (field_range(&origin.raw, 4), field_range(&origin.raw, 5))
        {
            // Only the address type and address change; user, id, version and spacing stay.
            origin.raw = splice(
                &origin.raw,
                from.start..to.end,
                format!("{addr_type} {text}").as_bytes(),
            );
            origin.value.addr_type = addr_type.to_owned();
            origin.value.address = text;
        }
        let session_ice = self.attribute("ice-ufrag").is_some();
        let any_ice = session_ice
            || self
                .media
                .iter()
                .any(|m| m.attribute("ice-ufrag").is_some());
        let session_hold = !any_ice && self.connection().is_some_and(Connection::is_unspecified);
        if !session_hold && let Ok(line) = Line::from_connection(Connection::new(address)) {
            replace_first(&mut self.lines, |l| l.kind() == 'c', Some(line));
        }
        for media in &mut self.media {
            let keep_hold = !session_ice && media.attribute("ice-ufrag").is_none();
            media.rewrite_addresses(address, keep_hold);
        }
    }

    /// Sets the port of a media section; an `a=rtcp` in it follows to `port + 1` (our relay
    /// puts RTCP on the next port), keeping its address part. Port 0 leaves `a=rtcp` alone;
    /// port 65535 with an `a=rtcp` is refused (no next port) and changes nothing.
    pub fn set_media_port(&mut self, index: usize, port: u16) -> Result<(), EditError> {
        let media = self.media_mut(index)?;
        if port != 0
            && let Some(rtcp) = media.rtcp().cloned()
        {
            let rtcp_port = port
                .checked_add(1)
                .ok_or(EditError::InvalidValue { what: "RTCP port" })?;
            media.set_rtcp(Some(Rtcp {
                port: rtcp_port,
                connection: rtcp.connection,
            }))?;
        }
        media.set_port(port);
        Ok(())
    }

    /// Sets the direction of every active media section, removing any session-level direction
    /// (rejected, port 0, sections are left alone).
    pub fn set_direction(&mut self, direction: Direction) {
        replace_direction(&mut self.lines, None);
        for media in self.media.iter_mut().filter(|m| !m.is_rejected()) {
            media.set_direction(direction);
        }
    }

    /// The printed description (CRLF line ends).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut out);
        Bytes::from(out)
    }

    /// Appends the printed description to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"v=0\r\n");
        write_line(out, b'o', &self.origin.raw);
        write_line(out, b's', &self.session_name);
        for line in &self.lines {
            write_line(out, line.kind_byte(), line.raw());
        }
        for media in &self.media {
            write_line(out, b'm', &media.media_line.raw);
            for line in &media.lines {
                write_line(out, line.kind_byte(), line.raw());
            }
        }
    }

    /// Exact length of [`Self::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        let lines = self
            .lines
            .iter()
            .chain(self.media.iter().flat_map(|m| m.lines.iter()));
        5 + self.origin.raw.len()
            + 4
            + self.session_name.len()
            + 4
            + lines.map(|l| l.raw().len() + 4).sum::<usize>()
            + self
                .media
                .iter()
                .map(|m| m.media_line.raw.len() + 4)
                .sum::<usize>()
    }
}

impl fmt::Display for SessionDescription {
    /// Prints the description; bytes that are not UTF-8 show as U+FFFD (use
    /// [`SessionDescription::to_bytes`] for the exact bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

fn write_line(out: &mut Vec<u8>, kind: u8, raw: &[u8]) {
    out.push(kind);
    out.push(b'=');
    out.extend_from_slice(raw);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn raw_origin(origin: Origin) -> Result<Raw<Origin>, EditError> {
    if !origin.is_writable() {
        return Err(EditError::InvalidValue { what: "o= line" });
    }
    let mut raw = String::with_capacity(48);
    origin.write(&mut raw);
    Ok(Raw {
        value: origin,
        raw: Bytes::from(raw),
    })
}
