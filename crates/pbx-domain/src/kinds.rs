//! Small enumerations stored as text: statuses, classes of service, device kinds, roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::mac::MacAddress;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $label:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored text.
            pub const fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(ValidationError::UnknownVariant { kind: $label, value: other.to_owned() }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Whether a tenant may use the service.
    TenantStatus, "tenant status" {
        /// Normal service.
        Active => "active",
        /// Registrations and calls refused (unpaid bill, fraud suspicion); data kept.
        Suspended => "suspended",
        /// Contract ended; kept only until its data is purged.
        Terminated => "terminated",
    }
);

text_enum!(
    /// Which destinations a user may call (an outbound restriction, checked by policy).
    ClassOfService, "class of service" {
        /// Only extensions of the own tenant (and emergency numbers).
        InternalOnly => "internal_only",
        /// Internal plus national destinations.
        National => "national",
        /// Internal, national and international destinations.
        International => "international",
    }
);

text_enum!(
    /// Known desk phone brands (the provisioning templates exist for these).
    PhoneVendor, "phone vendor" {
        /// Yealink.
        Yealink => "yealink",
        /// Polycom / Poly.
        Polycom => "polycom",
        /// Snom.
        Snom => "snom",
        /// Grandstream.
        Grandstream => "grandstream",
        /// Cisco (SPA/MPP).
        Cisco => "cisco",
        /// Any other brand: provisioned by hand.
        Other => "other",
    }
);

text_enum!(
    /// The SIP transport of a registration's flow.
    Transport, "transport" {
        /// UDP.
        Udp => "udp",
        /// TCP.
        Tcp => "tcp",
        /// TLS over TCP.
        Tls => "tls",
        /// WebSocket.
        Ws => "ws",
        /// Secure WebSocket.
        Wss => "wss",
    }
);

text_enum!(
    /// The role of an API token: what level of the hierarchy it acts for.
    ApiRole, "API role" {
        /// The platform operator: everything.
        Operator => "operator",
        /// A reseller: its own tenants.
        Reseller => "reseller",
        /// A customer company's administrator: its own tenant.
        CustomerAdmin => "customer_admin",
    }
);

/// What kind of device this is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceKind {
    /// A desk IP phone, provisioned by MAC address.
    DeskPhone {
        /// The brand.
        vendor: PhoneVendor,
        /// The model as the vendor names it (`T54W`, `D785`, ...).
        model: String,
        /// The MAC address (unique on the platform).
        mac: MacAddress,
    },
    /// A softphone on a computer.
    Softphone,
    /// A softphone app on a smartphone (may be woken by push, RFC 8599).
    MobileApp,
}

impl DeviceKind {
    /// The stored kind text: `desk_phone`, `softphone` or `mobile_app`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::DeskPhone { .. } => "desk_phone",
            Self::Softphone => "softphone",
            Self::MobileApp => "mobile_app",
        }
    }

    /// The MAC address, for desk phones.
    pub const fn mac(&self) -> Option<&MacAddress> {
        match self {
            Self::DeskPhone { mac, .. } => Some(mac),
            _ => None,
        }
    }

    /// Rebuilds a kind from its stored columns.
    pub fn from_columns(
        kind: &str,
        vendor: Option<&str>,
        model: Option<&str>,
        mac: Option<&str>,
    ) -> Result<Self, ValidationError> {
        match kind {
            "desk_phone" => {
                let missing = |reason| ValidationError::Inconsistent {
                    kind: "desk phone",
                    reason,
                };
                Ok(Self::DeskPhone {
                    vendor: vendor.ok_or(missing("no vendor"))?.parse()?,
                    model: model.ok_or(missing("no model"))?.to_owned(),
                    mac: MacAddress::parse(mac.ok_or(missing("no MAC address"))?)?,
                })
            }
            "softphone" => Ok(Self::Softphone),
            "mobile_app" => Ok(Self::MobileApp),
            other => Err(ValidationError::UnknownVariant {
                kind: "device kind",
                value: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        for status in TenantStatus::ALL {
            assert_eq!(status.as_str().parse::<TenantStatus>().unwrap(), *status);
        }
        for class in ClassOfService::ALL {
            assert_eq!(class.as_str().parse::<ClassOfService>().unwrap(), *class);
        }
        assert!("bogus".parse::<Transport>().is_err());
        assert_eq!(
            serde_json::to_string(&ApiRole::CustomerAdmin).unwrap(),
            "\"customer_admin\""
        );
    }

    #[test]
    fn device_kind_columns() {
        let kind = DeviceKind::from_columns(
            "desk_phone",
            Some("yealink"),
            Some("T54W"),
            Some("001565aabbcc"),
        )
        .unwrap();
        assert_eq!(kind.as_str(), "desk_phone");
        assert_eq!(kind.mac().unwrap().bare(), "001565aabbcc");
        assert!(
            DeviceKind::from_columns("desk_phone", Some("yealink"), Some("T54W"), None).is_err()
        );
        assert_eq!(
            DeviceKind::from_columns("mobile_app", None, None, None).unwrap(),
            DeviceKind::MobileApp
        );
        assert!(DeviceKind::from_columns("fax", None, None, None).is_err());
    }
}
