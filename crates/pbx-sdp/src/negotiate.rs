//! RFC 3264 offer/answer: answering an offer, and restricting a description to a codec list.

use std::net::IpAddr;

use crate::attribute::{Attribute, Direction};
use crate::codec::{Codec, PayloadFormat};
use crate::error::NegotiationError;
use crate::fields::{Connection, MediaLine, Origin};
use crate::line::Line;
use crate::media::MediaDescription;
use crate::session::SessionDescription;

/// What we put in an answer besides the codecs. Build with [`AnswerOptions::new`], then set
/// fields (non-exhaustive so options can be added without breaking callers).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnswerOptions {
    /// The answer's `o=` line (keep the version per leg with [`crate::LegOrigin`]).
    pub origin: Origin,
    /// The `s=` text; `-` by default.
    pub session_name: String,
    /// Our media (relay) address for `c=`.
    pub address: IpAddr,
    /// Our local port for each offered media section, by index; only accepted sections use it.
    pub ports: Vec<u16>,
    /// The direction we want; the answer is this intersected with the reverse of the offer's.
    pub direction: Direction,
    /// Media types we accept (case-insensitive); everything else is rejected with port 0.
    pub media_types: Vec<String>,
    /// `a=ptime` to answer with; `None` echoes the offer's.
    pub ptime: Option<u32>,
    /// Answer `a=rtcp-mux` when the offer has it.
    pub rtcp_mux: bool,
}

impl AnswerOptions {
    /// Audio only, `sendrecv`, offer's ptime, rtcp-mux accepted.
    pub fn new(origin: Origin, address: IpAddr, ports: Vec<u16>) -> Self {
        AnswerOptions {
            origin,
            session_name: "-".to_owned(),
            address,
            ports,
            direction: Direction::SendRecv,
            media_types: vec!["audio".to_owned()],
            ptime: None,
            rtcp_mux: true,
        }
    }
}

/// Builds the answer to `offer` (RFC 3264 §6): one media section per offered one, in offer
/// order; for each accepted RTP stream the offered formats we support, in offer order and with
/// the offer's payload types, plus the offer's telephone-event formats whose clock rate matches
/// a chosen codec and that we support; the direction answered per §6.1; every other stream
/// rejected with port 0.
///
/// Non-RTP streams of an accepted type (e.g. `image` `udptl` T.38) are answered by echoing the
/// offered formats and attributes (reversed direction); the caller adjusts T.38 parameters.
/// `a=crypto` is not answered here: SRTP keying belongs to the media layer.
pub fn negotiate_answer(
    offer: &SessionDescription,
    supported: &[Codec],
    options: &AnswerOptions,
) -> Result<SessionDescription, NegotiationError> {
    let invalid = |_| NegotiationError::InvalidLocalValue;
    let mut answer =
        SessionDescription::new(options.origin.clone(), &options.session_name).map_err(invalid)?;
    // RFC 3264 §6: the answer's t= equals the offer's.
    answer.lines.retain(|l| l.kind() != 't');
    for line in offer.lines().iter().filter(|l| l.kind() == 't') {
        answer.lines.push(line.clone());
    }
    answer
        .push_line(Line::from_connection(Connection::new(options.address)).map_err(invalid)?)
        .map_err(invalid)?;

    let mut acceptable_type = false;
    let mut accepted = false;
    for (index, offered) in offer.media().iter().enumerate() {
        let wanted = !offered.is_rejected()
            && options
                .media_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(offered.media_type()));
        acceptable_type |= wanted;
        let section = if !wanted {
            None
        } else if offered.is_rtp() {
            answer_rtp(offer, index, offered, supported, options)?
        } else {
            Some(answer_other(offer, index, offered, options)?)
        };
        accepted |= section.is_some();
        answer.push_media(match section {
            Some(section) => section,
            None => rejected(offered).map_err(invalid)?,
        });
    }
    // An offer without streams, or with every stream disabled, is legal (RFC 3264 §5, §8.2):
    // its answer mirrors it.
    if offer.media().iter().all(MediaDescription::is_rejected) {
        return Ok(answer);
    }
    if !acceptable_type {
        return Err(NegotiationError::NoAcceptableMedia);
    }
    if !accepted {
        return Err(NegotiationError::NoCommonCodec);
    }
    Ok(answer)
}

