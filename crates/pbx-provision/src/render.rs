//! Rendering the brand files from minijinja templates.
//!
//! The templates ship in the repository (`crates/pbx-provision/templates/`, embedded at build
//! time). An operator overrides any of them by putting a file of the same relative name in
//! the template directory (`<data_dir>/provisioning/templates/` by default, see
//! [`load_overrides`]). Every template is compiled and rendered once against a sample phone
//! ([`Renderer::checked`]) at start, so a broken override stops the server with the
//! template's name and line instead of failing at a phone's boot.
//!
//! Overrides are picked up without a restart: [`TemplateDir`] notices a changed, added or
//! removed override file (size, mtime, inode; checked at most once per interval) and
//! [`Renderer::replace`] swaps the whole set in only if it passes the same check; a broken
//! edit keeps the previous templates serving and is reported.
//!
//! XML brands (Polycom, Snom, Grandstream, Cisco) render with XML escaping of every value;
//! Yealink's INI format has no escaping, so values there are stripped of control characters
//! (a display name cannot inject a second line). That is done for every brand when the
//! context is built ([`ConfigContext`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, value::Serde};
use pbx_domain::PhoneVendor;
use serde::Serialize;
use thiserror::Error;

use crate::locale::{LanguageSpellings, ZoneSpellings};
use crate::path::BrandFile;

/// The shipped templates: (name, source).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "yealink/common.cfg",
        include_str!("../templates/yealink/common.cfg"),
    ),
    (
        "yealink/mac.cfg",
        include_str!("../templates/yealink/mac.cfg"),
    ),
    (
        "polycom/master.cfg",
        include_str!("../templates/polycom/master.cfg"),
    ),
    (
        "polycom/common.cfg",
        include_str!("../templates/polycom/common.cfg"),
    ),
    (
        "polycom/phone.cfg",
        include_str!("../templates/polycom/phone.cfg"),
    ),
    (
        "snom/common.xml",
        include_str!("../templates/snom/common.xml"),
    ),
    ("snom/mac.xml", include_str!("../templates/snom/mac.xml")),
    (
        "grandstream/mac.xml",
        include_str!("../templates/grandstream/mac.xml"),
    ),
    ("cisco/sep.xml", include_str!("../templates/cisco/sep.xml")),
];

/// Why rendering (or loading templates) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A template does not compile or fails at render time.
    #[error("template {name}: {source}")]
    Template {
        /// The template's name.
        name: String,
        /// minijinja's error (with line).
        source: minijinja::Error,
    },
    /// An override file could not be read.
    #[error("template override {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An override file is empty (or only white space): taken for a file caught half-written,
    /// never served. Delete it to use the shipped template.
    #[error(
        "template override {path} is empty (being written?); delete it to use the shipped template"
    )]
    EmptyOverride {
        /// The file.
        path: String,
    },
    /// A per-phone file was asked for without a line (device) in the context.
    #[error("{0} needs a device")]
    NeedsDevice(&'static str),
}

/// One SIP account on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineContext {
    /// Extension (the SIP user part of the AOR).
    pub extension: String,
    /// Caller name.
    pub display_name: String,
    /// Line key / idle screen label.
    pub label: String,
    /// Digest user name.
    pub auth_username: String,
    /// Digest password (opened from the sealed copy).
    pub password: String,
    /// Digest realm.
    pub realm: String,
    /// SIP domain of the tenant (the host part of the AOR).
    pub domain: String,
}

/// SIP server the phone registers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipServer {
    /// Host name or address.
    pub host: String,
    /// Port for `transport`.
    pub port: u16,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// The TLS port (Cisco names it separately).
    pub tls_port: u16,
}

/// A codec in each brand's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodecSpelling {
    /// Name as configured (`PCMA`).
    pub name: String,
    /// RTP static payload type (Grandstream's codec order uses it).
    pub payload_type: u8,
    /// Yealink key (`pcma`).
    pub yealink: String,
    /// Polycom `voice.codecPref.<key>`.
    pub polycom: String,
    /// Snom `codec_priority_list` entry.
    pub snom: String,
    /// Cisco `preferredCodec`.
    pub cisco: String,
}

