//! Small typed headers: CSeq, Content-Type, Session-Expires, Retry-After, Reason, Event,
//! Subscription-State, Replaces.

use bytes::Bytes;

use crate::error::ValueError;
use crate::method::Method;
use crate::params::Params;
use crate::scan::{is_ws, parse_u32, slice_of, take_token, trim, trim_start};

/// `CSeq: <seq> <method>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// Sequence number (≤ 2^32-1).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    #[inline]
    pub(crate) fn parse_in(owner: &Bytes, s: &[u8]) -> Result<CSeq, ValueError> {
        let s = trim(s);
        let n = s
            .iter()
            .position(|&b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        let seq = parse_u32(&s[..n])?;
        let rest = &s[n..];
        if !rest.first().is_some_and(|&b| is_ws(b)) {
            return Err(ValueError::UnexpectedChar);
        }
        let method = Method::from_token_in(owner, trim(rest)).ok_or(ValueError::InvalidToken)?;
        Ok(CSeq { seq, method })
    }

    /// Parses a CSeq value.
    pub fn parse(value: &[u8]) -> Result<CSeq, ValueError> {
        Self::parse_in(&Bytes::copy_from_slice(value), value)
    }
}

/// `type/subtype;params` (Content-Type, Accept elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Top-level type, as received (`application`).
    pub kind: Bytes,
    /// Subtype, as received (`sdp`).
    pub subtype: Bytes,
    /// Parameters.
    pub params: Params,
}

impl MediaType {
    pub(crate) fn parse_in(owner: &Bytes, s: &[u8]) -> Result<MediaType, ValueError> {
        let s = trim(s);
        let (kind, rest) = take_token(s);
        let rest = trim_start(rest);
        if kind.is_empty() || rest.first() != Some(&b'/') {
            return Err(ValueError::InvalidToken);
        }
        let (subtype, rest) = take_token(trim_start(&rest[1..]));
        if subtype.is_empty() {
            return Err(ValueError::InvalidToken);
        }
        Params::validate(rest)?;
        Ok(MediaType {
            kind: slice_of(owner, kind),
            subtype: slice_of(owner, subtype),
            params: Params::from_raw(slice_of(owner, trim(rest))),
        })
    }

    /// Whether this is `type/subtype` (case-insensitive).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind.as_bytes())
            && self.subtype.eq_ignore_ascii_case(subtype.as_bytes())
    }
}

/// Who refreshes a session timer (RFC 4028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// `refresher=uac`.
    Uac,
    /// `refresher=uas`.
    Uas,
}

/// `Session-Expires: delta;refresher=uac` (RFC 4028).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires {
    /// Interval in seconds.
    pub delta: u32,
    /// `refresher` parameter.
    pub refresher: Option<Refresher>,
    /// All parameters.
    pub params: Params,
}

/// `Retry-After: delta [(comment)];duration=N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryAfter {
    /// Seconds.
    pub delta: u32,
    /// Comment text without parentheses.
    pub comment: Option<Bytes>,
    /// `duration` parameter.
    pub duration: Option<u32>,
    /// All parameters.
    pub params: Params,
}

/// One Reason value (RFC 3326): `SIP ;cause=487 ;text="..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Protocol token (`SIP`, `Q.850`, ...).
    pub protocol: Bytes,
    /// `cause` parameter.
    pub cause: Option<u16>,
    /// `text` parameter, quotes removed (escapes kept).
    pub text: Option<Bytes>,
    /// All parameters.
    pub params: Params,
}

/// `Event: package.template;id=...` (RFC 6665).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event package (with template), as received.
    pub package: Bytes,
    /// `id` parameter.
    pub id: Option<Bytes>,
    /// All parameters.
    pub params: Params,
}

/// `Subscription-State: active;expires=600` (RFC 6665).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// `active`, `pending`, `terminated` or an extension, as received.
    pub state: Bytes,
    /// `expires` parameter.
    pub expires: Option<u32>,
    /// `reason` parameter.
    pub reason: Option<Bytes>,
    /// `retry-after` parameter.
    pub retry_after: Option<u32>,
    /// All parameters.
    pub params: Params,
}

