//! INVITE client transaction (RFC 3261 §17.1.1, figure 5; RFC 6026 §8.4 Accepted state).

use std::time::Duration;

use super::{TimerVerdict, Timers, is_provisional, is_success};
use crate::config::Config;
use crate::timer::Timer;

/// States of an INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard; Timer A retransmits (unreliable), Timer B times out.
    Calling,
    /// A provisional response arrived; waiting for a final one.
    Proceeding,
    /// A 300–699 arrived and was ACKed; Timer D absorbs retransmissions of it.
    Completed,
    /// A 2xx arrived (RFC 6026); Timer M passes further 2xx (retransmissions, forks) up.
    Accepted,
    /// Done.
    Terminated,
}

/// What the transaction does with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientInviteResponse {
    /// Pass it to the TU.
    PassUp,
    /// First non-2xx final: send the ACK, pass it up (and terminate at once when reliable).
    AckAndPassUp,
    /// Retransmitted non-2xx final: re-send the ACK, do not pass up.
    ResendAck,
    /// Absorb it.
    Absorb,
}

/// The INVITE client state machine.
#[derive(Debug, Clone)]
pub(crate) struct ClientInvite {
    state: ClientInviteState,
    reliable: bool,
    interval_a: Duration,
}

impl ClientInvite {
    /// The INVITE was just handed to the transport: start Timers A (unreliable) and B.
    pub(crate) fn start(config: &Config, reliable: bool, timers: &mut Timers<'_>) -> Self {
        if !reliable {
            timers.start(Timer::A, config.t1);
        }
        timers.start(Timer::B, config.timeout_64_t1());
        Self {
            state: ClientInviteState::Calling,
            reliable,
            interval_a: config.t1,
        }
    }

    pub(crate) fn state(&self) -> ClientInviteState {
        self.state
    }

    pub(crate) fn on_response(
        &mut self,
        config: &Config,
        status: u16,
        timers: &mut Timers<'_>,
    ) -> ClientInviteResponse {
        use ClientInviteState::*;
        match self.state {
            Calling | Proceeding => {
                timers.stop(Timer::A);
                timers.stop(Timer::B);
                if is_provisional(status) {
                    self.state = Proceeding;
                    // Timer C restarts with every provisional (RFC 3261 §16.6 step 11).
                    if let Some(timer_c) = config.timer_c {
                        timers.start(Timer::C, timer_c);
                    }
                    return ClientInviteResponse::PassUp;
                }
                timers.stop(Timer::C);
                timers.stop(Timer::CancelGuard);
                if is_success(status) {
                    self.state = Accepted;
                    timers.start(Timer::M, config.timeout_64_t1());
                    return ClientInviteResponse::PassUp;
                }
                self.state = Completed;
                if self.reliable {
                    self.terminate(timers);
                } else {
                    timers.start(Timer::D, config.timer_d);
                }
                ClientInviteResponse::AckAndPassUp
            }
            Completed if status >= 300 => ClientInviteResponse::ResendAck,
            Accepted if is_success(status) => ClientInviteResponse::PassUp,
            _ => ClientInviteResponse::Absorb,
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, timers: &mut Timers<'_>) -> TimerVerdict {
        use ClientInviteState::*;
        match (self.state, timer) {
            (Calling, Timer::A) => {
                self.interval_a = self.interval_a.saturating_mul(2);
                timers.start(Timer::A, self.interval_a);
                TimerVerdict::Retransmit
            }
            (Calling, Timer::B) => {
                self.terminate(timers);
                TimerVerdict::Failed
            }
            (Proceeding, Timer::C) => TimerVerdict::Cancel,
            (Calling | Proceeding, Timer::CancelGuard) => {
                self.terminate(timers);
                TimerVerdict::Failed
            }
            (Completed, Timer::D) | (Accepted, Timer::M) => {
                self.terminate(timers);
                TimerVerdict::Terminated
            }
            _ => TimerVerdict::Ignore,
        }
    }

    /// A CANCEL for this INVITE went out: if no final response comes within 64·T1 the
    /// transaction is destroyed (RFC 3261 §9.1).
    pub(crate) fn cancel_sent(&mut self, config: &Config, timers: &mut Timers<'_>) {
        if matches!(
            self.state,
            ClientInviteState::Calling | ClientInviteState::Proceeding
        ) {
            timers.stop(Timer::C);
            timers.start(Timer::CancelGuard, config.timeout_64_t1());
        }
    }

    pub(crate) fn terminate(&mut self, timers: &mut Timers<'_>) {
        timers.stop_all();
        self.state = ClientInviteState::Terminated;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::TimerQueue;
    use crate::transaction::test_util::{base, timers};

    #[test]
    fn timer_a_doubles_without_cap_until_b() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut machine = ClientInvite::start(&config, false, &mut timers(&mut queue, t0));
        let mut fired = Vec::new();
        while let Some(deadline) = queue.next_deadline() {
            let Some((_, timer)) = queue.pop_due(deadline) else {
                break;
            };
            let verdict = machine.on_timer(timer, &mut timers(&mut queue, deadline));
            fired.push((timer, (deadline - t0).as_millis(), verdict));
        }
        let a: Vec<_> = fired
            .iter()
            .filter(|f| f.0 == Timer::A)
            .map(|f| f.1)
            .collect();
        assert_eq!(a, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(
            fired.last(),
            Some(&(Timer::B, 32_000, TimerVerdict::Failed))
        );
        assert_eq!(machine.state(), ClientInviteState::Terminated);
    }

    #[test]
    fn non_2xx_final_acks_once_then_resends_ack() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ClientInvite::start(&config, false, &mut timers(&mut queue, t0));
        let t = &mut timers(&mut queue, t0);
        assert_eq!(m.on_response(&config, 180, t), ClientInviteResponse::PassUp);
        assert_eq!(
            m.on_response(&config, 486, t),
            ClientInviteResponse::AckAndPassUp
        );
        assert_eq!(m.state(), ClientInviteState::Completed);
        assert_eq!(
            m.on_response(&config, 486, t),
            ClientInviteResponse::ResendAck
        );
        assert_eq!(queue.next_deadline(), Some(t0 + config.timer_d));
    }

    #[test]
    fn reliable_non_2xx_terminates_at_once() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ClientInvite::start(&config, true, &mut timers(&mut queue, t0));
        assert_eq!(queue.len(), 1, "only Timer B on a reliable transport");
        let t = &mut timers(&mut queue, t0);
        assert_eq!(
            m.on_response(&config, 603, t),
            ClientInviteResponse::AckAndPassUp
        );
        assert_eq!(m.state(), ClientInviteState::Terminated);
    }

