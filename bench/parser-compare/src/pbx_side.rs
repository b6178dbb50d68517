//! pbx-sip: parse, typed access, print.

use std::hint::black_box;

use bytes::Bytes;
use pbx_sip::{Message, ParseError};

/// Parse, then read the top Via (branch, sent-by), From (URI, tag), To (URI), Call-ID,
/// CSeq (number, method) and the Contact URI through pbx-sip's borrowed typed views
/// (`top_via_ref()`, `from_ref()`, ...): the same grammar and checks as the owned
/// accessors (every parameter validated, URIs fully parsed, the whole Contact list checked),
/// components returned as `&[u8]` into the message instead of `Bytes`.
///
/// `bytes` is handed over as `Bytes` without a copy, as the transport does with a received
/// datagram or a framed stream message.
///
/// # Errors
/// When pbx-sip rejects the message or one of those headers.
pub fn parse_typed(bytes: Bytes) -> Result<(), ParseError> {
    let message = Message::parse(bytes)?;
    let via = message.top_via_ref()?;
    black_box(&via.branch);
    black_box(via.sent_by());
    let from = message.from_ref()?;
    black_box(&from.uri);
    black_box(&from.tag);
    let to = message.to_ref()?;
    black_box(&to.uri);
    black_box(message.call_id_ref()?);
    let cseq = message.cseq()?;
    black_box(cseq.seq);
    black_box(&cseq.method);
    let contacts = message.contacts_ref()?;
    black_box(contacts.first().and_then(|c| c.uri()));
    Ok(())
}

/// [`parse_typed`] through the owned accessors (`top_via()`, `from()`, ...), which return
/// `Bytes` slices of the message (refcount per component) in owned structs.
///
/// # Errors
/// When pbx-sip rejects the message or one of those headers.
pub fn parse_typed_owned(bytes: Bytes) -> Result<(), ParseError> {
    let message = Message::parse(bytes)?;
    let via = message.top_via()?;
    black_box(&via.branch);
    black_box(via.sent_by());
    let from = message.from()?;
    black_box(&from.uri);
    black_box(&from.tag);
    let to = message.to()?;
    black_box(&to.uri);
    black_box(message.call_id()?);
    let cseq = message.cseq()?;
    black_box(cseq.seq);
    black_box(&cseq.method);
    let contacts = message.contacts()?;
    black_box(contacts.first().and_then(|c| c.uri()));
    Ok(())
}

/// Parse and print back to wire bytes.
///
/// # Errors
/// When pbx-sip rejects the message.
pub fn parse_print(bytes: Bytes) -> Result<Bytes, ParseError> {
    let message = Message::parse(bytes)?;
    Ok(message.to_bytes())
}