impl CodecSpelling {
    /// Spellings of a codec name (`PCMA`, `PCMU`, `G722`, `G729`, `opus`); `None` for others.
    pub fn of(name: &str) -> Option<Self> {
        let (pt, yealink, polycom, snom, cisco) = match name.to_ascii_uppercase().as_str() {
            "PCMA" | "G711A" => (8, "pcma", "G711_A", "pcma", "g711alaw"),
            "PCMU" | "G711U" => (0, "pcmu", "G711_Mu", "pcmu", "g711ulaw"),
            "G722" => (9, "g722", "G722", "g722", "g722"),
            "G729" => (18, "g729", "G729_AB", "g729", "g729a"),
            "OPUS" => (111, "opus", "OPUS", "opus", "opus"),
            _ => return None,
        };
        Some(Self {
            name: name.to_owned(),
            payload_type: pt,
            yealink: yealink.to_owned(),
            polycom: polycom.to_owned(),
            snom: snom.to_owned(),
            cisco: cisco.to_owned(),
        })
    }
}

/// Tenant identity in the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantContext {
    /// Company name.
    pub name: String,
    /// Slug (the `companyname` of the provisioning URL).
    pub slug: String,
    /// SIP domain.
    pub domain: String,
}

/// Where the phone fetches from (for files that point at other files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisioningUrls {
    /// `tftp://host/companyname`.
    pub tftp_base: String,
    /// Snom `setting_server` value for the MAC file (`{mac}` is the phone's placeholder).
    pub snom_mac_url: String,
}

/// Everything a template sees. Build it with [`ConfigContext::new`], which strips control
/// characters from every text value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigContext {
    /// Brand (`yealink`, ...).
    pub brand: String,
    /// Model of the device, or the model family of a common file.
    pub model: String,
    /// Model family named in a common file's name (`28` of `y000000000028.cfg`, `720` of
    /// `snom720.htm`); the device's model otherwise.
    pub family: String,
    /// Bare lower-case MAC (`001565aabbcc`), empty for common files.
    pub mac: String,
    /// Upper-case MAC (Snom and Cisco file names).
    pub mac_upper: String,
    /// The tenant.
    pub tenant: TenantContext,
    /// The SIP account (absent in common files).
    pub line: Option<LineContext>,
    /// The SIP server.
    pub sip: SipServer,
    /// Registration expiry the phone asks for.
    pub register_expiry_secs: u32,
    /// NAT keep-alive interval.
    pub nat_keepalive_secs: u32,
    /// Codecs in preference order.
    pub codecs: Vec<CodecSpelling>,
    /// Time zone.
    pub time_zone: ZoneSpellings,
    /// Language.
    pub language: LanguageSpellings,
    /// Re-check interval in seconds.
    pub recheck_secs: u32,
    /// Re-check interval in minutes.
    pub recheck_minutes: u32,
    /// Provisioning URLs.
    pub provisioning: ProvisioningUrls,
}

