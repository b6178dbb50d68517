//! A minimal transaction user for tests, the SIPp scenarios and the PROTOS run (feature
//! `test-tu`): OPTIONS and REGISTER get 200 (no authentication; REGISTER echoes the Contact
//! and records the flow), every other request gets 404 — never a 2xx to an INVITE.

use std::collections::HashMap;

use bytes::Bytes;
use pbx_sip::{HeaderName, Method, StatusCode};
use pbx_sip_engine::{AcceptedTransaction, Event, Incoming};

use crate::flow::Flow;
use crate::tu::{Context, TransactionUser};

/// The test TU. Its fields let tests look at what happened.
#[derive(Debug, Default)]
pub struct TestTu {
    /// The flow of the last REGISTER per To URI (what a registrar would store).
    pub bindings: HashMap<Bytes, Flow>,
    /// Requests answered, per final status code.
    pub answered: HashMap<u16, u64>,
    /// Malformed messages reported by the engine.
    pub malformed: u64,
}

impl TestTu {
    /// An empty test TU.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl TransactionUser for TestTu {
    fn on_incoming(&mut self, ctx: &mut Context<'_>, incoming: Incoming) {
        let method = incoming.method().clone();
        let status = match method {
            Method::Options | Method::Register => StatusCode::OK,
            _ => StatusCode::NOT_FOUND,
        };
        let contact = incoming.request().headers().get_bytes(&HeaderName::Contact);
        let aor = incoming.request().headers().get_bytes(&HeaderName::To);
        let now = ctx.now();
        let Ok(accepted) = ctx.engine().accept(now, incoming) else {
            return;
        };
        let sent = match accepted {
            AcceptedTransaction::NonInvite(transaction) if method == Method::Register => {
                if let (Some(aor), Some(flow)) = (aor, ctx.flow()) {
                    self.bindings.insert(aor, flow);
                }
                ctx.engine()
                    .response(transaction, status)
                    .and_then(|mut response| {
                        if let Some(contact) = contact {
                            response.headers_mut().push(HeaderName::Contact, contact);
                        }
                        ctx.engine().send_response(now, transaction, response)
                    })
            }
            accepted => ctx.engine().respond(now, accepted, status),
        };
        if sent.is_ok() {
            *self.answered.entry(status.0).or_default() += 1;
        }
    }

    fn on_event(&mut self, ctx: &mut Context<'_>, event: Event) {
        match event {
            Event::Cancelled { invite, .. } => {
                let now = ctx.now();
                let _ = ctx
                    .engine()
                    .respond(now, invite, StatusCode::REQUEST_TERMINATED);
            }
            Event::Malformed { .. } => self.malformed += 1,
            _ => {}
        }
    }
}
