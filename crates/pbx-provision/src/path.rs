//! What a phone asked for: the tenant named in the request path and the brand file it wants.
//!
//! Providers publish `tftp://companyname@provisioning-host` (or `companyname/` as a TFTP
//! path). Phones turn that into one of these request paths, all accepted:
//!
//! * `acme/001565aabbcc.cfg` — the path form;
//! * `acme@prov.example.com/001565aabbcc.cfg` — phones that keep the user part of the URL
//!   in the path (also `acme%40prov.example.com/...` when they percent-encode it);
//! * `@acme/...` is not a form any phone makes and is refused;
//! * `001565aabbcc.cfg` — no tenant at all (DHCP option 66 with a bare host): the tenant then
//!   comes from the device that owns the MAC, and the source must still be on its whitelist.
//!
//! The tenant part is matched case-insensitively against tenant slugs.

use pbx_domain::{MacAddress, PhoneVendor};

/// The files each brand asks for (see the crate docs for the whole sequence per brand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrandFile {
    /// `<mac>.cfg`: the Yealink MAC file, or the Polycom per-phone master file. Which one is
    /// decided by the vendor of the device owning the MAC.
    MacCfg(MacAddress),
    /// Yealink `y0000000000XX.cfg`, the common file of a model family (`XX` is the family code).
    YealinkCommon(String),
    /// Polycom `000000000000.cfg`: the default master file (its CONFIG_FILES name the rest).
    PolycomDefaultMaster,
    /// Polycom `<mac>-phone.cfg`: the per-phone settings named in CONFIG_FILES.
    PolycomPhone(MacAddress),
    /// Polycom `cloudpbx-common.cfg`: tenant-wide settings named in CONFIG_FILES.
    PolycomCommon,
    /// Snom `snom<model>.htm`: the model's common file.
    SnomCommon(String),
    /// Snom `snom<model>-<MAC>.htm`: the phone's file.
    SnomMac(String, MacAddress),
    /// Grandstream `cfg<mac>.xml`.
    GrandstreamMac(MacAddress),
    /// Cisco `SEP<MAC>.cnf.xml`.
    CiscoSep(MacAddress),
}

impl BrandFile {
    /// Recognises a brand file name (the last path component). `None`: not a config file this
    /// server renders (firmware, licences, directories, logs ...).
    pub fn classify(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower == "000000000000.cfg" {
            return Some(Self::PolycomDefaultMaster);
        }
        if lower == "cloudpbx-common.cfg" {
            return Some(Self::PolycomCommon);
        }
        if let Some(stem) = lower.strip_suffix("-phone.cfg") {
            return mac12(stem).map(Self::PolycomPhone);
        }
        if let Some(stem) = lower.strip_suffix(".cnf.xml") {
            return stem.strip_prefix("sep").and_then(mac12).map(Self::CiscoSep);
        }
        if let Some(stem) = lower.strip_suffix(".xml") {
            return stem
                .strip_prefix("cfg")
                .and_then(mac12)
                .map(Self::GrandstreamMac);
        }
        if let Some(stem) = lower.strip_suffix(".htm") {
            let rest = stem.strip_prefix("snom")?;
            return match rest.split_once('-') {
                Some((model, mac)) if is_model(model) => {
                    mac12(mac).map(|mac| Self::SnomMac(model.to_owned(), mac))
                }
                None if is_model(rest) => Some(Self::SnomCommon(rest.to_owned())),
                _ => None,
            };
        }
        if let Some(stem) = lower.strip_suffix(".cfg") {
            if let Some(code) = stem.strip_prefix("y0000000000")
                && code.len() == 2
                && code.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Some(Self::YealinkCommon(code.to_owned()));
            }
            return mac12(stem).map(Self::MacCfg);
        }
        None
    }

    /// The MAC the file is for, if it is a per-phone file.
    pub fn mac(&self) -> Option<MacAddress> {
        match self {
            Self::MacCfg(mac)
            | Self::PolycomPhone(mac)
            | Self::SnomMac(_, mac)
            | Self::GrandstreamMac(mac)
            | Self::CiscoSep(mac) => Some(*mac),
            _ => None,
        }
    }

    /// The brand a file belongs to; `None` for `<mac>.cfg`, which Yealink and Polycom share.
    pub fn vendor(&self) -> Option<PhoneVendor> {
        match self {
            Self::MacCfg(_) => None,
            Self::YealinkCommon(_) => Some(PhoneVendor::Yealink),
            Self::PolycomDefaultMaster | Self::PolycomPhone(_) | Self::PolycomCommon => {
                Some(PhoneVendor::Polycom)
            }
            Self::SnomCommon(_) | Self::SnomMac(..) => Some(PhoneVendor::Snom),
            Self::GrandstreamMac(_) => Some(PhoneVendor::Grandstream),
            Self::CiscoSep(_) => Some(PhoneVendor::Cisco),
        }
    }
}

