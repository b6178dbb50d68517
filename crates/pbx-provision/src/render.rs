//! Rendering the brand files from minijinja templates.
//!
//! The templates ship in the repository (`crates/pbx-provision/templates/`, embedded at build
//! time). An operator overrides any of them by putting a file of the same relative name in
//! the template directory (`<data_dir>/provisioning/templates/` by default, see
//! [`load_overrides`]); every template is compiled at start, so a broken override stops the
//! server with the template's name and line instead of failing at a phone's boot.
//!
//! XML brands (Polycom, Snom, Grandstream, Cisco) render with XML escaping of every value;
//! Yealink's INI format has no escaping, so values there are stripped of control characters
//! (a display name cannot inject a second line). That is done for every brand when the
//! context is built ([`ConfigContext`]).

use std::collections::BTreeMap;
use std::path::Path;

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
/// means no overrides). Files with other names are ignored with a warning.
///
/// # Errors
/// [`RenderError::Io`] when a file exists but cannot be read.
pub fn load_overrides(dir: &Path) -> Result<BTreeMap<String, String>, RenderError> {
    let mut overrides = BTreeMap::new();
    for (name, _) in TEMPLATES {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
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

/// The compiled templates.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    overridden: Vec<String>,
}

impl Renderer {
    /// Compiles the shipped templates, each replaced by its override if one is given.
    ///
    /// # Errors
    /// [`RenderError::Template`] naming the first template that does not compile.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Self, RenderError> {
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

    /// The templates replaced by operator overrides.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// Renders `template` with `context`.
    ///
    /// # Errors
    /// [`RenderError`] when the template fails (for example an override that names a value
    /// the context does not have) or a per-phone template gets no line.
    pub fn render(&self, template: &str, context: &ConfigContext) -> Result<String, RenderError> {
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
}
