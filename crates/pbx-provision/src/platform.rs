//! The platform-wide values every config carries, and the context of one file.

use pbx_domain::{Device, DeviceKind, MacAddress, PhoneVendor, Tenant, User};
use serde::Serialize;

use crate::locale::{LanguageSpellings, ZoneSpellings};
use crate::path::BrandFile;
use crate::render::{ConfigContext, ContextParts, LineContext, SipServer, TenantContext};

/// Platform settings for provisioning (from the `[provisioning]` configuration section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Host name (or address) phones register with and fetch from.
    pub host: String,
    /// SIP port for the configured transport.
    pub sip_port: u16,
    /// SIP TLS port.
    pub sip_tls_port: u16,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Registration expiry phones ask for.
    pub register_expiry_secs: u32,
    /// NAT keep-alive interval.
    pub nat_keepalive_secs: u32,
    /// Codecs in preference order.
    pub codecs: Vec<String>,
    /// Re-check interval.
    pub recheck_secs: u32,
    /// Time zone of tenants that set none.
    pub default_time_zone: String,
    /// Language of tenants that set none.
    pub default_language: String,
    /// The TFTP port phones reach (69 unless the server fell back).
    pub tftp_port: u16,
    /// `https://host:port` of the HTTPS provisioning listener, if it runs.
    pub https_base: Option<String>,
}

/// A tenant's own values (`None`: platform defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantValues {
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Language code.
    pub language: Option<String>,
}

/// The settings a person types into a phone configured by hand (and what the files carry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManualSettings {
    /// Registrar / outbound proxy host.
    pub sip_server: String,
    /// Its port.
    pub sip_port: u16,
    /// Transport.
    pub transport: String,
    /// SIP domain (host part of the account).
    pub domain: String,
    /// SIP user (the extension).
    pub user: String,
    /// Digest user name.
    pub auth_username: String,
    /// Digest password (absent when it cannot be recovered).
    pub password: Option<String>,
    /// Caller name.
    pub display_name: String,
    /// Line label.
    pub label: String,
    /// NAT keep-alive interval.
    pub nat_keepalive_secs: u32,
    /// Registration expiry.
    pub register_expiry_secs: u32,
    /// Codecs in order.
    pub codecs: Vec<String>,
    /// IANA time zone.
    pub time_zone: String,
    /// Language.
    pub language: String,
}

impl Platform {
    /// The tenant's effective time zone (its own if valid, else the platform default, else UTC).
    pub fn zone(&self, tenant: &TenantValues) -> ZoneSpellings {
        tenant
            .time_zone
            .as_deref()
            .and_then(ZoneSpellings::of)
            .or_else(|| ZoneSpellings::of(&self.default_time_zone))
            .or_else(|| ZoneSpellings::of("UTC"))
            .unwrap_or(ZoneSpellings {
                name: "UTC".into(),
                posix: "UTC0".into(),
                windows: "UTC".into(),
                yealink: String::new(),
                offset_secs: 0,
                offset_hours: "0".into(),
                dst: false,
            })
    }

    /// The tenant's effective language.
    pub fn language(&self, tenant: &TenantValues) -> LanguageSpellings {
        tenant
            .language
            .as_deref()
            .and_then(LanguageSpellings::of)
            .or_else(|| LanguageSpellings::of(&self.default_language))
            .or_else(|| LanguageSpellings::of("en"))
            .unwrap_or(LanguageSpellings {
                code: "en".into(),
                yealink: "English".into(),
                polycom: "English_United_Kingdom".into(),
                snom: "English".into(),
                grandstream: "en".into(),
                cisco: "English_United_States".into(),
            })
    }

    /// `tftp://host[:port]/slug`.
    pub fn tftp_base(&self, tenant: &Tenant) -> String {
        if self.tftp_port == 69 {
            format!("tftp://{}/{}", self.host, tenant.slug)
        } else {
            format!("tftp://{}:{}/{}", self.host, self.tftp_port, tenant.slug)
        }
    }

