//! Header field names: the known ones (long and compact forms) and opaque others.

use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal $(, $compact:literal)?; )*) => {
        /// A header field name. Known names (matched case-insensitively, compact forms
        /// included) are variants; anything else is [`HeaderName::Other`] with the name as
        /// received. Equality of `Other` names is case-insensitive.
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = concat!("`", $canonical, "`", $(" (compact `", $compact, "`)")?)]
                $variant,
            )*
            /// Any other header, name bytes as received.
            Other(Bytes),
        }

        impl HeaderName {
            /// The canonical (long) spelling. For `Other` the raw name (lossy UTF-8 is not
            /// applied; see [`HeaderName::as_bytes`]).
            pub fn as_bytes(&self) -> &[u8] {
                match self {
                    $( HeaderName::$variant => $canonical.as_bytes(), )*
                    HeaderName::Other(raw) => raw,
                }
            }

            /// The compact form, if the header has one.
            pub fn compact(&self) -> Option<u8> {
                match self {
                    $( $( HeaderName::$variant => Some($compact.as_bytes()[0]), )? )*
                    _ => None,
                }
            }

            #[cold]
            fn known(name: &[u8]) -> Option<HeaderName> {
                if let Some(common) = Self::common(name) {
                    return Some(common);
                }
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $( $( if c == $compact.as_bytes()[0] { return Some(HeaderName::$variant); } )? )*
                    return None;
                }
                $(
                    if name.len() == $canonical.len() && eq_folded(name, $canonical.as_bytes()) {
                        return Some(HeaderName::$variant);
                    }
                )*
                None
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", "m";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    Route => "Route";
    RecordRoute => "Record-Route";
    Path => "Path";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Allow => "Allow";
    AllowEvents => "Allow-Events", "u";
    UserAgent => "User-Agent";
    Server => "Server";
    SessionExpires => "Session-Expires", "x";
    MinSe => "Min-SE";
    RetryAfter => "Retry-After";
    Reason => "Reason";
    Event => "Event", "o";
    SubscriptionState => "Subscription-State";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    Replaces => "Replaces";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    AcceptContact => "Accept-Contact", "a";
    RejectContact => "Reject-Contact", "j";
    RequestDisposition => "Request-Disposition", "d";
    AlertInfo => "Alert-Info";
    CallInfo => "Call-Info";
    ContentDisposition => "Content-Disposition";
    ContentEncoding => "Content-Encoding", "e";
    ContentLanguage => "Content-Language";
    Date => "Date";
    ErrorInfo => "Error-Info";
    InReplyTo => "In-Reply-To";
    MimeVersion => "MIME-Version";
    Organization => "Organization";
    Priority => "Priority";
    Privacy => "Privacy";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    RAck => "RAck";
    RSeq => "RSeq";
    ReplyTo => "Reply-To";
    Subject => "Subject", "s";
    Timestamp => "Timestamp";
    Warning => "Warning";
    Identity => "Identity", "y";
    IdentityInfo => "Identity-Info", "n";
    SipETag => "SIP-ETag";
    SipIfMatch => "SIP-If-Match";
    ServiceRoute => "Service-Route";
    FlowTimer => "Flow-Timer";
}

impl HeaderName {
    /// Fast path for the headers of nearly every message: one comparison each.
    #[inline]
    fn common(name: &[u8]) -> Option<HeaderName> {
        let first = name.first()? | 0x20;
        let is = |canonical: &[u8]| eq_folded(name, canonical);
        match (name.len(), first) {
            (3, b'v') if is(b"Via") => Some(HeaderName::Via),
            (4, b'f') if is(b"From") => Some(HeaderName::From),
            (2, b't') if is(b"To") => Some(HeaderName::To),
            (7, b'c') if is(b"Call-ID") => Some(HeaderName::CallId),
            (7, b'c') if is(b"Contact") => Some(HeaderName::Contact),
            (4, b'c') if is(b"CSeq") => Some(HeaderName::CSeq),
            (12, b'm') if is(b"Max-Forwards") => Some(HeaderName::MaxForwards),
            (14, b'c') if is(b"Content-Length") => Some(HeaderName::ContentLength),
            (12, b'c') if is(b"Content-Type") => Some(HeaderName::ContentType),
            (5, b'r') if is(b"Route") => Some(HeaderName::Route),
            (12, b'r') if is(b"Record-Route") => Some(HeaderName::RecordRoute),
            (5, b'a') if is(b"Allow") => Some(HeaderName::Allow),
            (9, b's') if is(b"Supported") => Some(HeaderName::Supported),
            (10, b'u') if is(b"User-Agent") => Some(HeaderName::UserAgent),
            (7, b'e') if is(b"Expires") => Some(HeaderName::Expires),
            _ => None,
        }
    }

    /// Classifies a name from the wire; unknown names are copied into `Other`.
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        if !crate::scan::is_token_str(name) {
            return HeaderName::Other(Bytes::copy_from_slice(name));
        }
        Self::known(name).unwrap_or_else(|| HeaderName::Other(Bytes::copy_from_slice(name)))
    }

    /// Classifies a name that lies inside `owner`, slicing unknown names without copying.
    #[inline]
    pub(crate) fn from_bytes_in(owner: &Bytes, name: &[u8]) -> HeaderName {
        if let Some(common) = Self::common(name) {
            return common;
        }
        Self::known(name).unwrap_or_else(|| HeaderName::Other(crate::scan::slice_of(owner, name)))
    }

    /// Whether RFC 3261 allows only one value of this header in a message.
    pub fn is_singleton(&self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::Expires
                | HeaderName::MinExpires
        )
    }
}

