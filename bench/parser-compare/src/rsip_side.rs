//! rsipstack 0.7.14: parse, typed access, print.

use std::hint::black_box;

use rsipstack::sip::{
    HeadersExt, SipMessage, headers::untyped::ToTypedHeader, parser::parse_message,
};

/// Parse, then read the top Via (branch, sent-by), From (URI, tag), To (URI), Call-ID,
/// CSeq (number, method) and the Contact URI through rsipstack's typed headers.
///
/// # Errors
/// When rsipstack rejects the message or one of those headers.
pub fn parse_typed(bytes: &[u8]) -> Result<(), rsipstack::sip::Error> {
    // Requests and responses go through the same `HeadersExt` calls, on the concrete type.
    match parse_message(bytes)? {
        SipMessage::Request(request) => typed(&request),
        SipMessage::Response(response) => typed(&response),
    }
}

fn typed(message: &impl HeadersExt) -> Result<(), rsipstack::sip::Error> {
    let via = message.via_header()?.typed()?;
    black_box(via.branch());
    black_box(via.sent_by());
    let from = message.from_header()?.typed()?;
    black_box(&from.uri);
    black_box(from.tag());
    let to = message.to_header()?.typed()?;
    black_box(&to.uri);
    black_box(message.call_id_header()?.value());
    let cseq = message.cseq_header()?.typed()?;
    black_box(cseq.seq);
    black_box(&cseq.method);
    let contact = message.contact_header()?.typed()?;
    black_box(&contact.uri);
    Ok(())
}

/// Parse and print back to wire bytes.
///
/// # Errors
/// When rsipstack rejects the message.
pub fn parse_print(bytes: &[u8]) -> Result<Vec<u8>, rsipstack::sip::Error> {
    let message = parse_message(bytes)?;
    Ok(message.to_bytes())
}
