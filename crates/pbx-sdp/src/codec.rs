//! Codec descriptors, the RFC 3551 static payload types, and the formats of a media section.

use std::borrow::Cow;

use crate::attribute::{Attribute, Fmtp, Rtpmap};
use crate::error::EditError;
use crate::fields::MediaLine;
use crate::media::MediaDescription;

/// An RTP payload format, independent of the payload type number a peer picked for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Codec {
    /// Encoding name as in `a=rtpmap` (`PCMU`, `opus`, ...); compared case-insensitively.
    pub encoding: Cow<'static, str>,
    /// RTP clock rate in Hz (8000 for G.722, by RFC 3551's historical rule).
    pub clock_rate: u32,
    /// Channels (1 unless stated).
    pub channels: u16,
    /// The RFC 3551 static payload type, if the codec has one.
    pub static_payload_type: Option<u8>,
}

impl Codec {
    /// G.711 µ-law, static payload type 0.
    pub const PCMU: Codec = Codec::fixed("PCMU", 8000, 1, Some(0));
    /// G.711 A-law, static payload type 8.
    pub const PCMA: Codec = Codec::fixed("PCMA", 8000, 1, Some(8));
    /// G.722, static payload type 9 (RTP clock 8000 although it samples at 16 kHz).
    pub const G722: Codec = Codec::fixed("G722", 8000, 1, Some(9));
    /// Opus (RFC 7587): always `opus/48000/2`, dynamic payload type.
    pub const OPUS: Codec = Codec::fixed("opus", 48000, 2, None);
    /// RFC 4733 DTMF events at 8 kHz (goes with G.711 and G.722).
    pub const TELEPHONE_EVENT: Codec = Codec::fixed("telephone-event", 8000, 1, None);
    /// RFC 4733 DTMF events at 48 kHz (goes with Opus).
    pub const TELEPHONE_EVENT_48K: Codec = Codec::fixed("telephone-event", 48000, 1, None);
    /// Comfort noise (RFC 3389), static payload type 13.
    pub const CN: Codec = Codec::fixed("CN", 8000, 1, Some(13));

    /// What CloudPBX supports by default, in preference order.
    pub const DEFAULT_SUPPORTED: [Codec; 6] = [
        Codec::PCMU,
        Codec::PCMA,
        Codec::G722,
        Codec::OPUS,
        Codec::TELEPHONE_EVENT,
        Codec::TELEPHONE_EVENT_48K,
    ];

    const fn fixed(
        encoding: &'static str,
        clock_rate: u32,
        channels: u16,
        static_payload_type: Option<u8>,
    ) -> Codec {
        Codec {
            encoding: Cow::Borrowed(encoding),
            clock_rate,
            channels,
            static_payload_type,
        }
    }

    /// The codec an `a=rtpmap` line describes.
    pub fn from_rtpmap(rtpmap: &Rtpmap) -> Codec {
        let static_payload_type = Codec::from_static_payload_type(rtpmap.payload_type)
            .filter(|c| c.encoding.eq_ignore_ascii_case(&rtpmap.encoding))
            .and_then(|c| c.static_payload_type);
        Codec {
            encoding: Cow::Owned(rtpmap.encoding.clone()),
            clock_rate: rtpmap.clock_rate,
            channels: rtpmap.channels.unwrap_or(1),
            static_payload_type,
        }
    }

    /// The codec of an RFC 3551 static audio or video payload type (usable without `a=rtpmap`).
    pub fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        let (name, rate, channels) = static_entry(payload_type)?;
        Some(Codec::fixed(name, rate, channels, Some(payload_type)))
    }

    /// Same payload format as `encoding/clock_rate/channels` (see [`Codec::matches`]).
    pub(crate) fn matches_parts(&self, encoding: &str, clock_rate: u32, channels: u16) -> bool {
        self.encoding.eq_ignore_ascii_case(encoding)
            && self.clock_rate == clock_rate
            && (self.channels == channels || self.encoding.eq_ignore_ascii_case("opus"))
    }

    /// Same payload format: encoding (case-insensitive), clock rate and channels. Opus matches
    /// whatever channel count is written, since RFC 7587 fixes it at 2 and some peers omit it.
    pub fn matches(&self, other: &Codec) -> bool {
        self.matches_parts(&other.encoding, other.clock_rate, other.channels)
    }

    /// Whether this is RFC 4733 telephone-event.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    /// The `a=rtpmap` line for this codec under a payload type (channels written only when not 1).
    pub fn rtpmap(&self, payload_type: u8) -> Rtpmap {
        Rtpmap {
            payload_type,
            encoding: self.encoding.to_string(),
            clock_rate: self.clock_rate,
            channels: (self.channels != 1).then_some(self.channels),
        }
    }
}

