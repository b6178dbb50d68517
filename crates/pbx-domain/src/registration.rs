//! Registration bindings: everything the registrar keeps about one contact of an AOR, so a
//! restarted node gets its registrations back from the store.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{BindingId, DeviceId, TenantId, UserId};
use crate::kinds::Transport;

/// RFC 8599 push notification parameters from the Contact URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushParams {
    /// `pn-provider` (`apns`, `fcm`, ...).
    pub provider: String,
    /// `pn-prid`: the device's push token.
    pub prid: String,
    /// `pn-param`, when the provider needs one (APNs topic).
    pub param: Option<String>,
}

/// The network flow a registration arrived on (RFC 5626 terms): where to send requests
/// for this contact, and which node holds the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Transport.
    pub transport: Transport,
    /// The peer's address as seen by us (after NAT): where requests go.
    pub source: SocketAddr,
    /// Our socket that received it.
    pub local: SocketAddr,
    /// The connection (TCP/TLS/WS) id on the owning node, if connection oriented.
    pub connection_id: Option<String>,
    /// The cluster node that owns the flow.
    pub node_id: String,
}

/// A binding as the registrar produces it (before the store gives it an id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    /// Owning tenant (from the authenticated credential).
    pub tenant_id: TenantId,
    /// The user (AOR owner).
    pub user_id: UserId,
    /// The device whose credential registered it, if known.
    pub device_id: Option<DeviceId>,
    /// Address of record (canonical URI text).
    pub aor: String,
    /// The Contact URI exactly as received.
    pub contact_uri: String,
    /// `+sip.instance` (RFC 5626/5627), without the angle brackets and quotes.
    pub instance_id: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// Path header values (RFC 3327), in order.
    pub path: Vec<String>,
    /// RFC 8599 push parameters.
    pub push: Option<PushParams>,
    /// When the binding expires (Unix ms).
    pub expires_at_ms: i64,
    /// The Contact's `q` value in thousandths (`q=0.5` is 500), if given.
    pub q_milli: Option<u16>,
    /// Call-ID of the REGISTER that made or refreshed it.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// User-Agent header, if sent.
    pub user_agent: Option<String>,
    /// The network flow.
    pub flow: Flow,
    /// True when a SIP ALG was detected rewriting this device's messages.
    pub sip_alg_detected: bool,
    /// What gave the ALG away.
    pub sip_alg_reason: Option<String>,
}

impl BindingRecord {
    /// Whether `self` and `other` have the same [`BindingRecord::key`], without building
    /// either string.
    pub fn same_key(&self, other: &BindingRecord) -> bool {
        match (&self.instance_id, &other.instance_id) {
            (Some(mine), Some(theirs)) => mine == theirs && self.reg_id == other.reg_id,
            (None, None) => self.contact_uri == other.contact_uri,
            _ => false,
        }
    }

    /// The key that identifies this binding within its AOR, so a refresh replaces it:
    /// `(instance, reg-id)` under RFC 5626, the instance alone under RFC 5627, and the
    /// Contact URI otherwise (RFC 3261 §10.3).
    pub fn key(&self) -> String {
        match (&self.instance_id, self.reg_id) {
            (Some(instance), Some(reg_id)) => format!("instance:{instance};reg-id:{reg_id}"),
            (Some(instance), None) => format!("instance:{instance}"),
            (None, _) => format!("contact:{}", self.contact_uri),
        }
    }

