//! One RFC 3263 §4 resolution of a carrier host: NAPTR → SRV → A/AAAA with hickory-resolver,
//! and the RFC 2782 order of SRV records.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use pbx_domain::Transport;

use super::{CarrierKey, DnsSettings};

/// One place to send to, in the order of trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// The address and port.
    pub address: SocketAddr,
    /// The host name whose A/AAAA record gave the address (the SRV target, or the trunk's
    /// host); the literal itself for an IP host.
    pub name: String,
}

/// The outcome of one resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Every target, in the order to try them (SRV priority, then weighted random).
    pub targets: Vec<ResolvedTarget>,
    /// The shortest TTL of the records used (not yet clamped to the configured bounds).
    pub ttl: Duration,
}

/// Why a carrier host did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The host is neither an IP literal nor a valid DNS name.
    #[error("`{0}` is not a host name")]
    InvalidName(String),
    /// A query failed: timeout, SERVFAIL, refused, no reachable name server.
    #[error("{record_type} {name}: {reason}")]
    Query {
        /// The name asked for.
        name: String,
        /// `NAPTR`, `SRV` or `A/AAAA`.
        record_type: &'static str,
        /// The resolver's message.
        reason: String,
    },
    /// Every query was answered, but no address came out (NXDOMAIN, no records, or SRV
    /// target `.`: the service is decidedly not offered).
    #[error("{0}: no address")]
    NoAddress(String),
    /// The whole resolution took longer than its bound.
    #[error("{0}: resolution timed out")]
    TimedOut(String),
}

/// Resolves carrier hosts (RFC 3263 §4) through the configured name servers.
#[derive(Clone)]
pub struct CarrierResolver {
    /// `None`: setup failed; names do not resolve.
    resolver: Option<TokioResolver>,
    bound: Duration,
}

