//! The identity presented on a call towards a trunk, and anonymous calling.

use pbx_domain::E164;

/// The number (and name) a call presents to the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    /// The number: the user's DID, else the tenant's main number. `None` when the tenant
    /// has no number at all (the carrier will usually refuse such a call).
    pub number: Option<E164>,
    /// Display name (the user's name), if any.
    pub display_name: Option<String>,
    /// The caller asked not to be identified (`Privacy: id`/`header`/`user`, or an
    /// anonymous `From`).
    pub anonymous: bool,
}

/// The URI of an anonymous caller (RFC 3323 §4.1.1.3).
pub const ANONYMOUS_URI: &str = "sip:anonymous@anonymous.invalid";

impl CallerId {
    /// The `From` header value towards the trunk (without tag): the number at the carrier
    /// host, or `"Anonymous" <sip:anonymous@anonymous.invalid>` when anonymous.
    pub fn from_header(&self, carrier_host: &str) -> String {
        match (&self.number, self.anonymous) {
            (Some(number), false) => {
                let uri = format!("<sip:{}@{}>", number.as_str(), carrier_host);
                match self.display_name.as_deref() {
                    Some(name) if !name.is_empty() => format!("\"{}\" {uri}", quote(name)),
                    _ => uri,
                }
            }
            _ => format!("\"Anonymous\" <{ANONYMOUS_URI}>"),
        }
    }

    /// The `P-Asserted-Identity` value (RFC 3325) for the trusted carrier: the real
    /// number even when anonymous (carriers need it for emergency calls and billing).
    pub fn p_asserted_identity(&self, carrier_host: &str) -> Option<String> {
        self.number
            .as_ref()
            .map(|number| format!("<sip:{}@{}>", number.as_str(), carrier_host))
    }

    /// The `Remote-Party-ID` value (draft-ietf-sip-privacy-04) for carriers that take it
    /// instead of `P-Asserted-Identity`: the number, `privacy=full` when anonymous.
    pub fn remote_party_id(&self, carrier_host: &str) -> Option<String> {
        let privacy = if self.anonymous { "full" } else { "off" };
        self.number.as_ref().map(|number| {
            format!(
                "<sip:{}@{}>;party=calling;screen=yes;privacy={privacy}",
                number.as_str(),
                carrier_host
            )
        })
    }

    /// The `Privacy` header value: `id` when anonymous (RFC 3325 §9.3), else none.
    pub const fn privacy(&self) -> Option<&'static str> {
        if self.anonymous { Some("id") } else { None }
    }
}

/// Escapes a display name for a quoted string.
fn quote(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            other => vec![other],
        })
        .collect()
}

/// Whether the caller's request asks for anonymity: a `Privacy` header containing `id`,
/// `header` or `user` (not `none`), or a `From` user/host/display name of `anonymous`.
pub fn wants_privacy(
    privacy: Option<&str>,
    from_user: Option<&str>,
    from_host: Option<&str>,
    from_display: Option<&str>,
) -> bool {
    let by_header = privacy.is_some_and(|value| {
        value.split([';', ',']).map(str::trim).any(|token| {
            ["id", "header", "user"]
                .iter()
                .any(|t| token.eq_ignore_ascii_case(t))
        })
    });
    let anonymous = |value: Option<&str>| {
        value.is_some_and(|value| {
            value
                .trim()
                .trim_matches('"')
                .eq_ignore_ascii_case("anonymous")
        })
    };
    by_header
        || anonymous(from_user)
        || anonymous(from_display)
        || from_host.is_some_and(|host| host.eq_ignore_ascii_case("anonymous.invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentation_and_privacy() {
        let mut id = CallerId {
            number: Some(E164::parse("+31201234567").unwrap()),
            display_name: Some("Ann \"A\"".into()),
            anonymous: false,
        };
        assert_eq!(
            id.from_header("sip.carrier.example"),
            "\"Ann \\\"A\\\"\" <sip:+31201234567@sip.carrier.example>"
        );
        assert_eq!(id.privacy(), None);
        id.anonymous = true;
        assert_eq!(
            id.from_header("h"),
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>"
        );
        assert_eq!(id.p_asserted_identity("h").unwrap(), "<sip:+31201234567@h>");
        assert_eq!(id.privacy(), Some("id"));
        let none = CallerId {
            number: None,
            display_name: None,
            anonymous: false,
        };
        assert!(none.from_header("h").contains("anonymous.invalid"));
        assert_eq!(none.p_asserted_identity("h"), None);
        assert_eq!(none.remote_party_id("h"), None);
    }

    #[test]
    fn remote_party_id_carries_the_number_and_the_privacy() {
        let mut id = CallerId {
            number: Some(E164::parse("+31201234567").unwrap()),
            display_name: None,
            anonymous: false,
        };
        assert_eq!(
            id.remote_party_id("carrier.example").as_deref(),
            Some("<sip:+31201234567@carrier.example>;party=calling;screen=yes;privacy=off")
        );
        id.anonymous = true;
        assert_eq!(
            id.remote_party_id("carrier.example").as_deref(),
            Some("<sip:+31201234567@carrier.example>;party=calling;screen=yes;privacy=full")
        );
    }

    #[test]
    fn privacy_requests() {
        assert!(wants_privacy(Some("id"), None, None, None));
        assert!(wants_privacy(Some("header; id"), None, None, None));
        assert!(wants_privacy(Some("user"), None, None, None));
        assert!(!wants_privacy(Some("none"), None, None, None));
        assert!(wants_privacy(None, Some("anonymous"), None, None));
        assert!(wants_privacy(None, None, Some("anonymous.invalid"), None));
        assert!(wants_privacy(None, None, None, Some("\"Anonymous\"")));
        assert!(!wants_privacy(
            None,
            Some("201"),
            Some("acme.example"),
            Some("Ann")
        ));
    }
}