    #[test]
    fn timer_c_asks_for_a_cancel_and_the_guard_ends_the_transaction() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ClientInvite::start(&config, true, &mut timers(&mut queue, t0));
        m.on_response(&config, 180, &mut timers(&mut queue, t0));
        let c = t0 + Duration::from_secs(180);
        assert_eq!(queue.next_deadline(), Some(c));
        queue.pop_due(c).unwrap();
        assert_eq!(
            m.on_timer(Timer::C, &mut timers(&mut queue, c)),
            TimerVerdict::Cancel
        );
        m.cancel_sent(&config, &mut timers(&mut queue, c));
        let guard = queue.next_deadline().unwrap();
        assert_eq!(guard - c, Duration::from_secs(32));
        queue.pop_due(guard).unwrap();
        assert_eq!(
            m.on_timer(Timer::CancelGuard, &mut timers(&mut queue, guard)),
            TimerVerdict::Failed
        );
        assert_eq!(m.state(), ClientInviteState::Terminated);
    }

    #[test]
    fn accepted_passes_2xx_up_until_m() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ClientInvite::start(&config, false, &mut timers(&mut queue, t0));
        let t = &mut timers(&mut queue, t0);
        assert_eq!(m.on_response(&config, 200, t), ClientInviteResponse::PassUp);
        assert_eq!(m.state(), ClientInviteState::Accepted);
        assert_eq!(m.on_response(&config, 200, t), ClientInviteResponse::PassUp);
        assert_eq!(m.on_response(&config, 180, t), ClientInviteResponse::Absorb);
        let deadline = queue.next_deadline().unwrap();
        assert_eq!(deadline - t0, Duration::from_secs(32));
        let (_, timer) = queue.pop_due(deadline).unwrap();
        assert_eq!(timer, Timer::M);
        let verdict = m.on_timer(timer, &mut timers(&mut queue, deadline));
        assert_eq!(verdict, TimerVerdict::Terminated);
    }
}