/// RFC 3551 static payload types: encoding, clock rate, channels.
fn static_entry(payload_type: u8) -> Option<(&'static str, u32, u16)> {
    let entry = match payload_type {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        25 => ("CelB", 90000, 1),
        26 => ("JPEG", 90000, 1),
        28 => ("nv", 90000, 1),
        31 => ("H261", 90000, 1),
        32 => ("MPV", 90000, 1),
        33 => ("MP2T", 90000, 1),
        34 => ("H263", 90000, 1),
        _ => return None,
    };
    Some(entry)
}

/// One format of an RTP media section: payload type, codec and `a=fmtp` if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// The payload type number used in this description.
    pub payload_type: u8,
    /// What it carries.
    pub codec: Codec,
    /// Its `a=fmtp` line, if any.
    pub fmtp: Option<Fmtp>,
}

impl MediaDescription {
    /// The formats of an RTP section in `m=` order, resolved through `a=rtpmap` or the static
    /// table. Dynamic payload types without `a=rtpmap` are skipped (they cannot be matched).
    pub fn payload_formats(&self) -> Vec<PayloadFormat> {
        if !self.is_rtp() {
            return Vec::new();
        }
        self.formats()
            .iter()
            .filter_map(|format| {
                let payload_type: u8 = format.parse().ok()?;
                let codec = match self.rtpmap(payload_type) {
                    Some(rtpmap) => Codec::from_rtpmap(rtpmap),
                    None => Codec::from_static_payload_type(payload_type)?,
                };
                Some(PayloadFormat {
                    payload_type,
                    codec,
                    fmtp: self.fmtp(format).cloned(),
                })
            })
            .collect()
    }

    /// Encoding, clock rate and channels of a payload type, borrowed from `a=rtpmap` or the
    /// static table.
    pub(crate) fn resolve(&self, payload_type: u8) -> Option<(&str, u32, u16)> {
        match self.rtpmap(payload_type) {
            Some(r) => Some((r.encoding.as_str(), r.clock_rate, r.channels.unwrap_or(1))),
            None => static_entry(payload_type),
        }
    }

    /// The codecs of this section, in `m=` order.
    pub fn codecs(&self) -> Vec<Codec> {
        self.payload_formats()
            .into_iter()
            .map(|f| f.codec)
            .collect()
    }
}

/// The formats of `ours` that `theirs` also has (same codec, whatever payload type), in the
/// order of `ours`, with the payload types of `ours`.
pub fn common_codecs(ours: &MediaDescription, theirs: &MediaDescription) -> Vec<PayloadFormat> {
    let their_codecs = theirs.codecs();
    ours.payload_formats()
        .into_iter()
        .filter(|f| their_codecs.iter().any(|c| c.matches(&f.codec)))
        .collect()
}

impl MediaDescription {
    /// A fresh RTP section offering `codecs` in order, for offers the PBX makes itself (late
    /// offer, announcements, calls it originates): static payload types where the codec has one,
    /// dynamic ones from 96 up otherwise, an `a=rtpmap` for every format, `a=fmtp:<pt> 0-16` for
    /// telephone-event, and `a=ptime` when given.
    pub fn rtp_offer(
        media: &str,
        port: u16,
        proto: &str,
        codecs: &[Codec],
        ptime: Option<u32>,
    ) -> Result<MediaDescription, EditError> {
        let mut next_dynamic: u8 = 96;
        let mut formats = Vec::with_capacity(codecs.len());
        for codec in codecs {
            let payload_type = match codec.static_payload_type {
                Some(payload_type) => payload_type,
                None if next_dynamic <= 127 => {
                    next_dynamic += 1;
                    next_dynamic - 1
                }
                None => {
                    return Err(EditError::InvalidValue {
                        what: "more than 32 dynamic payload types",
                    });
                }
            };
            formats.push((payload_type, codec));
        }
        let media_line = MediaLine {
            media: media.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats: formats.iter().map(|(pt, _)| pt.to_string()).collect(),
        };
        let mut section = MediaDescription::new(media_line)?;
        for (payload_type, codec) in &formats {
            section.push_attribute(Attribute::Rtpmap(codec.rtpmap(*payload_type)))?;
            if codec.is_telephone_event() {
                let fmtp = Fmtp {
                    format: payload_type.to_string(),
                    params: "0-16".to_owned(),
                };
                section.push_attribute(Attribute::Fmtp(fmtp))?;
            }
        }
        if let Some(ptime) = ptime {
            section.push_attribute(Attribute::Ptime(ptime))?;
        }
        Ok(section)
    }
}
