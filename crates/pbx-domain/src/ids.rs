//! Identifier newtypes.
//!
//! Every entity id is a UUID version 7 wrapped in its own type, so a `UserId` can never be
//! passed where a `TenantId` is expected. Why UUID v7 and not an `i64` sequence:
//! - ids are made on any node of a cluster without a round trip to the database;
//! - they are not enumerable: an id seen in one tenant's API response says nothing about
//!   the ids of other tenants (defence in depth on top of the tenant scoping);
//! - they sort by creation time, which keeps B-tree inserts local like a sequence would.
//!
//! This crate is sans-IO, so it never reads the clock or a random source itself: the caller
//! passes the time and the random bytes to [`TenantId::from_parts`] (the store does this).
//! In the database the ids are stored as their hyphenated lower-case text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ValidationError;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $label:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID (for example one read back from the database).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// Builds a fresh UUID v7 id from the Unix time in milliseconds and 10 random
            /// bytes supplied by the caller.
            pub fn from_parts(unix_millis: u64, random: &[u8; 10]) -> Self {
                Self(uuid::Builder::from_unix_timestamp_millis(unix_millis, random).into_uuid())
            }

            /// The wrapped UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text)
                    .map(Self)
                    .map_err(|_| ValidationError::InvalidId { kind: $label })
            }
        }
    };
}

id_type!(
    /// A reseller: a company that sells the service to tenants.
    ResellerId, "ResellerId"
);
id_type!(
    /// A tenant: one customer company.
    TenantId, "TenantId"
);
id_type!(
    /// A user (extension) inside a tenant.
    UserId, "UserId"
);
id_type!(
    /// A device (desk phone, softphone, mobile app) of a user.
    DeviceId, "DeviceId"
);
id_type!(
    /// A SIP credential of a device.
    CredentialId, "CredentialId"
);
id_type!(
    /// A phone number (DID) in the inventory.
    NumberId, "NumberId"
);
id_type!(
    /// An IP whitelist entry.
    WhitelistEntryId, "WhitelistEntryId"
);
id_type!(
    /// A registration binding.
    BindingId, "BindingId"
);
id_type!(
    /// An API token.
    ApiTokenId, "ApiTokenId"
);
id_type!(
    /// An audit/event log entry.
    EventId, "EventId"
);
id_type!(
    /// A call detail record (one per call attempt).
    CdrId, "CdrId"
);
id_type!(
    /// A SIP trunk to a carrier.
    TrunkId, "TrunkId"
);
id_type!(
    /// An outbound route (destination prefix to trunks).
    RouteId, "RouteId"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_parts_is_v7_and_sorts_by_time() {
        let early = TenantId::from_parts(1_000, &[0xff; 10]);
        let late = TenantId::from_parts(2_000, &[0x00; 10]);
        assert_eq!(early.as_uuid().get_version_num(), 7);
        assert!(early < late);
        assert!(
            early.to_string() < late.to_string(),
            "text form sorts like the id"
        );
    }

    #[test]
    fn text_round_trip_and_rejects_garbage() {
        let id = UserId::from_parts(1_764_000_000_000, &[7; 10]);
        let parsed: UserId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert!(format!("{id:?}").starts_with("UserId("));
        assert_eq!(
            "not-a-uuid".parse::<UserId>(),
            Err(ValidationError::InvalidId { kind: "UserId" })
        );
    }
}
