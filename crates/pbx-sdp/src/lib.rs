//! Sans-IO SDP (RFC 8866 / RFC 4566) parse/print and RFC 3264 offer/answer helpers for a
//! B2BUA with anchored media.
//!
//! # The model
//!
//! A [`SessionDescription`] is a list of lines that keep their original bytes, each with a
//! typed view: `o=` ([`Origin`]), `s=`, session-level [`Line`]s (`c=` [`Connection`], `b=`
//! [`Bandwidth`], `t=` [`Timing`], `a=` [`Attribute`], and the free-text ones), then the
//! [`MediaDescription`]s (`m=` [`MediaLine`] plus their lines). Known attributes are typed
//! ([`Rtpmap`], [`Fmtp`], ptime/maxptime, [`Direction`], [`Rtcp`], rtcp-mux); every other one
//! (`a=crypto`, T.38, ICE, vendor attributes) is an [`Attribute::Other`] that stays in place.
//!
//! Printing writes each line's bytes followed by CRLF, so an unchanged CRLF description comes
//! out byte for byte; an edit regenerates only the lines it touches. Parsed lines share the
//! input buffer ([`bytes::Bytes`]), so parsing copies nothing but the typed fields.
//!
//! # Driving it in a B2BUA
//!
//! 1. Parse the offer from leg A: [`SessionDescription::parse`] (or `parse_bytes` to share a
//!    SIP body). A parse error names the condition and the line: answer 400 (or 488).
//!    [`SessionDescription::parse_lenient`] is the policy valve for peers that send a malformed
//!    known attribute (e.g. `a=rtpmap:31 LPC`): the line is kept untyped and reported.
//! 2. Offer to leg B: clone it, [`SessionDescription::restrict_to`] the codecs the tenant allows
//!    (`Err` maps to 488 via [`NegotiationError::sip_status`]), point it at our relay with
//!    [`SessionDescription::rewrite_connection`] and [`SessionDescription::set_media_port`], and
//!    stamp the B-leg origin with [`LegOrigin::stamp`] (raises the `o=` version when the body
//!    changed, as RFC 3264 §8 asks for re-offers).
//! 3. When B answers, [`SessionDescription::common_audio_codecs`] tells what both sides share;
//!    answer A with [`negotiate_answer`] (offer order, the offer's payload types,
//!    telephone-event matched by clock rate, direction per RFC 3264 §6.1, rejected streams as
//!    port 0) or by rewriting B's answer the same way as in step 2.
//! 4. Re-INVITEs: [`SessionDescription::is_hold`] recognises `sendonly`/`inactive` and the
//!    RFC 2543 `c=0.0.0.0` style; [`SessionDescription::set_direction`] relays the hold.
//!
//! Nothing here reads a clock, opens a socket or spawns: bytes in, values and bytes out.
//!
//! ```
//! use std::net::IpAddr;
//! use pbx_sdp::{AnswerOptions, Codec, LegOrigin, Origin, SessionDescription, negotiate_answer};
//!
//! let offer = SessionDescription::parse(
//!     b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
//!       m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
//! )?;
//! let relay: IpAddr = "203.0.113.1".parse()?;
//!
//! // Towards leg B: our codecs only, our relay address and port, the B-leg origin.
//! let mut to_b = offer.clone();
//! to_b.restrict_to(&[Codec::PCMU, Codec::TELEPHONE_EVENT])?;
//! to_b.rewrite_connection(relay);
//! to_b.set_media_port(0, 30002)?;
//! let mut b_origin = LegOrigin::new("cloudpbx", 42, 1, relay);
//! b_origin.stamp(&mut to_b)?;
//! assert_eq!(to_b.media()[0].formats(), ["0", "101"]);
//!
//! // Back to leg A: an RFC 3264 answer in A's payload types.
//! let options = AnswerOptions::new(Origin::new("cloudpbx", 7, 1, relay), relay, vec![30000]);
//! let answer = negotiate_answer(&offer, &[Codec::PCMU, Codec::TELEPHONE_EVENT], &options)?;
//! assert_eq!(answer.media()[0].formats(), ["0", "101"]);
//! assert!(answer.to_string().contains("c=IN IP4 203.0.113.1\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why our own model and not `rtc-sdp`
//!
//! DEPENDENCIES.md lists `rtc-sdp` (webrtc-rs) as a candidate, and it does keep unknown
//! attributes as key/value pairs. A B2BUA rewrites SDP on every leg of every call, and what it
//! must never damage is what it does not understand. From reading the webrtc-rs SDP source:
//! its model is WebRTC-shaped and printing re-serialises every line from the structs (spacing
//! and anything not modelled are normalised, not kept byte for byte), it works on `String`s
//! (a Latin-1 `s=` from an old PBX is an error, not bytes to carry through), and its errors are
//! catch-alls such as `SdpInvalidSyntax(String)` with no line number. We need: (1) unknown and
//! untouched lines kept byte-exact and in order through an edit, (2) no panic on any input,
//! checked by a property test over random bytes, (3) errors that name the condition and the
//! line, so a 400/488 and the log can say why, and (4) speed on the call set-up path (parsing
//! shares the input buffer; printing an untouched line is a copy). A line-preserving model does
//! all four in about 3,000 lines with docs, with `bytes` and `memchr` as its only dependencies.
//!
//! # Robustness
//!
//! No `unwrap`, `expect`, indexing without a prior bounds check, or recursion on input. Input
//! above [`MAX_SDP_LEN`] is refused before any work.

mod attribute;
mod codec;
mod error;
mod fields;
mod line;
mod media;
mod negotiate;
mod origin;
mod parse;
mod session;

pub use attribute::{Attribute, Direction, Fmtp, Rtcp, Rtpmap};
pub use codec::{Codec, PayloadFormat, common_codecs};
pub use error::{EditError, NegotiationError, SdpError};
pub use fields::{AddrType, Bandwidth, Connection, ConnectionAddress, MediaLine, Origin, Timing};
pub use line::{Line, LineValue};
pub use media::MediaDescription;
pub use negotiate::{AnswerOptions, negotiate_answer};
pub use origin::LegOrigin;
pub use parse::MAX_SDP_LEN;
pub use session::SessionDescription;

#[cfg(test)]
mod tests;