fn answer_rtp(
    offer: &SessionDescription,
    index: usize,
    offered: &MediaDescription,
    supported: &[Codec],
    options: &AnswerOptions,
) -> Result<Option<MediaDescription>, NegotiationError> {
    let is_supported = |f: &PayloadFormat| supported.iter().any(|c| c.matches(&f.codec));
    let formats = offered.payload_formats();
    let audio: Vec<&PayloadFormat> = formats
        .iter()
        .filter(|f| !f.codec.is_telephone_event() && is_supported(f))
        .collect();
    if audio.is_empty() {
        return Ok(None);
    }
    let chosen: Vec<&PayloadFormat> = formats
        .iter()
        .filter(|f| {
            if f.codec.is_telephone_event() {
                is_supported(f)
                    && audio
                        .iter()
                        .any(|a| a.codec.clock_rate == f.codec.clock_rate)
            } else {
                is_supported(f)
            }
        })
        .collect();
    let port = *options
        .ports
        .get(index)
        .ok_or(NegotiationError::MissingLocalPort { index })?;
    let media_line = MediaLine {
        media: offered.media_type().to_owned(),
        port,
        port_count: None,
        proto: offered.proto().to_owned(),
        formats: chosen.iter().map(|f| f.payload_type.to_string()).collect(),
    };
    let invalid = |_| NegotiationError::InvalidLocalValue;
    let mut section = MediaDescription::new(media_line).map_err(invalid)?;
    for format in &chosen {
        let rtpmap = offered.rtpmap(format.payload_type).cloned();
        let rtpmap = rtpmap.unwrap_or_else(|| format.codec.rtpmap(format.payload_type));
        section
            .push_attribute(Attribute::Rtpmap(rtpmap))
            .map_err(invalid)?;
        if let Some(fmtp) = &format.fmtp {
            section
                .push_attribute(Attribute::Fmtp(fmtp.clone()))
                .map_err(invalid)?;
        }
    }
    if let Some(ptime) = options.ptime.or_else(|| offered.ptime()) {
        section
            .push_attribute(Attribute::Ptime(ptime))
            .map_err(invalid)?;
    }
    if options.rtcp_mux && offered.rtcp_mux() {
        section
            .push_attribute(Attribute::RtcpMux)
            .map_err(invalid)?;
    }
    section.set_direction(answer_direction(offer, index, options));
    Ok(Some(section))
}

fn answer_other(
    offer: &SessionDescription,
    index: usize,
    offered: &MediaDescription,
    options: &AnswerOptions,
) -> Result<MediaDescription, NegotiationError> {
    let port = *options
        .ports
        .get(index)
        .ok_or(NegotiationError::MissingLocalPort { index })?;
    let mut media_line = offered.media_line().clone();
    media_line.port = port;
    media_line.port_count = None;
    let mut section =
        MediaDescription::new(media_line).map_err(|_| NegotiationError::InvalidLocalValue)?;
    for line in offered.lines().iter().filter(|l| l.kind() == 'a') {
        if !matches!(
            line.attribute(),
            Some(Attribute::Direction(_) | Attribute::Rtcp(_))
        ) {
            section.lines.push(line.clone());
        }
    }
    section.set_direction(answer_direction(offer, index, options));
    Ok(section)
}

/// RFC 3264 §6.1: sendonly → recvonly, recvonly → sendonly, inactive → inactive, sendrecv →
/// what we want; always narrowed by what we want. An RFC 2543 hold (`c=0.0.0.0`) counts as
/// not receiving (RFC 3264 §8.4: never send to 0.0.0.0), so it is answered like `sendonly`.
fn answer_direction(
    offer: &SessionDescription,
    index: usize,
    options: &AnswerOptions,
) -> Direction {
    let mut offered = offer.effective_direction(index).unwrap_or_default();
    if offer.is_legacy_hold(index) {
        offered = offered.intersect(Direction::SendOnly);
    }
    offered.reversed().intersect(options.direction)
}

/// `m=<media> 0 <proto> <first offered format>`, no other lines (RFC 3264 §6).
fn rejected(offered: &MediaDescription) -> Result<MediaDescription, crate::EditError> {
    let media_line = MediaLine {
        media: offered.media_type().to_owned(),
        port: 0,
        port_count: None,
        proto: offered.proto().to_owned(),
        formats: offered.formats().iter().take(1).cloned().collect(),
    };
    MediaDescription::new(media_line)
}

impl MediaDescription {
    /// Keeps only the formats whose codec is in `codecs` (and telephone-event only at the clock
    /// rate of a kept codec), dropping the `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines of the
    /// others. Non-RTP sections are left alone. When no audio codec would remain, nothing changes
    /// and `NoCommonCodec` comes back.
    pub fn restrict_to(&mut self, codecs: &[Codec]) -> Result<(), NegotiationError> {
        let Some(kept) = self.kept_formats(codecs) else {
            return Ok(());
        };
        if kept.is_empty() {
            return Err(NegotiationError::NoCommonCodec);
        }
        self.keep_formats(&kept)
    }

