//! INVITE server transaction (RFC 3261 §17.2.1, figure 7; RFC 6026 §8.6 Accepted state).
//!
//! The Accepted state also carries the UAS core's 2xx retransmission (RFC 3261 §13.3.1.4)
//! when [`Config::retransmit_2xx`] is on: the 2xx goes out again at T1, 2·T1, … capped at T2
//! until the ACK for it arrives; Timer L (64·T1) ends both.

use std::time::Duration;

use super::{RetransmissionVerdict, SendVerdict, TimerVerdict, Timers, is_provisional, is_success};
use crate::config::Config;
use crate::timer::Timer;

/// States of an INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// Request received (100 Trying or another provisional may have been sent).
    Proceeding,
    /// A 300–699 was sent; Timer G retransmits it (unreliable), Timer H waits for the ACK.
    Completed,
    /// The ACK arrived; Timer I absorbs its retransmissions.
    Confirmed,
    /// A 2xx was sent (RFC 6026); Timer L absorbs INVITE retransmissions.
    Accepted,
    /// Done.
    Terminated,
}

/// What the transaction does with an ACK that matched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckVerdict {
    /// ACK for a non-2xx final: consumed by the transaction.
    Absorb,
    /// ACK for a 2xx: goes to the TU.
    PassUp,
}

/// The INVITE server state machine.
#[derive(Debug, Clone)]
pub(crate) struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    interval_g: Duration,
    interval_2xx: Duration,
    retransmitting_2xx: bool,
    acked: bool,
}

impl ServerInvite {
    pub(crate) fn new(config: &Config, reliable: bool) -> Self {
        Self {
            state: ServerInviteState::Proceeding,
            reliable,
            interval_g: config.t1,
            interval_2xx: config.t1,
            retransmitting_2xx: false,
            acked: false,
        }
    }

    pub(crate) fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Whether an ACK for a 2xx has been seen (Accepted state).
    #[cfg(test)]
    pub(crate) fn acked(&self) -> bool {
        self.acked
    }

    /// The TU hands the transaction a response with `status`.
    pub(crate) fn on_send(
        &mut self,
        config: &Config,
        status: u16,
        timers: &mut Timers<'_>,
    ) -> SendVerdict {
        use ServerInviteState::*;
        match self.state {
            Proceeding if is_provisional(status) => SendVerdict::Send,
            Proceeding if is_success(status) => {
                self.state = Accepted;
                timers.start(Timer::L, config.timeout_64_t1());
                if config.retransmit_2xx {
                    self.retransmitting_2xx = true;
                    timers.start(Timer::Retransmit2xx, self.interval_2xx);
                }
                SendVerdict::Send
            }
            Proceeding => {
                self.state = Completed;
                if !self.reliable {
                    timers.start(Timer::G, self.interval_g);
                }
                timers.start(Timer::H, config.timeout_64_t1());
                SendVerdict::Send
            }
            // Another 2xx (or a TU retransmission of it) while Accepted is passed on.
            Accepted if is_success(status) => SendVerdict::Send,
            _ => SendVerdict::AlreadyFinal,
        }
    }

    /// The INVITE arrived again.
    pub(crate) fn on_retransmission(&self) -> RetransmissionVerdict {
        match self.state {
            ServerInviteState::Proceeding | ServerInviteState::Completed => {
                RetransmissionVerdict::ResendLast
            }
            _ => RetransmissionVerdict::Absorb,
        }
    }

    /// An ACK matched this transaction (same branch, or the dialog of its 2xx).
    pub(crate) fn on_ack(&mut self, config: &Config, timers: &mut Timers<'_>) -> AckVerdict {
        use ServerInviteState::*;
        match self.state {
            Completed => {
                timers.stop(Timer::G);
                timers.stop(Timer::H);
                if self.reliable {
                    self.terminate(timers);
                } else {
                    self.state = Confirmed;
                    timers.start(Timer::I, config.t4);
                }
                AckVerdict::Absorb
            }
            Accepted => {
                self.acked = true;
                self.retransmitting_2xx = false;
                timers.stop(Timer::Retransmit2xx);
                AckVerdict::PassUp
            }
            Proceeding | Confirmed | Terminated => AckVerdict::Absorb,
        }
    }