/// `Replaces: call-id;to-tag=..;from-tag=..;early-only` (RFC 3891).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    /// Call-ID of the dialog to replace.
    pub call_id: Bytes,
    /// `to-tag`.
    pub to_tag: Bytes,
    /// `from-tag`.
    pub from_tag: Bytes,
    /// `early-only` flag.
    pub early_only: bool,
    /// All parameters.
    pub params: Params,
}

impl Replaces {
    /// Parses a Replaces value (`call-id;to-tag=..;from-tag=..`), as found in the header or,
    /// percent-decoded, in a `Refer-To` URI's `?Replaces=` header parameter.
    pub fn parse(value: &[u8]) -> Result<Replaces, ValueError> {
        let owner = Bytes::copy_from_slice(value);
        replaces(&owner, &owner)
    }
}

/// Splits `word *(;params)` into the word and validated params.
fn word_params<'a>(owner: &Bytes, s: &'a [u8]) -> Result<(&'a [u8], Params), ValueError> {
    let s = trim(s);
    let end = crate::scan::find(b';', s).unwrap_or(s.len());
    let word = trim(&s[..end]);
    if word.is_empty() {
        return Err(ValueError::Empty);
    }
    Params::validate(&s[end..])?;
    Ok((word, Params::from_raw(slice_of(owner, &s[end..]))))
}

fn opt_u32(p: &Params, name: &str) -> Result<Option<u32>, ValueError> {
    p.value(name).map(parse_u32).transpose()
}

pub(crate) fn session_expires(owner: &Bytes, s: &[u8]) -> Result<SessionExpires, ValueError> {
    let (word, params) = word_params(owner, s)?;
    let delta = parse_u32(word)?;
    let refresher = match params.value("refresher") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case(b"uac") => Some(Refresher::Uac),
        Some(v) if v.eq_ignore_ascii_case(b"uas") => Some(Refresher::Uas),
        Some(_) => return Err(ValueError::InvalidToken),
    };
    Ok(SessionExpires {
        delta,
        refresher,
        params,
    })
}

pub(crate) fn delta_with_params(owner: &Bytes, s: &[u8]) -> Result<u32, ValueError> {
    let (word, _) = word_params(owner, s)?;
    parse_u32(word)
}

pub(crate) fn retry_after(owner: &Bytes, s: &[u8]) -> Result<RetryAfter, ValueError> {
    let s = trim(s);
    let n = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let delta = parse_u32(&s[..n])?;
    let mut rest = trim_start(&s[n..]);
    let mut comment = None;
    if rest.first() == Some(&b'(') {
        let close = crate::scan::rfind(b')', rest).ok_or(ValueError::UnexpectedChar)?;
        comment = Some(slice_of(owner, &rest[1..close]));
        rest = &rest[close + 1..];
    }
    Params::validate(rest)?;
    let params = Params::from_raw(slice_of(owner, trim(rest)));
    let duration = opt_u32(&params, "duration")?;
    Ok(RetryAfter {
        delta,
        comment,
        duration,
        params,
    })
}

pub(crate) fn reason(owner: &Bytes, s: &[u8]) -> Result<Reason, ValueError> {
    let (word, params) = word_params(owner, s)?;
    if !crate::scan::is_token_str(word) {
        return Err(ValueError::InvalidToken);
    }
    let cause = params
        .value("cause")
        .map(|v| {
            crate::scan::parse_u64(v)
                .and_then(|n| u16::try_from(n).map_err(|_| ValueError::OutOfRange))
        })
        .transpose()?;
    let text = params.value("text").map(|v| {
        let inner = if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
            &v[1..v.len() - 1]
        } else {
            v
        };
        slice_of(owner, inner)
    });
    Ok(Reason {
        protocol: slice_of(owner, word),
        cause,
        text,
        params,
    })
}

pub(crate) fn event(owner: &Bytes, s: &[u8]) -> Result<Event, ValueError> {
    let (word, params) = word_params(owner, s)?;
    if !crate::scan::is_token_str(word) {
        return Err(ValueError::InvalidToken);
    }
    let id = params.value_bytes("id");
    Ok(Event {
        package: slice_of(owner, word),
        id,
        params,
    })
}

