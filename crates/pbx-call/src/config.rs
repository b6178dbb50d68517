//! Call engine settings.

use std::time::Duration;

use pbx_sdp::Codec;

/// What every call of an engine uses. Build with [`CallConfig::default`] and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallConfig {
    /// How long the B-legs may ring before the caller gets 480.
    pub ring_timeout: Duration,
    /// Calls are ended (BYE on both legs) after this long once answered; `None`: no limit.
    pub max_duration: Option<Duration>,
    /// RFC 4028 session interval we ask for on each leg; `None` disables session timers.
    pub session_expires: Option<Duration>,
    /// The smallest session interval we accept (Min-SE, at least 90 s).
    pub min_se: Duration,
    /// Codecs the platform relays (the offer to the B-leg is restricted to these).
    pub codecs: Vec<Codec>,
    /// User part of our Contact on every leg.
    pub contact_user: String,
    /// The `o=` user name of the descriptions we send.
    pub sdp_user: String,
    /// A trunk that sends no response at all (not even 100 Trying) this long after our
    /// INVITE is given up and the next trunk tried (rather than waiting for Timer B).
    pub trunk_response_timeout: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            ring_timeout: Duration::from_secs(60),
            max_duration: Some(Duration::from_secs(4 * 3600)),
            session_expires: Some(Duration::from_secs(1800)),
            min_se: Duration::from_secs(90),
            codecs: Codec::DEFAULT_SUPPORTED.to_vec(),
            contact_user: "cloudpbx".to_owned(),
            sdp_user: "cloudpbx".to_owned(),
            trunk_response_timeout: Duration::from_secs(5),
        }
    }
}
