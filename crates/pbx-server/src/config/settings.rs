//! Stage 2: the validated runtime settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, FileConfig};

/// RFC 3261 protocol timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTimers {
    /// T1: round-trip estimate.
    pub t1: Duration,
    /// T2: cap of the non-INVITE retransmission interval.
    pub t2: Duration,
    /// T4: time a message may linger in the network.
    pub t4: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable key/value lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Data directory (created on start).
    pub data_dir: PathBuf,
    /// Database URL (SQLite file in the data directory unless configured).
    pub database_url: String,
    /// Pooled connections.
    pub database_max_connections: u32,
    /// SIP over UDP.
    pub sip_udp: Vec<SocketAddr>,
    /// SIP over TCP.
    pub sip_tcp: Vec<SocketAddr>,
    /// SIP over TLS.
    pub sip_tls: Vec<SocketAddr>,
    /// TLS certificate and key (PEM); `None`: generate a self-signed one in the data directory.
    pub tls_identity: Option<(PathBuf, PathBuf)>,
    /// Digest realm.
    pub realm: String,
    /// Host the platform names itself by in SIP (empty: the listener's address).
    pub public_host: String,
    /// Protocol timers.
    pub timers: SipTimers,
    /// Transaction ceiling.
    pub max_transactions: u32,
    /// Connections per source address.
    pub max_connections_per_source: u32,
    /// Idle TCP/TLS connection timeout.
    pub connection_idle_timeout: Duration,
    /// Largest SIP message.
    pub max_message_bytes: usize,
    /// Digest algorithms challenged with, most preferred first.
    pub digest_algorithms: Vec<pbx_sip_auth::Algorithm>,
    /// Registration expiry bounds: (min, default, max).
    pub register_expiry: (Duration, Duration, Duration),
    /// NAT keep-alive ping interval.
    pub nat_keepalive_interval: Duration,
    /// Write-back delay of plain registration refreshes (`registrar.refresh_write_back_ms`).
    pub refresh_write_back: Duration,
    /// Contacts per user.
    pub max_contacts_per_user: u32,
    /// HTTP API listener.
    pub http: SocketAddr,
    /// TFTP listener and unprivileged fallback port (0: none).
    pub tftp: (SocketAddr, u16),
    /// Phone provisioning.
    pub provisioning: crate::provisioning::ProvisioningSettings,
    /// RTP port range, inclusive.
    pub rtp_ports: (u16, u16),
    /// Log filter.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Fraud and abuse guard.
    pub security: crate::guard::SecuritySettings,
    /// Call handling.
    pub calls: crate::calls::CallSettings,
    /// Carrier host resolution.
    pub dns: crate::dns::DnsSettings,
}