/// Case-insensitive comparison of a token with a canonical header name. Setting bit 5 folds
/// ASCII letters; for the other token characters the only octet that folds onto them is a
/// control or separator, which `name` cannot contain (callers pass tokens; `from_bytes`
/// checks).
#[inline]
fn eq_folded(name: &[u8], canonical: &[u8]) -> bool {
    if name.len() != canonical.len() {
        return false;
    }
    // Lengths 2..=16 (every common name): two overlapping words cover the name, no
    // octet loop.
    let n = name.len();
    let w2 = |c: &[u8], at: usize| u16::from_le_bytes([c[at], c[at + 1]]) | 0x2020;
    let w4 = |c: &[u8], at: usize| {
        u32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]) | 0x2020_2020
    };
    match n {
        2..=3 => return w2(name, 0) == w2(canonical, 0) && w2(name, n - 2) == w2(canonical, n - 2),
        4..=8 => return w4(name, 0) == w4(canonical, 0) && w4(name, n - 4) == w4(canonical, n - 4),
        _ => {}
    }
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let word = |c: &[u8]| u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
    if (9..=16).contains(&n) {
        return (word(&name[..8]) | FOLD) == (word(&canonical[..8]) | FOLD)
            && (word(&name[n - 8..]) | FOLD) == (word(&canonical[n - 8..]) | FOLD);
    }
    let mut a = name.chunks_exact(8);
    let mut b = canonical.chunks_exact(8);
    for (x, y) in a.by_ref().zip(b.by_ref()) {
        if (word(x) | FOLD) != (word(y) | FOLD) {
            return false;
        }
    }
    a.remainder()
        .iter()
        .zip(b.remainder())
        .all(|(x, y)| (x | 0x20) == (y | 0x20))
}

impl PartialEq for HeaderName {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        if let (HeaderName::Other(a), HeaderName::Other(b)) = (self, other) {
            return a.eq_ignore_ascii_case(b);
        }
        // Different variants (including Other vs known) have different discriminants.
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl Eq for HeaderName {}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            HeaderName::Other(raw) => {
                for b in raw.iter() {
                    state.write_u8(b.to_ascii_lowercase());
                }
            }
            known => std::mem::discriminant(known).hash(state),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&str> for HeaderName {
    fn from(name: &str) -> Self {
        HeaderName::from_bytes(name.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"ViA"), HeaderName::Via);
        assert_eq!(
            HeaderName::from_bytes(b"MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_bytes(b"l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"k"), HeaderName::Supported);
        assert_eq!(HeaderName::from_bytes(b"x"), HeaderName::SessionExpires);
        assert_eq!(HeaderName::CallId.as_bytes(), b"Call-ID");
        assert_eq!(HeaderName::Via.compact(), Some(b'v'));
    }

    #[test]
    fn fast_path_names_match_their_variants() {
        for (name, want) in [
            (&b"Server"[..], HeaderName::Server),
            (b"authorization", HeaderName::Authorization),
            (b"WWW-Authenticate", HeaderName::WwwAuthenticate),
            (b"Proxy-Authorization", HeaderName::ProxyAuthorization),
            (b"PROXY-AUTHENTICATE", HeaderName::ProxyAuthenticate),
            (b"Require", HeaderName::Require),
            (b"Session-Expires", HeaderName::SessionExpires),
            (b"Allow-Events", HeaderName::AllowEvents),
            (b"Reason", HeaderName::Reason),
            (b"Event", HeaderName::Event),
            (b"RSeq", HeaderName::RSeq),
            (b"RAck", HeaderName::RAck),
            (b"Accept", HeaderName::Accept),
            (b"Privacy", HeaderName::Privacy),
            (b"P-Asserted-Identity", HeaderName::PAssertedIdentity),
        ] {
            assert_eq!(HeaderName::from_bytes(name), want);
            assert_eq!(HeaderName::from_bytes_in(&Bytes::new(), name), want);
            assert!(name.eq_ignore_ascii_case(want.as_bytes()));
        }
        // Same length and initial as a fast-path name, but another header.
        assert_eq!(HeaderName::from_bytes(b"Reply-To"), HeaderName::ReplyTo);
        assert_eq!(HeaderName::from_bytes(b"Priority"), HeaderName::Priority);
        assert!(matches!(
            HeaderName::from_bytes(b"Servex"),
            HeaderName::Other(_)
        ));
    }

    #[test]
    fn other_names_compare_case_insensitively() {
        let a = HeaderName::from_bytes(b"X-Foo");
        assert_eq!(a, HeaderName::from_bytes(b"x-foo"));
        assert_ne!(a, HeaderName::Via);
        assert_eq!(
            HeaderName::from_bytes(b"C%6Fntact").as_bytes(),
            b"C%6Fntact"
        );
        assert_ne!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Contact);
    }
}
