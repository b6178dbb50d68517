//! Reading a REGISTER: Call-ID, CSeq, Contacts with their expiry, Path, option tags.

use bytes::Bytes;
use pbx_domain::PushParams;
use pbx_sip::{Contact, ContactAddress, Request, StatusCode, Uri};

use crate::config::RegistrarConfig;

/// Longest User-Agent kept with a binding.
const MAX_USER_AGENT: usize = 256;

/// A REGISTER, read.
#[derive(Debug, Clone)]
pub(crate) struct RegisterRequest {
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    pub(crate) contacts: ContactSet,
    /// Path values as `<uri>;params`, top first.
    pub(crate) path: Vec<String>,
    /// The last Path URI (the first hop) carries `ob` (RFC 5626 §5.1).
    pub(crate) first_hop_ob: bool,
    pub(crate) via_count: usize,
    pub(crate) supports_path: bool,
    pub(crate) user_agent: Option<String>,
}

/// What the Contact header fields ask for.
#[derive(Debug, Clone)]
pub(crate) enum ContactSet {
    /// No Contact: list the bindings.
    Query,
    /// `*` with `Expires: 0`: remove them all.
    Wildcard,
    /// Add, refresh or remove these.
    Addresses(Vec<ContactRequest>),
}

/// One Contact value with the expiry asked for (before the min/max policy).
#[derive(Debug, Clone)]
pub(crate) struct ContactRequest {
    pub(crate) uri: Uri,
    pub(crate) uri_text: String,
    pub(crate) expires_secs: u32,
    pub(crate) instance: Option<String>,
    pub(crate) reg_id: Option<u32>,
    pub(crate) q_milli: Option<u16>,
    pub(crate) push: Option<PushParams>,
}

impl ContactRequest {
    /// RFC 5626 outbound: an instance and a reg-id.
    pub(crate) fn is_outbound(&self) -> bool {
        self.instance.is_some() && self.reg_id.is_some()
    }
}

/// Why a REGISTER cannot be processed: status and reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) status: StatusCode,
    pub(crate) phrase: &'static str,
}

const fn bad(phrase: &'static str) -> Malformed {
    Malformed {
        status: StatusCode::BAD_REQUEST,
        phrase,
    }
}

impl RegisterRequest {
    /// Reads `request`; `Err` names the 400 to answer.
    pub(crate) fn read(
        request: &Request,
        config: &RegistrarConfig,
    ) -> Result<RegisterRequest, Malformed> {
        let call_id = request.call_id().map_err(|_| bad("Bad Call-ID"))?;
        let call_id = String::from_utf8(call_id.to_vec()).map_err(|_| bad("Bad Call-ID"))?;
        let cseq = request.cseq().map_err(|_| bad("Bad CSeq"))?.seq;
        let via_count = request.via_ref().map_err(|_| bad("Bad Via"))?.len();
        let header_expires = request.expires().map_err(|_| bad("Bad Expires"))?;
        let contacts = request.contacts().map_err(|_| bad("Bad Contact"))?;
        let contacts = match contacts.as_slice() {
            [] => ContactSet::Query,
            [Contact::Wildcard] if header_expires == Some(0) => ContactSet::Wildcard,
            [Contact::Wildcard] => return Err(bad("Wildcard Contact Requires Expires 0")),
            list => {
                let default = header_expires.unwrap_or(config.default_expires_secs);
                let mut out = Vec::with_capacity(list.len());
                for contact in list {
                    let Contact::Address(address) = contact else {
                        return Err(bad("Wildcard Contact Must Be Alone"));
                    };
                    out.push(contact_request(address, default)?);
                }
                ContactSet::Addresses(out)
            }
        };
        let path_values = request.path().map_err(|_| bad("Bad Path"))?;
        let first_hop_ob = path_values
            .last()
            .and_then(|hop| hop.uri.as_sip())
            .is_some_and(|uri| uri.params.contains("ob"));
        let path = path_values
            .iter()
            .map(|hop| text(hop.to_bytes()).ok_or(bad("Bad Path")))
            .collect::<Result<Vec<_>, _>>()?;
        let supported = request.supported().map_err(|_| bad("Bad Supported"))?;
        let supports_path = supported
            .iter()
            .any(|tag| tag.eq_ignore_ascii_case(b"path"));
        let user_agent = request.user_agent().map(|agent| {
            let agent = String::from_utf8_lossy(&agent);
            agent.chars().take(MAX_USER_AGENT).collect()
        });
        Ok(RegisterRequest {
            call_id,
            cseq,
            contacts,
            path,
            first_hop_ob,
            via_count,
            supports_path,
            user_agent,
        })
    }

    /// The Contacts that use RFC 5626 outbound.
    pub(crate) fn uses_outbound(&self) -> bool {
        match &self.contacts {
            ContactSet::Addresses(list) => list.iter().any(ContactRequest::is_outbound),
            _ => false,
        }
    }
}

fn contact_request(address: &ContactAddress, default: u32) -> Result<ContactRequest, Malformed> {
    let uri = address.name_addr.uri.clone();
    if !uri.is_sip() {
        return Err(bad("Contact Must Be a SIP URI"));
    }
    let printed = uri.to_bytes();
    let uri_text = text(printed.clone()).ok_or(bad("Bad Contact"))?;
    // The parsed URI points into the received message; a binding holding it would keep the
    // whole datagram alive for its lifetime. Re-parse it from its own printed copy.
    let uri = Uri::parse(printed).unwrap_or(uri);
    let instance = match &address.instance {
        Some(raw) => {
            let inner = raw
                .strip_prefix(b"<")
                .and_then(|r| r.strip_suffix(b">"))
                .unwrap_or(raw);
            let instance = text(Bytes::copy_from_slice(inner)).ok_or(bad("Bad +sip.instance"))?;
            if instance.is_empty() || instance.contains(['<', '>', '"']) {
                return Err(bad("Bad +sip.instance"));
            }
            Some(instance)
        }
        None => None,
    };
    // RFC 5626 §6: a reg-id without an instance is ignored.
    let reg_id = address.reg_id.filter(|_| instance.is_some());
    let push = match (&address.push.provider, &address.push.prid) {
        (Some(provider), Some(prid)) => Some(PushParams {
            provider: text(provider.clone()).ok_or(bad("Bad pn-provider"))?,
            prid: text(prid.clone()).ok_or(bad("Bad pn-prid"))?,
            param: match &address.push.param {
                Some(param) => Some(text(param.clone()).ok_or(bad("Bad pn-param"))?),
                None => None,
            },
        }),
        _ => None,
    };
    Ok(ContactRequest {
        uri,
        uri_text,
        expires_secs: address.expires.unwrap_or(default),
        instance,
        reg_id,
        q_milli: address.q.map(|q| q.0),
        push,
    })
}

/// UTF-8 text without control characters (header-safe).
fn text(bytes: Bytes) -> Option<String> {
    let text = String::from_utf8(bytes.to_vec()).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}