    pub(crate) fn on_timer(
        &mut self,
        config: &Config,
        timer: Timer,
        timers: &mut Timers<'_>,
    ) -> TimerVerdict {
        use ServerInviteState::*;
        match (self.state, timer) {
            (Completed, Timer::G) => {
                self.interval_g = self.interval_g.saturating_mul(2).min(config.t2);
                timers.start(Timer::G, self.interval_g);
                TimerVerdict::Retransmit
            }
            (Completed, Timer::H) => {
                self.terminate(timers);
                TimerVerdict::Failed
            }
            (Confirmed, Timer::I) => {
                self.terminate(timers);
                TimerVerdict::Terminated
            }
            (Accepted, Timer::Retransmit2xx) if self.retransmitting_2xx => {
                self.interval_2xx = self.interval_2xx.saturating_mul(2).min(config.t2);
                timers.start(Timer::Retransmit2xx, self.interval_2xx);
                TimerVerdict::Retransmit
            }
            (Accepted, Timer::L) => {
                let unacknowledged = self.retransmitting_2xx && !self.acked;
                self.terminate(timers);
                if unacknowledged {
                    TimerVerdict::Failed
                } else {
                    TimerVerdict::Terminated
                }
            }
            _ => TimerVerdict::Ignore,
        }
    }

    pub(crate) fn terminate(&mut self, timers: &mut Timers<'_>) {
        timers.stop_all();
        self.state = ServerInviteState::Terminated;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::TimerQueue;
    use crate::transaction::test_util::{base, timers};

    fn drain(
        m: &mut ServerInvite,
        config: &Config,
        queue: &mut TimerQueue,
        t0: std::time::Instant,
    ) -> Vec<(Timer, u128, TimerVerdict)> {
        let mut fired = Vec::new();
        while let Some(deadline) = queue.next_deadline() {
            let Some((_, timer)) = queue.pop_due(deadline) else {
                break;
            };
            let verdict = m.on_timer(config, timer, &mut timers(queue, deadline));
            fired.push((timer, (deadline - t0).as_millis(), verdict));
        }
        fired
    }

    #[test]
    fn timer_g_caps_at_t2_and_h_fails() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ServerInvite::new(&config, false);
        assert_eq!(
            m.on_send(&config, 180, &mut timers(&mut queue, t0)),
            SendVerdict::Send
        );
        assert_eq!(
            m.on_send(&config, 486, &mut timers(&mut queue, t0)),
            SendVerdict::Send
        );
        assert_eq!(
            m.on_send(&config, 200, &mut timers(&mut queue, t0)),
            SendVerdict::AlreadyFinal
        );
        assert_eq!(m.on_retransmission(), RetransmissionVerdict::ResendLast);
        let fired = drain(&mut m, &config, &mut queue, t0);
        let g: Vec<_> = fired
            .iter()
            .filter(|f| f.0 == Timer::G)
            .map(|f| f.1)
            .collect();
        assert_eq!(g[..6], [500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(
            fired.last(),
            Some(&(Timer::H, 32_000, TimerVerdict::Failed))
        );
    }

    #[test]
    fn ack_confirms_then_i_terminates() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ServerInvite::new(&config, false);
        m.on_send(&config, 404, &mut timers(&mut queue, t0));
        assert_eq!(
            m.on_ack(&config, &mut timers(&mut queue, t0)),
            AckVerdict::Absorb
        );
        assert_eq!(m.state(), ServerInviteState::Confirmed);
        assert_eq!(m.on_retransmission(), RetransmissionVerdict::Absorb);
        let fired = drain(&mut m, &config, &mut queue, t0);
        assert_eq!(fired, [(Timer::I, 5_000, TimerVerdict::Terminated)]);
    }

    #[test]
    fn accepted_retransmits_2xx_until_ack() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ServerInvite::new(&config, true);
        m.on_send(&config, 200, &mut timers(&mut queue, t0));
        assert_eq!(m.state(), ServerInviteState::Accepted);
        assert_eq!(m.on_retransmission(), RetransmissionVerdict::Absorb);
        let first = t0 + config.t1;
        queue.pop_due(first).unwrap();
        let verdict = m.on_timer(
            &config,
            Timer::Retransmit2xx,
            &mut timers(&mut queue, first),
        );
        assert_eq!(verdict, TimerVerdict::Retransmit);
        assert_eq!(
            m.on_ack(&config, &mut timers(&mut queue, first)),
            AckVerdict::PassUp
        );
        assert!(m.acked());
        let fired = drain(&mut m, &config, &mut queue, t0);
        assert_eq!(fired, [(Timer::L, 32_000, TimerVerdict::Terminated)]);
    }

    #[test]
    fn accepted_without_ack_fails_at_l() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ServerInvite::new(&config, false);
        m.on_send(&config, 200, &mut timers(&mut queue, t0));
        let fired = drain(&mut m, &config, &mut queue, t0);
        let r: Vec<_> = fired
            .iter()
            .filter(|f| f.0 == Timer::Retransmit2xx)
            .map(|f| f.1)
            .collect();
        assert_eq!(r[..5], [500, 1500, 3500, 7500, 11500]);
        assert_eq!(
            fired.last(),
            Some(&(Timer::L, 32_000, TimerVerdict::Failed))
        );
    }
}