/// The inputs of a context, before cleaning.
#[derive(Debug, Clone)]
pub struct ContextParts {
    /// Brand.
    pub vendor: PhoneVendor,
    /// Device model (or the family of a common file).
    pub model: String,
    /// Model family from the file name.
    pub family: String,
    /// Bare MAC, empty for common files.
    pub mac: String,
    /// Tenant.
    pub tenant: TenantContext,
    /// Line.
    pub line: Option<LineContext>,
    /// SIP server.
    pub sip: SipServer,
    /// Registration expiry.
    pub register_expiry_secs: u32,
    /// NAT keep-alive.
    pub nat_keepalive_secs: u32,
    /// Codec names in order (unknown names are left out).
    pub codecs: Vec<String>,
    /// Time zone (already validated).
    pub time_zone: ZoneSpellings,
    /// Language (already validated).
    pub language: LanguageSpellings,
    /// Re-check interval.
    pub recheck_secs: u32,
    /// Provisioning base URL (`tftp://host/slug`).
    pub tftp_base: String,
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl ConfigContext {
    /// Builds the context from its parts, removing control characters from all texts.
    pub fn new(parts: ContextParts) -> Self {
        let line = parts.line.map(|line| LineContext {
            extension: clean(&line.extension),
            display_name: clean(&line.display_name),
            label: clean(&line.label),
            auth_username: clean(&line.auth_username),
            password: clean(&line.password),
            realm: clean(&line.realm),
            domain: clean(&line.domain),
        });
        let mac = clean(&parts.mac).to_ascii_lowercase();
        let tftp_base = clean(&parts.tftp_base);
        let family = clean(&parts.family);
        Self {
            brand: parts.vendor.as_str().to_owned(),
            model: clean(&parts.model),
            mac_upper: mac.to_ascii_uppercase(),
            mac,
            tenant: TenantContext {
                name: clean(&parts.tenant.name),
                slug: clean(&parts.tenant.slug),
                domain: clean(&parts.tenant.domain),
            },
            line,
            sip: SipServer {
                host: clean(&parts.sip.host),
                ..parts.sip
            },
            register_expiry_secs: parts.register_expiry_secs,
            nat_keepalive_secs: parts.nat_keepalive_secs,
            codecs: parts
                .codecs
                .iter()
                .filter_map(|name| CodecSpelling::of(name))
                .collect(),
            time_zone: parts.time_zone,
            language: parts.language,
            recheck_secs: parts.recheck_secs,
            recheck_minutes: (parts.recheck_secs / 60).max(1),
            provisioning: ProvisioningUrls {
                snom_mac_url: format!("{tftp_base}/snom{family}-{{mac}}.htm"),
                tftp_base,
            },
            family,
        }
    }
}

impl ConfigContext {
    /// A made-up phone for the brand of `template` (by its directory name), with a line for
    /// per-phone templates: what [`Renderer::checked`] renders every template with.
    pub fn sample(template: &str) -> Self {
        let vendor = match template.split('/').next().unwrap_or_default() {
            "polycom" => PhoneVendor::Polycom,
            "snom" => PhoneVendor::Snom,
            "grandstream" => PhoneVendor::Grandstream,
            "cisco" => PhoneVendor::Cisco,
            _ => PhoneVendor::Yealink,
        };
        let line = needs_line(template).then(|| LineContext {
            extension: "201".into(),
            display_name: "Sample Phone".into(),
            label: "201".into(),
            auth_username: "sample201".into(),
            password: "sample-password".into(),
            realm: "pbx.example".into(),
            domain: "sample.pbx.example".into(),
        });
        Self::new(ContextParts {
            vendor,
            model: "T54W".into(),
            family: "28".into(),
            mac: if line.is_some() {
                "001565000001".into()
            } else {
                String::new()
            },
            tenant: TenantContext {
                name: "Sample B.V.".into(),
                slug: "sample".into(),
                domain: "sample.pbx.example".into(),
            },
            line,
            sip: SipServer {
                host: "pbx.example".into(),
                port: 5060,
                transport: "udp".into(),
                tls_port: 5061,
            },
            register_expiry_secs: 600,
            nat_keepalive_secs: 25,
            codecs: vec!["G722".into(), "PCMA".into(), "PCMU".into()],
            time_zone: ZoneSpellings {
                name: "Europe/Amsterdam".into(),
                posix: "CET-1CEST,M3.5.0,M10.5.0/3".into(),
                windows: "W. Europe Standard Time".into(),
                yealink: "Netherlands(Amsterdam)".into(),
                offset_secs: 3600,
                offset_hours: "+1".into(),
                dst: true,
            },
            language: LanguageSpellings {
                code: "en".into(),
                yealink: "English".into(),
                polycom: "English_United_Kingdom".into(),
                snom: "English".into(),
                grandstream: "en".into(),
                cisco: "English_United_States".into(),
            },
            recheck_secs: 86_400,
            tftp_base: "tftp://pbx.example/sample".into(),
        })
    }
}

/// The template a brand file renders from.
pub fn template_for(file: &BrandFile, vendor: PhoneVendor) -> Option<&'static str> {
    Some(match (file, vendor) {
        (BrandFile::YealinkCommon(_), _) => "yealink/common.cfg",
        (BrandFile::MacCfg(_), PhoneVendor::Yealink) => "yealink/mac.cfg",
        (BrandFile::MacCfg(_), PhoneVendor::Polycom) | (BrandFile::PolycomDefaultMaster, _) => {
            "polycom/master.cfg"
        }
        (BrandFile::PolycomCommon, _) => "polycom/common.cfg",
        (BrandFile::PolycomPhone(_), _) => "polycom/phone.cfg",
        (BrandFile::SnomCommon(_), _) => "snom/common.xml",
        (BrandFile::SnomMac(..), _) => "snom/mac.xml",
        (BrandFile::GrandstreamMac(_), _) => "grandstream/mac.xml",
        (BrandFile::CiscoSep(_), _) => "cisco/sep.xml",
        (BrandFile::MacCfg(_), _) => return None,
    })
}