impl std::fmt::Debug for CarrierResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierResolver")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl CarrierResolver {
    /// A resolver asking `settings.servers`, or those of `/etc/resolv.conf` when none are
    /// configured. A system configuration that cannot be read leaves a resolver without name
    /// servers (every name fails; IP literals and `/etc/hosts` still work) and says so.
    pub fn new(settings: &DnsSettings) -> Self {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if settings.servers.is_empty() {
            match TokioResolver::builder_tokio() {
                Ok(builder) => builder,
                Err(error) => {
                    tracing::warn!(%error, "no usable /etc/resolv.conf: carrier host names will not resolve (set [dns] servers)");
                    TokioResolver::builder_with_config(
                        ResolverConfig::from_name_servers(Vec::new()),
                        provider,
                    )
                }
            }
        } else {
            let servers = settings
                .servers
                .iter()
                .map(|server| {
                    let mut config = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut config.connections {
                        connection.port = server.port();
                    }
                    config
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = settings.query_timeout;
        options.attempts = 2;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.use_hosts_file = ResolveHosts::Auto;
        let resolver = match builder.build() {
            Ok(resolver) => Some(resolver),
            Err(error) => {
                tracing::warn!(%error, "DNS resolver setup failed: carrier host names will not resolve");
                None
            }
        };
        Self {
            resolver,
            // NAPTR, SRV and a few A/AAAA queries, each bounded by the query timeout.
            bound: settings.query_timeout.saturating_mul(6),
        }
    }

    /// Forgets the resolver's own answer cache, so the next resolution asks the servers (the
    /// caller keeps answers for their TTL itself).
    pub fn clear_cache(&self) {
        if let Some(resolver) = &self.resolver {
            resolver.clear_cache();
        }
    }

    /// Resolves `key` (RFC 3263 §4.1/4.2): an IP literal is used as it is; with an explicit
    /// port only A/AAAA are asked; otherwise NAPTR records for the key's transport lead to
    /// SRV (or `_sip._udp.` / `_sip._tcp.` / `_sips._tcp.` directly when there is none),
    /// SRV targets are ordered by priority and weight (RFC 2782) and resolved to addresses;
    /// without SRV records the host's A/AAAA on 5060 (5061 for TLS).
    pub async fn resolve(&self, key: &CarrierKey) -> Result<Resolution, DnsError> {
        match tokio::time::timeout(self.bound, self.resolve_unbounded(key)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DnsError::TimedOut(key.host.clone())),
        }
    }

    async fn resolve_unbounded(&self, key: &CarrierKey) -> Result<Resolution, DnsError> {
        if let Some(ip) = key.literal() {
            let address = SocketAddr::new(ip, key.port.unwrap_or(default_port(key.transport)));
            return Ok(Resolution {
                targets: vec![ResolvedTarget {
                    address,
                    name: ip.to_string(),
                }],
                ttl: Duration::MAX,
            });
        }
        let host = fqdn(&key.host)?;
        let Some(resolver) = &self.resolver else {
            return Err(DnsError::Query {
                name: host,
                record_type: "A/AAAA",
                reason: "no DNS resolver (setup failed)".to_owned(),
            });
        };
        if let Some(port) = key.port {
            return self.addresses(&host, port).await;
        }
        let mut ttl = Duration::MAX;
        let (service, prefix) = naptr_service(key.transport);
        let mut srv_names: Vec<String> = Vec::new();
        match resolver.lookup(host.as_str(), RecordType::NAPTR).await {
            Ok(lookup) => {
                let mut records: Vec<(u16, u16, String)> = Vec::new();
                for record in lookup.answers() {
                    if let RData::NAPTR(naptr) = &record.data
                        && naptr.flags.eq_ignore_ascii_case(b"s")
                        && naptr.services.eq_ignore_ascii_case(service.as_bytes())
                    {
                        ttl = ttl.min(secs(record.ttl));
                        records.push((naptr.order, naptr.preference, naptr.replacement.to_ascii()));
                    }
                }
                records.sort_by_key(|(order, preference, _)| (*order, *preference));
                srv_names.extend(records.into_iter().map(|(_, _, name)| name));
            }
            Err(error) if error.is_no_records_found() => {}
            Err(error) => return Err(query_error(&host, "NAPTR", &error)),
        }
        if srv_names.is_empty() {
            srv_names.push(format!("{prefix}{host}"));
        }
        for srv_name in &srv_names {
            let records = match resolver.lookup(srv_name.as_str(), RecordType::SRV).await {
                Ok(lookup) => lookup,
                Err(error) if error.is_no_records_found() => continue,
                Err(error) => return Err(query_error(srv_name, "SRV", &error)),
            };
            let mut found = Vec::new();
            for record in records.answers() {
                if let RData::SRV(srv) = &record.data {
                    ttl = ttl.min(secs(record.ttl));
                    found.push(SrvRecord {
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: srv.target.to_ascii(),
                    });
                }
            }
            if found.is_empty() {
                continue;
            }
            // RFC 2782: a lone target "." means the service is not offered here.
            if found.iter().all(|record| record.target == ".") {
                return Err(DnsError::NoAddress(srv_name.clone()));
            }
            let ordered = order_srv(found, |total| rand::random_range(0..=total));
            return self.srv_addresses(srv_name, ordered, ttl).await;
        }
        let mut resolution = self.addresses(&host, default_port(key.transport)).await?;
        resolution.ttl = resolution.ttl.min(ttl);
        Ok(resolution)
    }

    /// The addresses of the SRV targets in order; a target that fails to resolve is skipped
    /// (the others still serve), unless every one fails.
    async fn srv_addresses(
        &self,
        srv_name: &str,
        ordered: Vec<SrvRecord>,
        mut ttl: Duration,
    ) -> Result<Resolution, DnsError> {
        let mut targets = Vec::new();
        let mut last_error = None;
        for record in ordered {
            if record.target == "." {
                continue;
            }
            match self.addresses(&record.target, record.port).await {
                Ok(resolution) => {
                    ttl = ttl.min(resolution.ttl);
                    targets.extend(resolution.targets);
                }
                Err(error) => {
                    tracing::debug!(%error, srv = srv_name, "SRV target does not resolve");
                    last_error = Some(error);
                }
            }
        }
        if targets.is_empty() {
            return Err(last_error.unwrap_or_else(|| DnsError::NoAddress(srv_name.to_owned())));
        }
        Ok(Resolution { targets, ttl })
    }

    /// A/AAAA of `name` on `port` (IPv4 first).
    async fn addresses(&self, name: &str, port: u16) -> Result<Resolution, DnsError> {
        let Some(resolver) = &self.resolver else {
            return Err(DnsError::NoAddress(name.to_owned()));
        };
        let lookup = match resolver.lookup_ip(name).await {
            Ok(lookup) => lookup,
            Err(error) if error.is_no_records_found() => {
                return Err(DnsError::NoAddress(name.to_owned()));
            }
            Err(error) => return Err(query_error(name, "A/AAAA", &error)),
        };
        let ttl = lookup
            .as_lookup()
            .answers()
            .iter()
            .map(|record| secs(record.ttl))
            .min()
            .unwrap_or(Duration::MAX);
        let mut addresses: Vec<IpAddr> = lookup.iter().collect();
        addresses.sort_by_key(IpAddr::is_ipv6);
        addresses.dedup();
        if addresses.is_empty() {
            return Err(DnsError::NoAddress(name.to_owned()));
        }
        let shown = name.trim_end_matches('.').to_owned();
        Ok(Resolution {
            targets: addresses
                .into_iter()
                .map(|ip| ResolvedTarget {
                    address: SocketAddr::new(ip, port),
                    name: shown.clone(),
                })
                .collect(),
            ttl,
        })
    }
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Share of the selections within a priority.
    pub weight: u16,
    /// Port of the service on the target.
    pub port: u16,
    /// Host name of the target (`.`: no service).
    pub target: String,
}

/// Orders SRV records as RFC 2782 asks: by priority, and within one priority by repeated
/// weighted random selection (zero-weight records first in the list, so they are picked only
/// by a roll of 0 or when nothing else is left). `roll(total)` returns a number in
/// `0..=total`.
pub fn order_srv(mut records: Vec<SrvRecord>, mut roll: impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    records.sort_by_key(|record| (record.priority, record.weight != 0));
    let mut ordered = Vec::with_capacity(records.len());
    while let Some(first) = records.first() {
        let priority = first.priority;
        let end = records
            .iter()
            .position(|record| record.priority != priority)
            .unwrap_or(records.len());
        let mut group: Vec<SrvRecord> = records.drain(..end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|record| u32::from(record.weight)).sum();
            let pick = roll(total).min(total);
            let mut running = 0u32;
            let mut chosen = group.len() - 1;
            for (index, record) in group.iter().enumerate() {
                running += u32::from(record.weight);
                if running >= pick {
                    chosen = index;
                    break;
                }
            }
            ordered.push(group.remove(chosen));
        }
    }
    ordered
}