impl Settings {
    /// Validates a merged file configuration.
    pub fn from_file_config(file: FileConfig) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(&file.data_dir);
        if file.data_dir.trim().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        let database_url = if file.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("cloudpbx.db").display()
            )
        } else if file.database.url.starts_with("sqlite:")
            || file.database.url.starts_with("postgres://")
            || file.database.url.starts_with("postgresql://")
        {
            file.database.url.clone()
        } else {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with sqlite: or postgres:// (or be empty for the built-in SQLite file)",
            ));
        };
        let database_max_connections = match file.database.max_connections {
            0 => 8,
            n => n,
        };

        let sip = &file.sip;
        let tls_identity = match (sip.tls_cert_path.is_empty(), sip.tls_key_path.is_empty()) {
            (true, true) => None,
            (false, false) => Some((
                PathBuf::from(&sip.tls_cert_path),
                PathBuf::from(&sip.tls_key_path),
            )),
            (false, true) => {
                return Err(ConfigError::invalid(
                    "sip.tls_key_path",
                    "set together with tls_cert_path",
                ));
            }
            (true, false) => {
                return Err(ConfigError::invalid(
                    "sip.tls_cert_path",
                    "set together with tls_key_path",
                ));
            }
        };
        if sip.realm.trim().is_empty() || sip.realm.contains('"') {
            return Err(ConfigError::invalid(
                "sip.realm",
                "must be non-empty and contain no quote",
            ));
        }
        let t1 = positive_ms("sip.t1_ms", sip.t1_ms)?;
        let t2 = positive_ms("sip.t2_ms", sip.t2_ms)?;
        let t4 = positive_ms("sip.t4_ms", sip.t4_ms)?;
        if t2 < t1 {
            return Err(ConfigError::invalid(
                "sip.t2_ms",
                "must not be below sip.t1_ms",
            ));
        }
        let mut digest_algorithms = Vec::new();
        for name in &sip.digest_algorithms {
            match pbx_sip_auth::Algorithm::from_name(name) {
                Some(
                    algorithm @ (pbx_sip_auth::Algorithm::Md5 | pbx_sip_auth::Algorithm::Sha256),
                ) if !digest_algorithms.contains(&algorithm) => {
                    digest_algorithms.push(algorithm);
                }
                _ => {
                    return Err(ConfigError::invalid(
                        "sip.digest_algorithms",
                        format!("`{name}`: use \"SHA-256\" and/or \"MD5\", each once"),
                    ));
                }
            }
        }
        if digest_algorithms.is_empty() {
            return Err(ConfigError::invalid(
                "sip.digest_algorithms",
                "must name at least one algorithm",
            ));
        }
        if sip.max_message_bytes < 1_500 {
            return Err(ConfigError::invalid(
                "sip.max_message_bytes",
                "must be at least 1500",
            ));
        }
        if sip.max_transactions == 0 {
            return Err(ConfigError::invalid(
                "sip.max_transactions",
                "must be positive",
            ));
        }
        if sip.max_connections_per_source == 0 {
            return Err(ConfigError::invalid(
                "sip.max_connections_per_source",
                "must be positive",
            ));
        }

        let registrar = &file.registrar;
        let (min, default, max) = (
            registrar.min_expiry_secs,
            registrar.default_expiry_secs,
            registrar.max_expiry_secs,
        );
        if min == 0 {
            return Err(ConfigError::invalid(
                "registrar.min_expiry_secs",
                "must be positive",
            ));
        }
        if default < min || default > max {
            return Err(ConfigError::invalid(
                "registrar.default_expiry_secs",
                format!("must lie between min_expiry_secs ({min}) and max_expiry_secs ({max})"),
            ));
        }
        if registrar.nat_keepalive_interval_secs == 0 || registrar.nat_keepalive_interval_secs > 300
        {
            return Err(ConfigError::invalid(
                "registrar.nat_keepalive_interval_secs",
                "must be between 1 and 300",
            ));
        }
        if registrar.refresh_write_back_ms > 300_000 {
            return Err(ConfigError::invalid(
                "registrar.refresh_write_back_ms",
                "must be at most 300000 (5 minutes)",
            ));
        }
        if registrar.max_contacts_per_user == 0 {
            return Err(ConfigError::invalid(
                "registrar.max_contacts_per_user",
                "must be positive",
            ));
        }

        let (port_min, port_max) = (file.rtp.port_min, file.rtp.port_max);
        if port_min < 1024 || port_min % 2 != 0 || port_max <= port_min {
            return Err(ConfigError::invalid(
                "rtp.port_min",
                "must be even, at least 1024 and below rtp.port_max",
            ));
        }
        let log_format = match file.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "log.format",
                    format!("`{other}`: use text or json"),
                ));
            }
        };

        Ok(Self {
            data_dir,
            database_url,
            database_max_connections,
            sip_udp: addresses("sip.udp_listen", &sip.udp_listen)?,
            sip_tcp: addresses("sip.tcp_listen", &sip.tcp_listen)?,
            sip_tls: addresses("sip.tls_listen", &sip.tls_listen)?,
            tls_identity,
            realm: sip.realm.clone(),
            public_host: sip.public_host.clone(),
            timers: SipTimers { t1, t2, t4 },
            max_transactions: sip.max_transactions,
            max_connections_per_source: sip.max_connections_per_source,
            connection_idle_timeout: Duration::from_secs(sip.connection_idle_timeout_secs.max(1)),
            max_message_bytes: sip.max_message_bytes as usize,
            digest_algorithms,
            register_expiry: (secs(min), secs(default), secs(max)),
            nat_keepalive_interval: secs(registrar.nat_keepalive_interval_secs),
            refresh_write_back: Duration::from_millis(registrar.refresh_write_back_ms),
            max_contacts_per_user: registrar.max_contacts_per_user,
            http: address("http.listen", &file.http.listen)?,
            tftp: (
                address("tftp.listen", &file.tftp.listen)?,
                file.tftp.fallback_port,
            ),
            provisioning: file.provisioning.validate(
                std::path::Path::new(&file.data_dir),
                address("http.listen", &file.http.listen)?,
            )?,
            rtp_ports: (port_min, port_max),
            log_filter: file.log.filter.clone(),
            log_format,
            security: file.security.validate()?,
            calls: file.calls.validate()?,
            dns: file.dns.validate()?,
        })
    }
}

fn secs(value: u32) -> Duration {
    Duration::from_secs(u64::from(value))
}

fn positive_ms(key: &str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 || value > 3_600_000 {
        return Err(ConfigError::invalid(
            key,
            "must be between 1 and 3600000 milliseconds",
        ));
    }
    Ok(Duration::from_millis(value))
}

fn address(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim().parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("`{text}` is not an ip:port address (IPv6 as [::1]:5060)"),
        )
    })
}

fn addresses(key: &str, texts: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        let addr = address(key, text)?;
        if out.contains(&addr) {
            return Err(ConfigError::invalid(
                key,
                format!("`{text}` is listed twice"),
            ));
        }
        out.push(addr);
    }
    Ok(out)
}
