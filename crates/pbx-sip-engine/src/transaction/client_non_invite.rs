//! Non-INVITE client transaction (RFC 3261 §17.1.2, figure 6).

use std::time::Duration;

use super::{TimerVerdict, Timers, is_provisional};
use crate::config::Config;
use crate::timer::Timer;

/// States of a non-INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent; Timer E retransmits (unreliable), Timer F times out.
    Trying,
    /// A provisional arrived; Timer E keeps retransmitting every T2.
    Proceeding,
    /// A final response arrived; Timer K absorbs its retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// What the transaction does with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientNonInviteResponse {
    /// Pass it to the TU.
    PassUp,
    /// Absorb it (retransmission of the final response).
    Absorb,
}

/// The non-INVITE client state machine.
#[derive(Debug, Clone)]
pub(crate) struct ClientNonInvite {
    state: ClientNonInviteState,
    reliable: bool,
    interval_e: Duration,
}

impl ClientNonInvite {
    /// The request was just handed to the transport: start Timers E (unreliable) and F.
    pub(crate) fn start(config: &Config, reliable: bool, timers: &mut Timers<'_>) -> Self {
        if !reliable {
            timers.start(Timer::E, config.t1);
        }
        timers.start(Timer::F, config.timeout_64_t1());
        Self {
            state: ClientNonInviteState::Trying,
            reliable,
            interval_e: config.t1,
        }
    }

    pub(crate) fn state(&self) -> ClientNonInviteState {
        self.state
    }

    pub(crate) fn on_response(
        &mut self,
        config: &Config,
        status: u16,
        timers: &mut Timers<'_>,
    ) -> ClientNonInviteResponse {
        use ClientNonInviteState::*;
        match self.state {
            Trying | Proceeding if is_provisional(status) => {
                self.state = Proceeding;
                ClientNonInviteResponse::PassUp
            }
            Trying | Proceeding => {
                timers.stop(Timer::E);
                timers.stop(Timer::F);
                if self.reliable {
                    self.terminate(timers);
                } else {
                    self.state = Completed;
                    timers.start(Timer::K, config.t4);
                }
                ClientNonInviteResponse::PassUp
            }
            Completed | Terminated => ClientNonInviteResponse::Absorb,
        }
    }

    pub(crate) fn on_timer(
        &mut self,
        config: &Config,
        timer: Timer,
        timers: &mut Timers<'_>,
    ) -> TimerVerdict {
        use ClientNonInviteState::*;
        match (self.state, timer) {
            (Trying, Timer::E) => {
                self.interval_e = self.interval_e.saturating_mul(2).min(config.t2);
                timers.start(Timer::E, self.interval_e);
                TimerVerdict::Retransmit
            }
            (Proceeding, Timer::E) => {
                timers.start(Timer::E, config.t2);
                TimerVerdict::Retransmit
            }
            (Trying | Proceeding, Timer::F) => {
                self.terminate(timers);
                TimerVerdict::Failed
            }
            (Completed, Timer::K) => {
                self.terminate(timers);
                TimerVerdict::Terminated
            }
            _ => TimerVerdict::Ignore,
        }
    }

    pub(crate) fn terminate(&mut self, timers: &mut Timers<'_>) {
        timers.stop_all();
        self.state = ClientNonInviteState::Terminated;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::TimerQueue;
    use crate::transaction::test_util::{base, timers};

    #[test]
    fn timer_e_caps_at_t2_then_f() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ClientNonInvite::start(&config, false, &mut timers(&mut queue, t0));
        let mut fired = Vec::new();
        while let Some(deadline) = queue.next_deadline() {
            let Some((_, timer)) = queue.pop_due(deadline) else {
                break;
            };
            let verdict = m.on_timer(&config, timer, &mut timers(&mut queue, deadline));
            fired.push((timer, (deadline - t0).as_millis(), verdict));
        }
        let e: Vec<_> = fired
            .iter()
            .filter(|f| f.0 == Timer::E)
            .map(|f| f.1)
            .collect();
        // 0.5, 1, 2, 4, then every 4 s (T2).
        assert_eq!(e[..6], [500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(
            fired.last(),
            Some(&(Timer::F, 32_000, TimerVerdict::Failed))
        );
        assert_eq!(m.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn proceeding_retransmits_every_t2_and_final_starts_k() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ClientNonInvite::start(&config, false, &mut timers(&mut queue, t0));
        let t = &mut timers(&mut queue, t0);
        assert_eq!(
            m.on_response(&config, 100, t),
            ClientNonInviteResponse::PassUp
        );
        let first_e = t0 + config.t1;
        queue.pop_due(first_e).unwrap();
        assert_eq!(
            m.on_timer(&config, Timer::E, &mut timers(&mut queue, first_e)),
            TimerVerdict::Retransmit
        );
        assert_eq!(
            queue.deadline(crate::transaction::TransactionId::from_raw(1), Timer::E),
            Some(first_e + config.t2)
        );
        let t = &mut timers(&mut queue, first_e);
        assert_eq!(
            m.on_response(&config, 200, t),
            ClientNonInviteResponse::PassUp
        );
        assert_eq!(
            m.on_response(&config, 200, t),
            ClientNonInviteResponse::Absorb
        );
        assert_eq!(m.state(), ClientNonInviteState::Completed);
        assert_eq!(queue.next_deadline(), Some(first_e + config.t4));
    }
}
