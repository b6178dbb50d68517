//! Per-leg `o=` bookkeeping: one origin per leg, the version raised whenever what we send
//! changes (RFC 3264 §5 and §8).

use std::net::IpAddr;

use bytes::Bytes;

use crate::error::EditError;
use crate::fields::Origin;
use crate::session::SessionDescription;

/// The origin a B2BUA uses towards one leg.
///
/// Each description sent on the leg goes through [`LegOrigin::stamp`], which writes the leg's
/// `o=` line and raises the version only when the rest of the description differs from the one
/// stamped before (RFC 3264 §8: a re-offer that changes nothing keeps the version; any change
/// increases it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegOrigin {
    origin: Origin,
    last_sent: Option<Bytes>,
}

impl LegOrigin {
    /// A leg origin `o=<username> <session_id> <initial_version> IN IP4|IP6 <address>`.
    pub fn new(username: &str, session_id: u64, initial_version: u64, address: IpAddr) -> Self {
        LegOrigin {
            origin: Origin::new(username, session_id, initial_version, address),
            last_sent: None,
        }
    }

    /// The origin as it was last stamped (or will be first stamped).
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Writes the leg's `o=` into `sdp`, raising the version if the description differs from
    /// the previous one stamped; returns the version used.
    pub fn stamp(&mut self, sdp: &mut SessionDescription) -> Result<u64, EditError> {
        sdp.set_origin(self.origin.clone())?;
        let printed = sdp.to_bytes();
        if let Some(previous) = &self.last_sent
            && *previous != printed
        {
            self.origin.session_version = self.origin.session_version.saturating_add(1);
            sdp.set_origin(self.origin.clone())?;
            self.last_sent = Some(sdp.to_bytes());
        } else {
            self.last_sent = Some(printed);
        }
        Ok(self.origin.session_version)
    }
}
