//! Carrier host resolution (RFC 3263 §4) kept in memory for the synchronous call path.
//!
//! - [`CarrierResolver`] does one resolution of a [`CarrierKey`] (a trunk's host, port and
//!   transport): an IP literal is used as it is; a host with an explicit port gets A/AAAA
//!   only; otherwise NAPTR (`SIP+D2U`, `SIP+D2T` or `SIPS+D2T`, the trunk's transport) →
//!   SRV (`_sip._udp.`, `_sip._tcp.`, `_sips._tcp.` directly when there is no NAPTR) →
//!   A/AAAA, with SRV records ordered by priority and weighted random within a priority
//!   (RFC 2782); no SRV → A/AAAA on 5060 (5061 for TLS).
//! - [`CarrierTargets`] holds the ordered targets of every carrier host the routing snapshot
//!   names. [`CarrierTargets::track`] resolves hosts it has not seen before when the
//!   snapshot loads (waiting at most twice the query timeout; a slower lookup fills in its
//!   host when it ends) and drops those no trunk names any more; the task of
//!   [`CarrierTargets::spawn_refresher`] asks again when an answer's TTL runs out, clamped to
//!   `[dns] min_ttl_secs ..= max_ttl_secs`. A failed lookup keeps the last good answer (a
//!   resolver hiccup must not make a carrier vanish) and is retried after `min_ttl_secs`.
//!   The call path reads [`CarrierTargets::targets`] without waiting.
//!
//! Trunks store a port (the API fills in 5060 when none is given), so "no explicit port" is
//! read from it: a name with the transport's default port (5060, or 5061 for TLS; 5060 also
//! for TLS, as the API's default) goes through NAPTR/SRV, any other port is explicit
//! ([`CarrierKey::of_trunk`], [`pbx_routing::explicit_port`]); the Request-URI and the
//! REGISTER URI then carry no port either.

mod resolve;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use pbx_domain::Transport;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use resolve::{CarrierResolver, DnsError, Resolution, ResolvedTarget, SrvRecord, order_srv};

use crate::config::ConfigError;

/// `[dns]`: how carrier (trunk) host names are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// Name servers to ask, in order (`ip:port`, or a bare IP for port 53; IPv6 as
    /// `[::1]:53`). Empty (the default): the name servers, search domains and options of
    /// the system's `/etc/resolv.conf`. `/etc/hosts` is read either way.
    pub servers: Vec<String>,
    /// Shortest time an answer is used before it is asked again, whatever its TTL; also the
    /// retry interval after a failed lookup (the last good answer stays in use meanwhile).
    pub min_ttl_secs: u32,
    /// Longest time an answer is used before it is asked again, whatever its TTL.
    pub max_ttl_secs: u32,
    /// How long one DNS query may take (a resolution is bounded by six of these).
    pub query_timeout_ms: u64,
}

impl Default for DnsSection {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            min_ttl_secs: 30,
            max_ttl_secs: 3_600,
            query_timeout_ms: 2_000,
        }
    }
}

impl DnsSection {
    /// Validates the section (keys named `dns.*` in errors).
    pub fn validate(&self) -> Result<DnsSettings, ConfigError> {
        let mut servers = Vec::with_capacity(self.servers.len());
        for text in &self.servers {
            let text = text.trim();
            let server = text
                .parse::<SocketAddr>()
                .ok()
                .or_else(|| {
                    text.parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "dns.servers",
                        format!("`{text}` is not an ip:port address or an IP address"),
                    )
                })?;
            if servers.contains(&server) {
                return Err(ConfigError::invalid(
                    "dns.servers",
                    format!("`{text}` is listed twice"),
                ));
            }
            servers.push(server);
        }
        if self.min_ttl_secs == 0 {
            return Err(ConfigError::invalid("dns.min_ttl_secs", "must be positive"));
        }
        if self.max_ttl_secs < self.min_ttl_secs || self.max_ttl_secs > 86_400 {
            return Err(ConfigError::invalid(
                "dns.max_ttl_secs",
                "must be at least dns.min_ttl_secs and at most 86400",
            ));
        }
        if !(100..=30_000).contains(&self.query_timeout_ms) {
            return Err(ConfigError::invalid(
                "dns.query_timeout_ms",
                "must be between 100 and 30000",
            ));
        }
        Ok(DnsSettings {
            servers,
            min_ttl: Duration::from_secs(u64::from(self.min_ttl_secs)),
            max_ttl: Duration::from_secs(u64::from(self.max_ttl_secs)),
            query_timeout: Duration::from_millis(self.query_timeout_ms),
        })
    }
}

/// The validated `[dns]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Name servers; empty: the system's.
    pub servers: Vec<SocketAddr>,
    /// Floor of the time an answer is used (and the retry interval after a failure).
    pub min_ttl: Duration,
    /// Ceiling of the time an answer is used.
    pub max_ttl: Duration,
    /// Bound of one query.
    pub query_timeout: Duration,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(3_600),
            query_timeout: Duration::from_secs(2),
        }
    }
}

