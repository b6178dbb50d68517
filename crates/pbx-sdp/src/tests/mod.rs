//! Unit tests: one file per concern (line types, structure and edits).

mod lines;
mod structure;

use crate::*;

/// A minimal valid description with `extra` session lines and `media` appended (LF ends).
pub(super) fn sdp(session_extra: &str, media: &str) -> Result<SessionDescription, SdpError> {
    let text = format!(
        "v=0\no=- 1 2 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n{session_extra}{media}"
    );
    SessionDescription::parse(text.as_bytes())
}

pub(super) fn audio(attributes: &str) -> Result<SessionDescription, SdpError> {
    sdp("", &format!("m=audio 4000 RTP/AVP 0 8 101\n{attributes}"))
}

pub(super) fn first_attribute(attributes: &str) -> Result<Attribute, SdpError> {
    let parsed = audio(attributes)?;
    Ok(parsed.media()[0]
        .attributes()
        .next()
        .cloned()
        .expect("one attribute"))
}