    /// The context for one file. `line` is the device's account (per-phone files only).
    #[allow(clippy::too_many_arguments)]
    pub fn context(
        &self,
        tenant: &Tenant,
        values: &TenantValues,
        vendor: PhoneVendor,
        model: &str,
        family: &str,
        mac: Option<MacAddress>,
        line: Option<LineContext>,
    ) -> ConfigContext {
        ConfigContext::new(ContextParts {
            vendor,
            model: model.to_owned(),
            family: family.to_owned(),
            mac: mac.map(|mac| mac.bare()).unwrap_or_default(),
            tenant: TenantContext {
                name: tenant.name.to_string(),
                slug: tenant.slug.to_string(),
                domain: tenant.sip_domain.to_string(),
            },
            line,
            sip: SipServer {
                host: self.host.clone(),
                port: if self.transport == "tls" {
                    self.sip_tls_port
                } else {
                    self.sip_port
                },
                transport: self.transport.clone(),
                tls_port: self.sip_tls_port,
            },
            register_expiry_secs: self.register_expiry_secs,
            nat_keepalive_secs: self.nat_keepalive_secs,
            codecs: self.codecs.clone(),
            time_zone: self.zone(values),
            language: self.language(values),
            recheck_secs: self.recheck_secs,
            tftp_base: self.tftp_base(tenant),
        })
    }

    /// The manual settings of a line.
    pub fn manual(
        &self,
        tenant: &Tenant,
        values: &TenantValues,
        user: &User,
        device: &Device,
        auth_username: &str,
        password: Option<String>,
    ) -> ManualSettings {
        ManualSettings {
            sip_server: self.host.clone(),
            sip_port: if self.transport == "tls" {
                self.sip_tls_port
            } else {
                self.sip_port
            },
            transport: self.transport.clone(),
            domain: tenant.sip_domain.to_string(),
            user: user.extension.to_string(),
            auth_username: auth_username.to_owned(),
            password,
            display_name: user.display_name.to_string(),
            label: line_label(user, device),
            nat_keepalive_secs: self.nat_keepalive_secs,
            register_expiry_secs: self.register_expiry_secs,
            codecs: self.codecs.clone(),
            time_zone: self.zone(values).name,
            language: self.language(values).code,
        }
    }
}

/// The line key label: the device label if set, else `<name> <extension>`.
pub fn line_label(user: &User, device: &Device) -> String {
    if device.label.trim().is_empty() {
        format!("{} {}", user.display_name, user.extension)
    } else {
        device.label.clone()
    }
}

/// The line context of a device's account.
pub fn line(
    tenant: &Tenant,
    user: &User,
    device: &Device,
    auth_username: &str,
    password: &str,
    realm: &str,
) -> LineContext {
    LineContext {
        extension: user.extension.to_string(),
        display_name: user.display_name.to_string(),
        label: line_label(user, device),
        auth_username: auth_username.to_owned(),
        password: password.to_owned(),
        realm: realm.to_owned(),
        domain: tenant.sip_domain.to_string(),
    }
}

/// The files a desk phone fetches, in boot order (what support checks in the fetch log).
/// Empty for devices that are not desk phones of a supported brand.
pub fn device_files(device: &Device) -> Vec<String> {
    let DeviceKind::DeskPhone { vendor, model, mac } = &device.kind else {
        return Vec::new();
    };
    let bare = mac.bare();
    let upper = bare.to_ascii_uppercase();
    let model_lower: String = model
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    match vendor {
        PhoneVendor::Yealink => vec![format!("{bare}.cfg")],
        PhoneVendor::Polycom => vec![
            format!("{bare}.cfg"),
            format!("{bare}-phone.cfg"),
            "cloudpbx-common.cfg".to_owned(),
        ],
        PhoneVendor::Snom => vec![
            format!("snom{model_lower}.htm"),
            format!("snom{model_lower}-{upper}.htm"),
        ],
        PhoneVendor::Grandstream => vec![format!("cfg{bare}.xml")],
        PhoneVendor::Cisco => vec![format!("SEP{upper}.cnf.xml")],
        _ => Vec::new(),
    }
}

/// The model family a common file names (`28` of `y000000000028.cfg`).
pub fn family_of(file: &BrandFile) -> String {
    match file {
        BrandFile::YealinkCommon(family) | BrandFile::SnomCommon(family) => family.clone(),
        BrandFile::SnomMac(model, _) => model.clone(),
        _ => String::new(),
    }
}

/// Everything rendering needs, shared by the TFTP/HTTPS glue and the management API.
#[derive(Debug)]
pub struct Provisioner {
    /// The server's provisioning keys.
    pub sealer: crate::seal::Sealer,
    /// The compiled templates.
    pub renderer: crate::render::Renderer,
    /// Platform values.
    pub platform: Platform,
}

impl Provisioner {
    /// The HTTPS URL of a device (directory form: phones append the file names).
    pub fn https_url(&self, device: pbx_domain::DeviceId, epoch: i64) -> Option<String> {
        self.platform
            .https_base
            .as_ref()
            .map(|base| format!("{base}/p/{}/", self.sealer.url_token(device, epoch)))
    }
}