/// What one trunk asks DNS for: host (lowercase, without brackets or a final dot), port when
/// explicit, transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CarrierKey {
    /// Host name or IP literal.
    pub host: String,
    /// Explicit port; `None`: NAPTR/SRV decide (RFC 3263 §4.2).
    pub port: Option<u16>,
    /// The transport towards the carrier.
    pub transport: Transport,
}

impl CarrierKey {
    /// The key of a trunk's `host`, `port` and `transport`. The port counts as not given when
    /// the host is a name and the port is 5060 (the API's default), or 5061 for TLS
    /// ([`pbx_routing::explicit_port`], which also leaves it out of the Request-URI).
    pub fn of_trunk(host: &str, port: u16, transport: Transport) -> Self {
        let host = host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        Self {
            port: pbx_routing::explicit_port(&host, port, transport),
            host,
            transport,
        }
    }

    /// The host when it is an IP literal.
    pub fn literal(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// What the API shows of one carrier host's resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierView {
    /// The targets in use, in order (the last good answer while lookups fail).
    pub targets: Vec<ResolvedTarget>,
    /// The error of the last lookup, when it failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    targets: Arc<[ResolvedTarget]>,
    refresh_at: Instant,
    last_error: Option<String>,
}

/// The resolved targets of every carrier host in use, refreshed in the background.
#[derive(Debug)]
pub struct CarrierTargets {
    resolver: CarrierResolver,
    settings: DnsSettings,
    entries: RwLock<HashMap<CarrierKey, Entry>>,
    wake: Notify,
}

impl CarrierTargets {
    /// An empty table resolving through `settings`' name servers.
    pub fn new(settings: DnsSettings) -> Arc<Self> {
        Arc::new(Self {
            resolver: CarrierResolver::new(&settings),
            settings,
            entries: RwLock::new(HashMap::new()),
            wake: Notify::new(),
        })
    }

    /// Where to send for `key`, in order: the literal itself, or the last good answer for a
    /// name (empty when it never resolved or is not tracked). Never waits.
    pub fn targets(&self, key: &CarrierKey) -> Arc<[ResolvedTarget]> {
        if let Some(ip) = key.literal() {
            let port = key.port.unwrap_or(resolve::default_port(key.transport));
            return Arc::from([ResolvedTarget {
                address: SocketAddr::new(ip, port),
                name: ip.to_string(),
            }]);
        }
        self.read()
            .get(key)
            .map_or_else(|| Arc::from([]), |entry| Arc::clone(&entry.targets))
    }

    /// The state of `key` for the API (`None`: not tracked, or an IP literal).
    pub fn view(&self, key: &CarrierKey) -> Option<CarrierView> {
        self.read().get(key).map(|entry| CarrierView {
            targets: entry.targets.to_vec(),
            last_error: entry.last_error.clone(),
        })
    }

    /// Tracks exactly the names among `keys`: the new ones are resolved now, all at once,
    /// and waited for at most twice the query timeout (a slower lookup fills its entry when
    /// it ends); those no longer named are dropped; the others stay as they are.
    pub async fn track(self: &Arc<Self>, keys: impl IntoIterator<Item = CarrierKey>) {
        let wanted: HashSet<CarrierKey> = keys
            .into_iter()
            .filter(|key| key.literal().is_none())
            .collect();
        let new: Vec<CarrierKey> = {
            let mut entries = self.write();
            entries.retain(|key, _| wanted.contains(key));
            let new: Vec<CarrierKey> = wanted
                .into_iter()
                .filter(|key| !entries.contains_key(key))
                .collect();
            for key in &new {
                // No target until the first answer; a lookup that ends after the key was
                // dropped finds no entry to fill.
                entries.insert(
                    key.clone(),
                    Entry {
                        targets: Arc::from([]),
                        refresh_at: Instant::now() + self.settings.max_ttl,
                        last_error: Some("not resolved yet".to_owned()),
                    },
                );
            }
            new
        };
        if new.is_empty() {
            return;
        }
        let mut lookups = tokio::task::JoinSet::new();
        for key in new {
            let this = Arc::clone(self);
            lookups.spawn(async move {
                let entry = this.resolve(&key, None).await;
                if let Some(slot) = this.write().get_mut(&key) {
                    *slot = entry;
                }
                this.wake.notify_one();
            });
        }
        let bound = self.settings.query_timeout.saturating_mul(2);
        let all = async { while lookups.join_next().await.is_some() {} };
        if tokio::time::timeout(bound, all).await.is_err() {
            tracing::info!(
                pending = lookups.len(),
                "carrier host lookups still running; their trunks get targets when they end"
            );
            lookups.detach_all();
        }
    }