/// Whether a template needs a device (a line) to render.
pub fn needs_line(template: &str) -> bool {
    matches!(
        template,
        "yealink/mac.cfg"
            | "polycom/phone.cfg"
            | "snom/mac.xml"
            | "grandstream/mac.xml"
            | "cisco/sep.xml"
    )
}

/// Reads every override file that names a shipped template from `dir` (a missing directory
/// means no overrides). Files with other names are ignored.
///
/// # Errors
/// [`RenderError::Io`] when a file exists but cannot be read, [`RenderError::EmptyOverride`]
/// when one is empty.
pub fn load_overrides(dir: &Path) -> Result<BTreeMap<String, String>, RenderError> {
    let mut overrides = BTreeMap::new();
    for (name, _) in TEMPLATES {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(source) if source.trim().is_empty() => {
                return Err(RenderError::EmptyOverride {
                    path: path.display().to_string(),
                });
            }
            Ok(source) => {
                tracing::info!(template = name, path = %path.display(), "provisioning template overridden");
                overrides.insert((*name).to_owned(), source);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RenderError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(overrides)
}

/// One compiled template set.
#[derive(Debug)]
struct Compiled {
    env: Environment<'static>,
    overridden: Vec<String>,
}

impl Compiled {
    fn new(overrides: &BTreeMap<String, String>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.starts_with("yealink/") {
                AutoEscape::None
            } else {
                AutoEscape::Html
            }
        });
        let mut overridden = Vec::new();
        for (name, shipped) in TEMPLATES {
            let source = match overrides.get(*name) {
                Some(source) => {
                    overridden.push((*name).to_owned());
                    source.clone()
                }
                None => (*shipped).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|source| RenderError::Template {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        Ok(Self { env, overridden })
    }

    fn render(&self, template: &str, context: &ConfigContext) -> Result<String, RenderError> {
        let err = |source| RenderError::Template {
            name: template.to_owned(),
            source,
        };
        if needs_line(template) && context.line.is_none() {
            return Err(RenderError::NeedsDevice(
                TEMPLATES
                    .iter()
                    .find(|(name, _)| *name == template)
                    .map_or("template", |(name, _)| name),
            ));
        }
        let compiled = self.env.get_template(template).map_err(err)?;
        let mut out = compiled.render(Serde(context)).map_err(err)?;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        Ok(out)
    }

    /// Renders every template against a sample phone of its brand: catches what compiles
    /// but cannot render (a misspelt value name under strict undefined behaviour).
    fn check(&self) -> Result<(), RenderError> {
        for (name, _) in TEMPLATES {
            self.render(name, &ConfigContext::sample(name))?;
        }
        Ok(())
    }
}

/// The compiled templates. Cheap to read concurrently; [`Renderer::replace`] swaps in a new
/// set atomically (renders already running finish with the old one).
#[derive(Debug)]
pub struct Renderer {
    current: RwLock<Arc<Compiled>>,
}

impl Renderer {
    /// Compiles the shipped templates, each replaced by its override if one is given.
    ///
    /// # Errors
    /// [`RenderError::Template`] naming the first template that does not compile.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Self, RenderError> {
        Ok(Self {
            current: RwLock::new(Arc::new(Compiled::new(overrides)?)),
        })
    }

    /// Like [`Renderer::new`], and every template must also render for a sample phone.
    ///
    /// # Errors
    /// [`RenderError::Template`] naming the first template that fails.
    pub fn checked(overrides: &BTreeMap<String, String>) -> Result<Self, RenderError> {
        let compiled = Compiled::new(overrides)?;
        compiled.check()?;
        Ok(Self {
            current: RwLock::new(Arc::new(compiled)),
        })
    }

    fn current(&self) -> Arc<Compiled> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The templates replaced by operator overrides.
    pub fn overridden(&self) -> Vec<String> {
        self.current().overridden.clone()
    }

    /// Replaces the whole template set with `overrides` applied, if it compiles and renders
    /// for a sample phone; otherwise the current set stays. Returns the overridden names.
    ///
    /// # Errors
    /// [`RenderError::Template`] naming the first template that fails.
    pub fn replace(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, RenderError> {
        let compiled = Compiled::new(overrides)?;
        compiled.check()?;
        let overridden = compiled.overridden.clone();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(compiled);
        Ok(overridden)
    }

    /// Renders `template` with `context`.
    ///
    /// # Errors
    /// [`RenderError`] when the template fails (for example an override that names a value
    /// the context does not have) or a per-phone template gets no line.
    pub fn render(&self, template: &str, context: &ConfigContext) -> Result<String, RenderError> {
        self.current().render(template, context)
    }
}

/// What one override file looked like: (size, mtime in ns, inode); `None` when absent or
/// unreadable.
type FileStamp = Option<(u64, u128, u64)>;

fn stamp(path: &Path) -> FileStamp {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), mtime, inode))
}