pub(crate) fn subscription_state(owner: &Bytes, s: &[u8]) -> Result<SubscriptionState, ValueError> {
    let (word, params) = word_params(owner, s)?;
    if !crate::scan::is_token_str(word) {
        return Err(ValueError::InvalidToken);
    }
    Ok(SubscriptionState {
        state: slice_of(owner, word),
        expires: opt_u32(&params, "expires")?,
        reason: params.value_bytes("reason"),
        retry_after: opt_u32(&params, "retry-after")?,
        params,
    })
}

pub(crate) fn replaces(owner: &Bytes, s: &[u8]) -> Result<Replaces, ValueError> {
    let (word, params) = word_params(owner, s)?;
    let to_tag = params
        .value_bytes("to-tag")
        .ok_or(ValueError::MissingParam)?;
    let from_tag = params
        .value_bytes("from-tag")
        .ok_or(ValueError::MissingParam)?;
    Ok(Replaces {
        call_id: slice_of(owner, word),
        to_tag,
        from_tag,
        early_only: params.contains("early-only"),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn cseq() {
        assert_eq!(
            CSeq::parse(b"0009 INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert_eq!(CSeq::parse(b"0009\r\n  INVITE").unwrap().seq, 9);
        assert!(CSeq::parse(b"36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse(b"1INVITE").is_err());
        assert!(CSeq::parse(b"1 INV ITE").is_err());
        assert!(matches!(
            CSeq::parse(b"1 invite").unwrap().method,
            Method::Extension(_)
        ));
    }

    #[test]
    fn media_type() {
        let o = b("application/sdp ; charset=utf-8");
        let m = MediaType::parse_in(&o, &o).unwrap();
        assert!(m.is("Application", "SDP"));
        assert_eq!(m.params.value("charset"), Some(&b"utf-8"[..]));
        let o = b("application");
        assert!(MediaType::parse_in(&o, &o).is_err());
    }

    #[test]
    fn session_timer() {
        let o = b("1800;refresher=uac");
        let se = session_expires(&o, &o).unwrap();
        assert_eq!((se.delta, se.refresher), (1800, Some(Refresher::Uac)));
        let o = b("90;lr");
        assert_eq!(delta_with_params(&o, &o).unwrap(), 90);
        let o = b("1800;refresher=both");
        assert!(session_expires(&o, &o).is_err());
    }

    #[test]
    fn retry_after_forms() {
        let o = b("120 (I'm in a meeting);duration=3600");
        let r = retry_after(&o, &o).unwrap();
        assert_eq!(r.delta, 120);
        assert_eq!(r.comment.as_deref(), Some(&b"I'm in a meeting"[..]));
        assert_eq!(r.duration, Some(3600));
        let o = b("18446744073709551616");
        assert!(retry_after(&o, &o).is_err());
    }

    #[test]
    fn reason_event_state_replaces() {
        let o = b("Q.850 ;cause=16 ;text=\"Terminated\"");
        let r = reason(&o, &o).unwrap();
        assert_eq!(
            (&r.protocol[..], r.cause, r.text.as_deref()),
            (&b"Q.850"[..], Some(16), Some(&b"Terminated"[..]))
        );
        let o = b("presence;id=7");
        let e = event(&o, &o).unwrap();
        assert_eq!(
            (&e.package[..], e.id.as_deref()),
            (&b"presence"[..], Some(&b"7"[..]))
        );
        let o = b("terminated;reason=timeout;retry-after=30");
        let s = subscription_state(&o, &o).unwrap();
        assert_eq!(s.reason.as_deref(), Some(&b"timeout"[..]));
        assert_eq!(s.retry_after, Some(30));
        let o = b("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff;early-only");
        let rp = replaces(&o, &o).unwrap();
        assert_eq!(&rp.call_id[..], b"98732@sip.example.com");
        assert_eq!(&rp.to_tag[..], b"ff87ff");
        assert!(rp.early_only);
        let o = b("abc;to-tag=1");
        assert!(replaces(&o, &o).is_err());
    }
}
