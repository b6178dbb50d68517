//! Non-INVITE server transaction (RFC 3261 §17.2.2, figure 8).

use super::{RetransmissionVerdict, SendVerdict, TimerVerdict, Timers, is_provisional};
use crate::config::Config;
use crate::timer::Timer;

/// States of a non-INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; retransmissions get it again.
    Proceeding,
    /// A final response was sent; Timer J answers retransmissions with it.
    Completed,
    /// Done.
    Terminated,
}

/// The non-INVITE server state machine.
#[derive(Debug, Clone)]
pub(crate) struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
}

impl ServerNonInvite {
    pub(crate) fn new(reliable: bool) -> Self {
        Self {
            state: ServerNonInviteState::Trying,
            reliable,
        }
    }

    pub(crate) fn state(&self) -> ServerNonInviteState {
        self.state
    }

    pub(crate) fn on_send(
        &mut self,
        config: &Config,
        status: u16,
        timers: &mut Timers<'_>,
    ) -> SendVerdict {
        use ServerNonInviteState::*;
        match self.state {
            Trying | Proceeding if is_provisional(status) => {
                self.state = Proceeding;
                SendVerdict::Send
            }
            Trying | Proceeding => {
                if self.reliable {
                    // Timer J is zero: the transaction ends once the response is sent.
                    self.terminate(timers);
                } else {
                    self.state = Completed;
                    timers.start(Timer::J, config.timeout_64_t1());
                }
                SendVerdict::Send
            }
            Completed | Terminated => SendVerdict::AlreadyFinal,
        }
    }

    pub(crate) fn on_retransmission(&self) -> RetransmissionVerdict {
        match self.state {
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => {
                RetransmissionVerdict::ResendLast
            }
            ServerNonInviteState::Trying | ServerNonInviteState::Terminated => {
                RetransmissionVerdict::Absorb
            }
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, timers: &mut Timers<'_>) -> TimerVerdict {
        match (self.state, timer) {
            (ServerNonInviteState::Completed, Timer::J) => {
                self.terminate(timers);
                TimerVerdict::Terminated
            }
            _ => TimerVerdict::Ignore,
        }
    }

    pub(crate) fn terminate(&mut self, timers: &mut Timers<'_>) {
        timers.stop_all();
        self.state = ServerNonInviteState::Terminated;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::TimerQueue;
    use crate::transaction::test_util::{base, timers};

    #[test]
    fn trying_absorbs_proceeding_and_completed_resend() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let t0 = base();
        let mut m = ServerNonInvite::new(false);
        assert_eq!(m.on_retransmission(), RetransmissionVerdict::Absorb);
        assert_eq!(
            m.on_send(&config, 100, &mut timers(&mut queue, t0)),
            SendVerdict::Send
        );
        assert_eq!(m.on_retransmission(), RetransmissionVerdict::ResendLast);
        assert_eq!(
            m.on_send(&config, 200, &mut timers(&mut queue, t0)),
            SendVerdict::Send
        );
        assert_eq!(m.on_retransmission(), RetransmissionVerdict::ResendLast);
        assert_eq!(
            m.on_send(&config, 500, &mut timers(&mut queue, t0)),
            SendVerdict::AlreadyFinal
        );
        assert_eq!(queue.next_deadline(), Some(t0 + config.timeout_64_t1()));
        let deadline = queue.next_deadline().unwrap();
        let (_, timer) = queue.pop_due(deadline).unwrap();
        assert_eq!(
            m.on_timer(timer, &mut timers(&mut queue, deadline)),
            TimerVerdict::Terminated
        );
        assert_eq!(m.state(), ServerNonInviteState::Terminated);
    }

    #[test]
    fn reliable_final_terminates_at_once() {
        let config = Config::default();
        let mut queue = TimerQueue::default();
        let mut m = ServerNonInvite::new(true);
        assert_eq!(
            m.on_send(&config, 200, &mut timers(&mut queue, base())),
            SendVerdict::Send
        );
        assert_eq!(m.state(), ServerNonInviteState::Terminated);
        assert_eq!(queue.len(), 0);
    }
}
