//! Engine configuration: the RFC 3261 timer base values and the admission bounds.

use std::time::Duration;

/// What the endpoint does with a new request when it already holds
/// [`Config::max_transactions`] live transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overload {
    /// Answer `503 Service Unavailable` statelessly (no transaction is created).
    #[default]
    Reject503,
    /// Drop the request silently (the client retransmits, then times out).
    Drop,
}

/// Timer base values (RFC 3261 §17.1.1.1, table 4) and limits.
///
/// Every derived timer follows from these: Timer B/F/H/J/L/M are `64 * t1`, A/E/G start at
/// `t1` (E and G capped at `t2`), I and K are `t4`, D is `timer_d`. On reliable transports
/// the retransmission timers (A, E, G) are not used and D, I, J, K are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
    /// Timer D: wait time for response retransmissions on unreliable transports (≥ 32 s).
    pub timer_d: Duration,
    /// Timer C: how long an INVITE may ring (provisional responses but no final one)
    /// before the endpoint CANCELs it and reports [`crate::Timer::C`]; restarted by each
    /// provisional. `None` leaves it to the transaction user. RFC 3261 §16.6 asks for more
    /// than 3 minutes at proxies.
    pub timer_c: Option<Duration>,
    /// The most transactions (client and server) alive at once. New requests beyond it are
    /// handled per [`Config::overload`]; new client transactions fail. A UDP non-INVITE
    /// server transaction stays for Timer J (64 × T1 = 32 s) after its answer, so this caps
    /// the sustained UDP REGISTER rate near `max_transactions / 32` per second. Memory: about
    /// 2.3 KB per completed REGISTER transaction (`cargo bench -p pbx-sip-engine --bench
    /// transaction_memory`), so the default 400,000 sustains ~12,500 REGISTER/s (above what
    /// one node processes) and bounds the table near 900 MiB in the worst case.
    pub max_transactions: usize,
    /// What to do with new requests when `max_transactions` is reached.
    pub overload: Overload,
    /// Whether accepting an INVITE sends `100 Trying` at once (RFC 3261 §17.2.1 allows the
    /// TU to send its own provisional within 200 ms instead).
    pub send_100_trying: bool,
    /// Whether the engine retransmits a 2xx to INVITE until the ACK arrives (RFC 3261
    /// §13.3.1.4, the UAS core's job; a stateful proxy turns this off).
    pub retransmit_2xx: bool,
}

impl Config {
    /// The configuration with degenerate values made safe: T1 at least 1 ms (a zero T1
    /// would re-arm retransmission timers at the same instant for ever) and T2 at least T1.
    pub fn sanitized(mut self) -> Self {
        self.t1 = self.t1.max(Duration::from_millis(1));
        self.t2 = self.t2.max(self.t1);
        self
    }

    /// 64 × T1: Timers B, F, H, J (unreliable), L and M.
    pub fn timeout_64_t1(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            timer_c: Some(Duration::from_secs(180)),
            max_transactions: 400_000,
            overload: Overload::Reject503,
            send_100_trying: true,
            retransmit_2xx: true,
        }
    }
}