    /// Drops every format not in `kept` with its rtpmap/fmtp/rtcp-fb lines; untouched (byte
    /// for byte) when nothing is dropped.
    fn keep_formats(&mut self, kept: &[u8]) -> Result<(), NegotiationError> {
        let keep = |f: &str| f.parse::<u8>().is_ok_and(|pt| kept.contains(&pt));
        if self.formats().iter().all(|f| keep(f)) {
            return Ok(());
        }
        if !self.formats().iter().any(|f| keep(f)) {
            return Err(NegotiationError::NoCommonCodec);
        }
        self.retain_formats(keep);
        self.lines
            .retain(|line| match line.attribute().and_then(format_of) {
                Some(payload_type) => kept.contains(&payload_type),
                None => true,
            });
        Ok(())
    }

    /// The payload types `restrict_to` would keep; `None` for a non-RTP section, empty when no
    /// audio codec would remain.
    fn kept_formats(&self, codecs: &[Codec]) -> Option<Vec<u8>> {
        if !self.is_rtp() {
            return None;
        }
        // Borrowed lookups only: this runs on every offer relayed to a leg.
        let allowed: Vec<(u8, &str, u32)> = self
            .formats()
            .iter()
            .filter_map(|format| {
                let payload_type: u8 = format.parse().ok()?;
                let (encoding, clock_rate, channels) = self.resolve(payload_type)?;
                codecs
                    .iter()
                    .any(|c| c.matches_parts(encoding, clock_rate, channels))
                    .then_some((payload_type, encoding, clock_rate))
            })
            .collect();
        let is_event = |encoding: &str| encoding.eq_ignore_ascii_case("telephone-event");
        let media_rates: Vec<u32> = allowed
            .iter()
            .filter(|f| !is_event(f.1))
            .map(|f| f.2)
            .collect();
        if media_rates.is_empty() {
            return Some(Vec::new());
        }
        let kept = allowed
            .iter()
            .filter(|f| !is_event(f.1) || media_rates.contains(&f.2))
            .map(|f| f.0)
            .collect();
        Some(kept)
    }
}

/// The payload type an `a=rtpmap`, `a=fmtp` or `a=rtcp-fb` line is about (`*` is about none).
fn format_of(attribute: &Attribute) -> Option<u8> {
    match attribute {
        Attribute::Rtpmap(rtpmap) => Some(rtpmap.payload_type),
        Attribute::Fmtp(fmtp) => fmtp.format.parse().ok(),
        Attribute::Other {
            name,
            value: Some(value),
        } if ["rtcp-fb", "rtpmap", "fmtp"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n)) =>
        {
            // rtcp-fb, or an rtpmap/fmtp kept untyped by `parse_lenient`.
            let first = value.split(|b| *b == b' ').next()?;
            std::str::from_utf8(first).ok()?.parse().ok()
        }
        _ => None,
    }
}

impl SessionDescription {
    /// [`MediaDescription::restrict_to`] on every active RTP section. Sections left without a
    /// codec are disabled (port 0, RFC 3264 §8.2). When no active RTP section would keep a
    /// codec, nothing changes and `NoCommonCodec` comes back (answer 488).
    pub fn restrict_to(&mut self, codecs: &[Codec]) -> Result<(), NegotiationError> {
        let plans: Vec<Option<Vec<u8>>> = self
            .media
            .iter()
            .map(|m| {
                if m.is_rejected() {
                    None
                } else {
                    m.kept_formats(codecs)
                }
            })
            .collect();
        let any_rtp = plans.iter().any(Option::is_some);
        if any_rtp && !plans.iter().flatten().any(|kept| !kept.is_empty()) {
            return Err(NegotiationError::NoCommonCodec);
        }
        for (media, plan) in self.media.iter_mut().zip(plans) {
            match plan {
                Some(kept) if kept.is_empty() => media.set_port(0),
                Some(kept) => media.keep_formats(&kept)?,
                None => {}
            }
        }
        Ok(())
    }

    /// The codecs of the first active audio section of `self` that the first active audio
    /// section of `other` also has, in `self`'s order (empty when either has none).
    pub fn common_audio_codecs(&self, other: &SessionDescription) -> Vec<PayloadFormat> {
        fn first_audio(sdp: &SessionDescription) -> Option<&MediaDescription> {
            sdp.media()
                .iter()
                .find(|m| !m.is_rejected() && m.media_type().eq_ignore_ascii_case("audio"))
        }
        match (first_audio(self), first_audio(other)) {
            (Some(ours), Some(theirs)) => crate::codec::common_codecs(ours, theirs),
            _ => Vec::new(),
        }
    }
}
