//! The configuration file schema: what an operator writes in `cloudpbx.toml`.
//!
//! Every section rejects unknown keys and every option name carries its unit. Defaults are the
//! safe defaults `cloudpbx serve` runs with when no file is given. Validation into runtime types
//! happens in [`super::Settings::from_file_config`].

use serde::{Deserialize, Serialize};

/// The whole file, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Directory for the SQLite database, generated TLS certificate, recordings and state.
    pub data_dir: String,
    /// Where the data lives.
    pub database: DatabaseSection,
    /// SIP listeners and protocol timers.
    pub sip: SipSection,
    /// Registrar behaviour.
    pub registrar: RegistrarSection,
    /// HTTP management API and portal.
    pub http: HttpSection,
    /// TFTP provisioning server.
    pub tftp: TftpSection,
    /// Phone provisioning (templates, HTTPS, defaults written into config files).
    pub provisioning: crate::provisioning::ProvisioningSection,
    /// Media relay.
    pub rtp: RtpSection,
    /// Logging.
    pub log: LogSection,
    /// Fraud and abuse guard (bans, flood limits, webhook).
    pub security: crate::guard::SecuritySection,
    /// Call handling (ring timeout, session timers, media relay addresses).
    pub calls: crate::calls::CallsSection,
    /// Resolution of carrier (trunk) host names: name servers, TTL bounds.
    pub dns: crate::dns::DnsSection,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            database: DatabaseSection::default(),
            sip: SipSection::default(),
            registrar: RegistrarSection::default(),
            http: HttpSection::default(),
            tftp: TftpSection::default(),
            provisioning: crate::provisioning::ProvisioningSection::default(),
            rtp: RtpSection::default(),
            log: LogSection::default(),
            security: crate::guard::SecuritySection::default(),
            calls: crate::calls::CallsSection::default(),
            dns: crate::dns::DnsSection::default(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite://…` or `postgres://…`. Empty: an SQLite file `cloudpbx.db` in `data_dir`.
    pub url: String,
    /// Largest number of pooled connections.
    pub max_connections: u32,
}

/// `[sip]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSection {
    /// UDP listen addresses (`ip:port`, IPv6 as `[::]:5060`).
    pub udp_listen: Vec<String>,
    /// TCP listen addresses.
    pub tcp_listen: Vec<String>,
    /// TLS listen addresses.
    pub tls_listen: Vec<String>,
    /// PEM certificate chain for TLS. Empty: a self-signed certificate in `data_dir/tls/`.
    pub tls_cert_path: String,
    /// PEM private key for TLS.
    pub tls_key_path: String,
    /// Digest realm presented in challenges (one platform realm; tenants come from credentials).
    pub realm: String,
    /// Host name or address the platform puts in its own Via, Contact and Record-Route.
    pub public_host: String,
    /// RFC 3261 T1 (round-trip estimate).
    pub t1_ms: u64,
    /// RFC 3261 T2 (maximum non-INVITE retransmit interval).
    pub t2_ms: u64,
    /// RFC 3261 T4 (time a message lingers in the network).
    pub t4_ms: u64,
    /// Live transactions above which new requests are answered 503. A REGISTER over UDP
    /// keeps its transaction for Timer J (32 s) after the answer, so this caps the sustained
    /// UDP REGISTER rate near `max_transactions / 32` per second; each such transaction holds
    /// about 2.3 KB (`cargo bench -p pbx-sip-engine --bench transaction_memory`). The default
    /// 400,000 sustains ~12,500 REGISTER/s — above what one node processes, so the CPU, not
    /// this table, limits the rate — and bounds the table near 900 MiB in the worst case;
    /// lower it on a small machine (125,000: ~280 MiB, ~3,900/s).
    pub max_transactions: u32,
    /// TCP/TLS connections allowed from one source address.
    pub max_connections_per_source: u32,
    /// An idle TCP/TLS connection is closed after this long.
    pub connection_idle_timeout_secs: u64,
    /// Largest SIP message accepted.
    pub max_message_bytes: u32,
    /// Digest algorithms challenged with, in order (`"MD5"`, `"SHA-256"`). The default is
    /// MD5 alone: SIPp 3.6 and sipsak 0.9.8 answer only the first challenge and know only MD5,
    /// and baresip 1.0 (libre) fails outright when any SHA-256 challenge is present, even after
    /// an MD5 one. Every credential stores both HA1s, so `["SHA-256", "MD5"]` (RFC 8760 order)
    /// can be switched on where the phones support it, without touching a password.
    pub digest_algorithms: Vec<String>,
}

impl Default for SipSection {
    fn default() -> Self {
        Self {
            udp_listen: vec!["0.0.0.0:5060".into(), "[::]:5060".into()],
            tcp_listen: vec!["0.0.0.0:5060".into(), "[::]:5060".into()],
            tls_listen: vec!["0.0.0.0:5061".into(), "[::]:5061".into()],
            tls_cert_path: String::new(),
            tls_key_path: String::new(),
            realm: "cloudpbx".into(),
            public_host: String::new(),
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            max_transactions: 400_000,
            max_connections_per_source: 64,
            connection_idle_timeout_secs: 600,
            max_message_bytes: 65_535,
            digest_algorithms: vec!["MD5".into()],
        }
    }
}

/// `[registrar]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarSection {
    /// Shortest registration accepted (423 Interval Too Brief below it).
    pub min_expiry_secs: u32,
    /// Longest registration granted (longer requests are shortened).
    pub max_expiry_secs: u32,
    /// Registration granted when the phone asks for none.
    pub default_expiry_secs: u32,
    /// Interval of the OPTIONS pings that keep UDP NAT bindings open.
    pub nat_keepalive_interval_secs: u32,
    /// Contacts allowed per user (desk phone, apps, softphones).
    pub max_contacts_per_user: u32,
    /// How long a plain refresh (only the expiry moved on) may wait before it is written to
    /// the store, together with every other refresh of that window; new bindings, changes and
    /// removals are written at once. A crash loses at most this much of refresh extensions.
    /// A refresh is not written at all while the stored expiry still covers half of the
    /// newly granted lifetime (a phone re-registering every minute for its NAT is written
    /// about once per half expiry). 0 writes every refresh at once. At most 300,000.
    pub refresh_write_back_ms: u64,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        Self {
            min_expiry_secs: 60,
            max_expiry_secs: 3_600,
            default_expiry_secs: 600,
            nat_keepalive_interval_secs: 25,
            max_contacts_per_user: 10,
            refresh_write_back_ms: 15_000,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Management API and portal listen address.
    pub listen: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
        }
    }
}

/// `[tftp]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TftpSection {
    /// TFTP listen address (port 69 needs privileges).
    pub listen: String,
    /// Port used instead when `listen` cannot be bound for lack of privileges; 0 disables.
    pub fallback_port: u16,
}

impl Default for TftpSection {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:69".into(),
            fallback_port: 6969,
        }
    }
}

/// `[rtp]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpSection {
    /// Lowest media port (even).
    pub port_min: u16,
    /// Highest media port.
    pub port_max: u16,
}

impl Default for RtpSection {
    fn default() -> Self {
        Self {
            port_min: 10_000,
            port_max: 20_000,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `tracing` filter, e.g. `info` or `info,pbx_sip_net=debug`.
    pub filter: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: "text".into(),
        }
    }
}