/// The outcome of a [`TemplateDir`] check.
#[derive(Debug)]
#[non_exhaustive]
pub enum TemplateReload {
    /// No override file changed since the last check.
    Unchanged,
    /// The overrides changed and the new set is live; the overridden template names.
    Reloaded(Vec<String>),
    /// The overrides changed but do not load or compile or render: the previous set stays
    /// live until the files change again.
    Failed(RenderError),
}

/// Watches the operator's override directory: [`TemplateDir::poll`] is cheap enough to call on
/// every fetch (one atomic load; at most once per `interval`, one `stat` per shipped
/// template name) and reloads the [`Renderer`] when an override file was added, changed or
/// removed. [`TemplateDir::reload`] checks at once (`SIGHUP`).
#[derive(Debug)]
pub struct TemplateDir {
    dir: PathBuf,
    /// Unix ms of the next check due; `u64::MAX` when polling is off.
    next_check_ms: AtomicU64,
    interval_ms: u64,
    /// The stamps of the last check, one per [`TEMPLATES`] entry.
    seen: Mutex<Vec<FileStamp>>,
}

impl TemplateDir {
    /// Watches `dir`, taking the files as they are now as loaded: call it before
    /// [`load_overrides`], so an edit in between is picked up at the first check.
    /// `interval` zero: only [`TemplateDir::reload`] checks.
    pub fn new(dir: &Path, interval: std::time::Duration) -> Self {
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        Self {
            dir: dir.to_owned(),
            next_check_ms: AtomicU64::new(if interval_ms == 0 { u64::MAX } else { 0 }),
            interval_ms,
            seen: Mutex::new(Self::stamps(dir)),
        }
    }

    fn stamps(dir: &Path) -> Vec<FileStamp> {
        TEMPLATES
            .iter()
            .map(|(name, _)| stamp(&dir.join(name)))
            .collect()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks the files if the interval has passed since the last check (`now_ms`: Unix ms);
    /// `None` when it was not time yet or another caller is checking.
    pub fn poll(&self, renderer: &Renderer, now_ms: u64) -> Option<TemplateReload> {
        let due = self.next_check_ms.load(Ordering::Relaxed);
        if now_ms < due {
            return None;
        }
        let next = now_ms.saturating_add(self.interval_ms);
        self.next_check_ms
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        Some(self.check(renderer, false))
    }

    /// Checks the files now; `force` reloads even when no stamp changed.
    pub fn reload(&self, renderer: &Renderer, force: bool) -> TemplateReload {
        self.check(renderer, force)
    }

    fn check(&self, renderer: &Renderer, force: bool) -> TemplateReload {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Self::stamps(&self.dir);
        if !force && now == *seen {
            return TemplateReload::Unchanged;
        }
        // Remember the stamps even when loading fails: a broken file is reported once, not at
        // every check, and the next edit is tried again.
        *seen = now;
        match load_overrides(&self.dir).and_then(|overrides| renderer.replace(&overrides)) {
            Ok(overridden) => TemplateReload::Reloaded(overridden),
            Err(error) => TemplateReload::Failed(error),
        }
    }
}