    /// Whether `self` is `previous` refreshed and nothing more: only what every REGISTER
    /// renews changed (the expiry, and the Call-ID and CSeq it came with). Contact, flow,
    /// path, instance, push parameters, q, User-Agent and ALG findings are the same. The
    /// store writer may write such a refresh back lazily (see `pbx-server`'s writer).
    pub fn is_refresh_of(&self, previous: &BindingRecord) -> bool {
        // Destructured so that a new field must be classified here.
        let BindingRecord {
            tenant_id,
            user_id,
            device_id,
            aor,
            contact_uri,
            instance_id,
            reg_id,
            path,
            push,
            expires_at_ms: _,
            q_milli,
            call_id: _,
            cseq: _,
            user_agent,
            flow,
            sip_alg_detected,
            sip_alg_reason,
        } = self;
        *tenant_id == previous.tenant_id
            && *user_id == previous.user_id
            && *device_id == previous.device_id
            && *aor == previous.aor
            && *contact_uri == previous.contact_uri
            && *instance_id == previous.instance_id
            && *reg_id == previous.reg_id
            && *path == previous.path
            && *push == previous.push
            && *q_milli == previous.q_milli
            && *user_agent == previous.user_agent
            && *flow == previous.flow
            && *sip_alg_detected == previous.sip_alg_detected
            && *sip_alg_reason == previous.sip_alg_reason
    }
}

/// A stored binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Id.
    pub id: BindingId,
    /// The registrar's data.
    pub record: BindingRecord,
    /// First registration time.
    pub created_at_ms: i64,
    /// Last refresh.
    pub updated_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_agrees_with_key() {
        let mut variants = Vec::new();
        for instance in [None, Some("urn:uuid:a"), Some("urn:uuid:b")] {
            for reg_id in [None, Some(1), Some(2)] {
                for contact in ["<sip:201@192.0.2.1:5060>", "<sip:201@192.0.2.2:5060>"] {
                    let mut r = record();
                    r.instance_id = instance.map(str::to_owned);
                    r.reg_id = reg_id;
                    r.contact_uri = contact.into();
                    variants.push(r);
                }
            }
        }
        for a in &variants {
            for b in &variants {
                assert_eq!(a.same_key(b), a.key() == b.key(), "{a:?} / {b:?}");
            }
        }
    }

    fn record() -> BindingRecord {
        BindingRecord {
            tenant_id: TenantId::from_parts(1, &[1; 10]),
            user_id: UserId::from_parts(1, &[2; 10]),
            device_id: None,
            aor: "sip:201@acme.example.com".into(),
            contact_uri: "<sip:201@192.0.2.1:5060>".into(),
            instance_id: None,
            reg_id: None,
            path: vec![],
            push: None,
            expires_at_ms: 0,
            q_milli: None,
            call_id: "c".into(),
            cseq: 1,
            user_agent: None,
            flow: Flow {
                transport: Transport::Udp,
                source: "192.0.2.1:5060".parse().unwrap(),
                local: "198.51.100.1:5060".parse().unwrap(),
                connection_id: None,
                node_id: "node-1".into(),
            },
            sip_alg_detected: false,
            sip_alg_reason: None,
        }
    }

    #[test]
    fn key_follows_outbound_gruu_and_plain_rules() {
        let mut binding = record();
        assert_eq!(binding.key(), "contact:<sip:201@192.0.2.1:5060>");
        binding.instance_id = Some("urn:uuid:00000000-0000-1000-8000-000a95a0e128".into());
        assert_eq!(
            binding.key(),
            "instance:urn:uuid:00000000-0000-1000-8000-000a95a0e128"
        );
        binding.reg_id = Some(2);
        assert!(binding.key().ends_with(";reg-id:2"));
    }

    #[test]
    fn a_refresh_changes_only_expiry_call_id_and_cseq() {
        let previous = record();
        let mut next = previous.clone();
        next.expires_at_ms = 3_600_000;
        next.call_id = "another".into();
        next.cseq = 7;
        assert!(next.is_refresh_of(&previous));
        let mut moved = next.clone();
        moved.flow.source = "192.0.2.1:40000".parse().unwrap();
        assert!(
            !moved.is_refresh_of(&previous),
            "a new NAT port is a change"
        );
        let mut alg = next.clone();
        alg.sip_alg_detected = true;
        assert!(!alg.is_refresh_of(&previous));
        let mut ua = next;
        ua.user_agent = Some("phone/2".into());
        assert!(!ua.is_refresh_of(&previous));
    }
}