    /// Resolves again every tracked name whose time has come (the resolver's own cache
    /// cleared first, so the servers are asked). Returns when the next one is due.
    pub async fn refresh_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let due: Vec<(CarrierKey, Entry)> = self
            .read()
            .iter()
            .filter(|(_, entry)| entry.refresh_at <= now)
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect();
        if !due.is_empty() {
            self.resolver.clear_cache();
        }
        for (key, previous) in due {
            let entry = self.resolve(&key, Some(&previous)).await;
            if let Some(slot) = self.write().get_mut(&key) {
                *slot = entry;
            }
        }
        self.read().values().map(|entry| entry.refresh_at).min()
    }

    /// Runs [`Self::refresh_due`] whenever an answer runs out, until aborted.
    pub fn spawn_refresher(self: &Arc<Self>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let next = this.refresh_due().await;
                let idle = Instant::now() + this.settings.max_ttl;
                tokio::select! {
                    () = tokio::time::sleep_until(next.unwrap_or(idle)) => {}
                    () = this.wake.notified() => {}
                }
            }
        })
    }

    /// One resolution as a table entry: the answer for its clamped TTL, or on failure the
    /// previous targets (if any) for `min_ttl`.
    async fn resolve(&self, key: &CarrierKey, previous: Option<&Entry>) -> Entry {
        let now = Instant::now();
        match self.resolver.resolve(key).await {
            Ok(resolution) => {
                let ttl = resolution
                    .ttl
                    .clamp(self.settings.min_ttl, self.settings.max_ttl);
                if previous.is_some_and(|previous| *previous.targets != *resolution.targets) {
                    tracing::info!(host = key.host, targets = ?addresses(&resolution.targets), "carrier targets changed");
                }
                Entry {
                    targets: resolution.targets.into(),
                    refresh_at: now + ttl,
                    last_error: None,
                }
            }
            Err(error) => {
                let kept = previous.map_or_else(|| Arc::from([]), |p| Arc::clone(&p.targets));
                tracing::warn!(host = key.host, %error, kept = kept.len(), retry_secs = self.settings.min_ttl.as_secs(), "carrier host lookup failed");
                Entry {
                    targets: kept,
                    refresh_at: now + self.settings.min_ttl,
                    last_error: Some(error.to_string()),
                }
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<CarrierKey, Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<CarrierKey, Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn addresses(targets: &[ResolvedTarget]) -> Vec<SocketAddr> {
    targets.iter().map(|target| target.address).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::{Settings, parse};

    fn settings(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = env
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()));
        Settings::from_file_config(parse(Some(text), "f.toml", env)?)
    }

    #[test]
    fn the_dns_section_validates_and_takes_environment_overrides() {
        let defaults = settings("", &[]).unwrap().dns;
        assert_eq!(defaults, DnsSettings::default());
        assert!(defaults.servers.is_empty(), "the system's resolv.conf");
        let text = "[dns]\nservers = [\"127.0.0.1:5353\", \"::1\"]\nmax_ttl_secs = 600\n";
        let dns = settings(text, &[("CLOUDPBX__DNS__MIN_TTL_SECS", "5")])
            .unwrap()
            .dns;
        assert_eq!(
            dns.servers,
            [
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(dns.min_ttl, Duration::from_secs(5));
        assert_eq!(dns.max_ttl, Duration::from_secs(600));
        for (text, key) in [
            ("[dns]\nservers = [\"resolver.example\"]\n", "dns.servers"),
            (
                "[dns]\nservers = [\"10.0.0.1\", \"10.0.0.1:53\"]\n",
                "dns.servers",
            ),
            ("[dns]\nmin_ttl_secs = 0\n", "dns.min_ttl_secs"),
            (
                "[dns]\nmin_ttl_secs = 60\nmax_ttl_secs = 30\n",
                "dns.max_ttl_secs",
            ),
            ("[dns]\nquery_timeout_ms = 5\n", "dns.query_timeout_ms"),
            ("[dns]\nttl = 5\n", "dns.ttl"),
        ] {
            let error = settings(text, &[]).unwrap_err();
            assert_eq!(error.key(), Some(key), "{text}: {error}");
        }
    }

    #[test]
    fn a_trunk_port_is_explicit_unless_it_is_the_default_for_a_name() {
        let key = CarrierKey::of_trunk("[2001:DB8::1]", 5060, Transport::Udp);
        assert_eq!((key.host.as_str(), key.port), ("2001:db8::1", Some(5060)));
        let key = CarrierKey::of_trunk("SIP.Carrier.Test.", 5060, Transport::Udp);
        assert_eq!((key.host.as_str(), key.port), ("sip.carrier.test", None));
        assert_eq!(
            CarrierKey::of_trunk("sip.carrier.test", 5061, Transport::Tls).port,
            None
        );
        assert_eq!(
            CarrierKey::of_trunk("sip.carrier.test", 5061, Transport::Udp).port,
            Some(5061)
        );
        assert_eq!(
            CarrierKey::of_trunk("sip.carrier.test", 5080, Transport::Tcp).port,
            Some(5080)
        );
    }
}