fn mac12(text: &str) -> Option<MacAddress> {
    (text.len() == 12 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| MacAddress::parse(text).ok())
        .flatten()
}

fn is_model(text: &str) -> bool {
    !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A request path split into the tenant it names (if any) and the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// The tenant slug as written (lower-cased), `None` when the path names no tenant.
    pub tenant: Option<String>,
    /// The last path component (the file the phone wants).
    pub file_name: String,
}

impl RequestPath {
    /// Splits a sanitised, relative path (as `pbx-tftp` hands it over, or an HTTPS path tail).
    /// `None` for shapes no phone makes (more than one directory level, an empty tenant).
    pub fn parse(path: &str) -> Option<Self> {
        let path = path.trim_start_matches('/');
        match path.split_once('/') {
            None => Some(Self {
                tenant: None,
                file_name: path.to_owned(),
            }),
            Some((first, rest)) => {
                if rest.is_empty() || rest.contains('/') {
                    return None;
                }
                let first = first.to_ascii_lowercase();
                let first = first.replace("%40", "@");
                let tenant = match first.split_once('@') {
                    Some((user, _host)) => user.to_owned(),
                    None => first,
                };
                if tenant.is_empty() {
                    return None;
                }
                Some(Self {
                    tenant: Some(tenant),
                    file_name: rest.to_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(text: &str) -> MacAddress {
        MacAddress::parse(text).unwrap()
    }

    #[test]
    fn splits_every_tenant_form() {
        for (path, tenant, file) in [
            ("acme/001565aabbcc.cfg", Some("acme"), "001565aabbcc.cfg"),
            ("/ACME/x.cfg", Some("acme"), "x.cfg"),
            ("acme@prov.example.com/x.cfg", Some("acme"), "x.cfg"),
            ("acme%40prov.example.com/x.cfg", Some("acme"), "x.cfg"),
            ("acme@prov.example.com:69/x.cfg", Some("acme"), "x.cfg"),
            ("001565aabbcc.cfg", None, "001565aabbcc.cfg"),
        ] {
            let parsed = RequestPath::parse(path).unwrap();
            assert_eq!(parsed.tenant.as_deref(), tenant, "{path}");
            assert_eq!(parsed.file_name, file, "{path}");
        }
        for bad in ["a/b/c.cfg", "@host/x.cfg", "acme/"] {
            assert_eq!(RequestPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn classifies_each_brands_file_names() {
        let m = mac("001565aabbcc");
        assert_eq!(
            BrandFile::classify("001565AABBCC.cfg"),
            Some(BrandFile::MacCfg(m))
        );
        assert_eq!(
            BrandFile::classify("y000000000028.cfg"),
            Some(BrandFile::YealinkCommon("28".into()))
        );
        assert_eq!(
            BrandFile::classify("000000000000.cfg"),
            Some(BrandFile::PolycomDefaultMaster)
        );
        assert_eq!(
            BrandFile::classify("001565aabbcc-phone.cfg"),
            Some(BrandFile::PolycomPhone(m))
        );
        assert_eq!(
            BrandFile::classify("cloudpbx-common.cfg"),
            Some(BrandFile::PolycomCommon)
        );
        assert_eq!(
            BrandFile::classify("snom720.htm"),
            Some(BrandFile::SnomCommon("720".into()))
        );
        assert_eq!(
            BrandFile::classify("snomD785-001565AABBCC.htm"),
            Some(BrandFile::SnomMac("d785".into(), m))
        );
        assert_eq!(
            BrandFile::classify("cfg001565aabbcc.xml"),
            Some(BrandFile::GrandstreamMac(m))
        );
        assert_eq!(
            BrandFile::classify("SEP001565AABBCC.cnf.xml"),
            Some(BrandFile::CiscoSep(m))
        );
        for other in [
            "firmware.ld",
            "001565aabbcc-app.log",
            "sip.ld",
            "y0000000000zz.cfg",
            "cfg.xml",
            "snom-.htm",
            "SEPxyz.cnf.xml",
            "0015.cfg",
        ] {
            assert_eq!(BrandFile::classify(other), None, "{other}");
        }
    }
}