/// 5060, or 5061 for TLS (RFC 3263 §4.2).
pub(super) fn default_port(transport: Transport) -> u16 {
    if transport == Transport::Tls {
        5061
    } else {
        5060
    }
}

/// The NAPTR service and SRV prefix of a transport (RFC 3263 §4.1, RFC 3261 §19.1.2).
fn naptr_service(transport: Transport) -> (&'static str, &'static str) {
    match transport {
        Transport::Tcp => ("SIP+D2T", "_sip._tcp."),
        Transport::Tls => ("SIPS+D2T", "_sips._tcp."),
        _ => ("SIP+D2U", "_sip._udp."),
    }
}

/// The host as a fully qualified name (no search domains appended).
fn fqdn(host: &str) -> Result<String, DnsError> {
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .filter(|label| !label.is_empty())
            .all(|label| {
                label.len() <= 63
                    && label
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
            });
    if !valid {
        return Err(DnsError::InvalidName(host.to_owned()));
    }
    Ok(if host.ends_with('.') {
        host.to_owned()
    } else {
        format!("{host}.")
    })
}

fn secs(ttl: u32) -> Duration {
    Duration::from_secs(u64::from(ttl))
}

fn query_error(name: &str, record_type: &'static str, error: &NetError) -> DnsError {
    DnsError::Query {
        name: name.to_owned(),
        record_type,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5060,
            target: target.to_owned(),
        }
    }

    fn targets(records: &[SrvRecord]) -> Vec<&str> {
        records
            .iter()
            .map(|record| record.target.as_str())
            .collect()
    }

    #[test]
    fn srv_records_are_ordered_by_priority_first() {
        let records = vec![
            record(20, 100, "c"),
            record(10, 0, "a"),
            record(30, 5, "d"),
            record(10, 0, "b"),
        ];
        // Whatever the rolls, priority 10 comes before 20 before 30.
        for roll in [0, 1, u32::MAX] {
            let ordered = order_srv(records.clone(), |_| roll);
            let names = targets(&ordered);
            assert_eq!(names[2..], ["c", "d"], "roll {roll}");
            assert!(names[..2].contains(&"a") && names[..2].contains(&"b"));
        }
    }

    #[test]
    fn srv_weights_share_the_first_place_as_rfc_2782_says() {
        let records = vec![record(10, 90, "heavy"), record(10, 10, "light")];
        // Rolls 1..=90 pick the heavy record, 91..=100 the light one.
        assert_eq!(
            targets(&order_srv(records.clone(), |_| 90)),
            ["heavy", "light"]
        );
        assert_eq!(
            targets(&order_srv(records.clone(), |_| 91)),
            ["light", "heavy"]
        );
        // With real randomness the heavy record leads about nine times in ten.
        let heavy_first = (0..2_000)
            .filter(|_| {
                order_srv(records.clone(), |total| rand::random_range(0..=total))[0].target
                    == "heavy"
            })
            .count();
        assert!((1_600..=1_990).contains(&heavy_first), "{heavy_first}");
        // A zero-weight record is chosen first only by a roll of 0.
        let with_zero = vec![record(10, 0, "zero"), record(10, 50, "some")];
        assert_eq!(targets(&order_srv(with_zero.clone(), |_| 0))[0], "zero");
        assert_eq!(targets(&order_srv(with_zero, |_| 1))[0], "some");
    }

    #[test]
    fn host_names_become_fully_qualified_and_junk_is_refused() {
        assert_eq!(fqdn("sip.carrier.test").unwrap(), "sip.carrier.test.");
        assert_eq!(fqdn("sip.carrier.test.").unwrap(), "sip.carrier.test.");
        assert!(fqdn("bad host").is_err());
        assert!(fqdn("").is_err());
        assert_eq!(naptr_service(Transport::Tls), ("SIPS+D2T", "_sips._tcp."));
        assert_eq!(default_port(Transport::Tls), 5061);
        assert_eq!(default_port(Transport::Udp), 5060);
    }
}
