//! Dialogs (RFC 3261 §12): identity, early/confirmed state, route set, remote target and
//! CSeq spaces, and the requests built inside a dialog (BYE, re-INVITE, UPDATE, ACK for 2xx).
//!
//! A [`Dialog`] is plain data the transaction user owns; the endpoint knows nothing of it.
//! UAC and UAS differ only in how the dialog is built ([`Dialog::uac`] from the request sent
//! and the response received, [`Dialog::uas`] from the request received and the response
//! sent), so the role is recorded ([`Role`]) rather than made a type parameter: after
//! creation either side may send requests (a callee's re-INVITE or BYE).

use bytes::Bytes;
use pbx_sip::{Method, NameAddr, ParseError, Request, Response, Uri, Via};

/// Which side created the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the dialog-creating request.
    Uac,
    /// We received it.
    Uas,
}

/// Dialog state (§12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended (BYE, or the early dialog's INVITE failed).
    Terminated,
}

/// The dialog identifier: Call-ID, local tag, remote tag (§12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: Bytes,
    /// Our tag.
    pub local_tag: Bytes,
    /// The peer's tag.
    pub remote_tag: Bytes,
}

impl DialogId {
    /// The id of the dialog an incoming in-dialog request belongs to (our tag is its To
    /// tag). `None` when it has no To tag (not in a dialog).
    pub fn of_incoming_request(request: &Request) -> Result<Option<DialogId>, ParseError> {
        let Some(local_tag) = request.to()?.tag else {
            return Ok(None);
        };
        Ok(Some(DialogId {
            call_id: request.call_id()?,
            local_tag,
            remote_tag: request.from()?.tag.unwrap_or_default(),
        }))
    }

    /// The id of the dialog a response to our request belongs to. `None` without a To tag.
    pub fn of_response(response: &Response) -> Result<Option<DialogId>, ParseError> {
        let Some(remote_tag) = response.to()?.tag else {
            return Ok(None);
        };
        Ok(Some(DialogId {
            call_id: response.call_id()?,
            local_tag: response.from()?.tag.unwrap_or_default(),
            remote_tag,
        }))
    }
}

/// Why a dialog could not be created or updated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header needed for the dialog is missing or malformed.
    #[error("malformed message: {0}")]
    Malformed(ParseError),
    /// The response has no To tag (or the request no From tag): no dialog.
    #[error("no tag to identify the dialog")]
    MissingTag,
    /// The message creating or refreshing the dialog has no usable Contact.
    #[error("no Contact to use as remote target")]
    MissingContact,
    /// The response does not create a dialog (100, or a non-2xx final).
    #[error("status {0} does not create a dialog")]
    NotDialogCreating(u16),
    /// An in-dialog request with a CSeq lower than the last one (§12.2.2: answer 500).
    #[error("CSeq {received} is lower than the last remote CSeq {last}")]
    CSeqOutOfOrder {
        /// The CSeq received.
        received: u32,
        /// The highest remote CSeq seen.
        last: u32,
    },
    /// The local CSeq would exceed 2^31 - 1 (§8.1.1.5).
    #[error("local CSeq exhausted")]
    CSeqExhausted,
    /// The dialog is terminated.
    #[error("dialog terminated")]
    Terminated,
}

impl From<ParseError> for DialogError {
    fn from(error: ParseError) -> Self {
        DialogError::Malformed(error)
    }
}

/// One dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: DialogState,
    local_uri: NameAddr,
    remote_uri: NameAddr,
    remote_target: Uri,
    route_set: Vec<NameAddr>,
    local_seq: Option<u32>,
    remote_seq: Option<u32>,
    local_contact: Option<NameAddr>,
    /// CSeq of the last INVITE we sent, which the ACK for its 2xx carries.
    invite_seq: Option<u32>,
}

impl Dialog {
    /// The UAC's dialog from the request it sent and a response with a To tag (1xx → early,
    /// 2xx → confirmed). Route set: Record-Route of the response, reversed; remote target:
    /// its Contact (§12.1.2).
    pub fn uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let state = creating_state(response)?;
        let local_uri = request.from()?;
        let remote_uri = response.to()?;
        let (Some(local_tag), Some(remote_tag)) = (local_uri.tag.clone(), remote_uri.tag.clone())
        else {
            return Err(DialogError::MissingTag);
        };
        let mut route_set = response.record_route()?;
        route_set.reverse();
        let cseq = request.cseq()?.seq;
        let is_invite = *request.method() == Method::Invite;
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id()?,
                local_tag,
                remote_tag,
            },
            role: Role::Uac,
            state,
            local_uri,
            remote_uri,
            remote_target: contact_uri(response.contacts()?)?,
            route_set,
            local_seq: Some(cseq),
            remote_seq: None,
            local_contact: request
                .contacts()?
                .first()
                .and_then(|c| c.address())
                .map(|a| a.name_addr.clone()),
            invite_seq: is_invite.then_some(cseq),
        })
    }

    /// The UAS's dialog from the request it received and the response it sends (with its To
    /// tag). Route set: Record-Route of the request, in order; remote target: its Contact
    /// (§12.1.1).
    pub fn uas(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let state = creating_state(response)?;
        let remote_uri = request.from()?;
        let local_uri = response.to()?;
        let (Some(local_tag), Some(remote_tag)) = (local_uri.tag.clone(), remote_uri.tag.clone())
        else {
            return Err(DialogError::MissingTag);
        };
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id()?,
                local_tag,
                remote_tag,
            },
            role: Role::Uas,
            state,
            local_uri,
            remote_uri,
            remote_target: contact_uri(request.contacts()?)?,
            route_set: request.record_route()?,
            local_seq: None,
            remote_seq: Some(request.cseq()?.seq),
            local_contact: response
                .contacts()?
                .first()
                .and_then(|c| c.address())
                .map(|a| a.name_addr.clone()),
            invite_seq: None,
        })
    }

    /// The dialog id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Which side created it.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Early, confirmed or terminated.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// The route set (Route headers of our requests, in order).
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    /// The remote target (Request-URI of our requests, loose routing).
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    /// The last CSeq we used, if any.
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }

    /// The highest CSeq the peer used, if any.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Where our requests go first: the first route, else the remote target. Resolve this
    /// (RFC 3263) into the `Target` for the endpoint.
    pub fn next_hop(&self) -> &Uri {
        self.route_set
            .first()
            .map_or(&self.remote_target, |route| &route.uri)
    }

    /// Set the Contact put in target-refresh requests we build (INVITE, UPDATE, …).
    pub fn set_local_contact(&mut self, contact: NameAddr) {
        self.local_contact = Some(contact);
    }

    /// A response to a request we sent in this dialog (or the response that may confirm it).
    /// 2xx confirms an early dialog and recomputes the route set (§13.2.2.4); a 2xx to a
    /// target refresh updates the remote target (§12.2.1.2); a non-2xx final to the request
    /// that created an early dialog terminates it.
    pub fn on_response(&mut self, method: &Method, response: &Response) -> Result<(), DialogError> {
        let status = response.status().0;
        if (200..300).contains(&status) {
            if self.state == DialogState::Early && self.role == Role::Uac {
                let mut route_set = response.record_route()?;
                route_set.reverse();
                self.route_set = route_set;
            }
            if self.state == DialogState::Early {
                self.state = DialogState::Confirmed;
            }
            if is_target_refresh(method)
                && let Some(uri) = response.contacts()?.first().and_then(|c| c.uri())
            {
                self.remote_target = uri.clone();
            }
        } else if status >= 300 && self.state == DialogState::Early && *method == Method::Invite {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// An in-dialog request from the peer: checks and records its CSeq (ACK and CANCEL
    /// excepted, §12.2.2), refreshes the remote target for target-refresh requests carrying
    /// a Contact, and terminates on BYE.
    pub fn on_request(&mut self, request: &Request) -> Result<(), DialogError> {
        let method = request.method();
        if !matches!(method, Method::Ack | Method::Cancel) {
            let seq = request.cseq()?.seq;
            if let Some(last) = self.remote_seq
                && seq < last
            {
                return Err(DialogError::CSeqOutOfOrder {
                    received: seq,
                    last,
                });
            }
            self.remote_seq = Some(seq);
        }
        if is_target_refresh(method)
            && let Some(uri) = request.contacts()?.first().and_then(|c| c.uri())
        {
            self.remote_target = uri.clone();
        }
        match method {
            Method::Bye => self.state = DialogState::Terminated,
            Method::Ack if self.state == DialogState::Early => self.state = DialogState::Confirmed,
            _ => {}
        }
        Ok(())
    }

    /// Mark the dialog terminated (after our BYE, or a failure).
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// A new in-dialog request (§12.2.1.1) with the next local CSeq: Request-URI and Route
    /// from the route set and remote target (strict routing handled: when the first route
    /// lacks `lr`, it becomes the Request-URI and the remote target the last Route), To/From
    /// with the dialog tags, Call-ID, `via` on top (give it a fresh branch), Max-Forwards 70,
    /// and the local Contact for target-refresh methods.
    pub fn request(&mut self, method: Method, via: &Via) -> Result<Request, DialogError> {
        if self.state == DialogState::Terminated && method != Method::Ack {
            return Err(DialogError::Terminated);
        }
        let seq = match self.local_seq {
            Some(seq) if seq >= (1 << 31) - 1 => return Err(DialogError::CSeqExhausted),
            Some(seq) => seq + 1,
            None => 1,
        };
        self.local_seq = Some(seq);
        let (uri, routes) = self.routing();
        if method == Method::Invite {
            self.invite_seq = Some(seq);
        }
        let contact = is_target_refresh(&method)
            .then_some(self.local_contact.as_ref())
            .flatten();
        Ok(self.build(method, seq, uri, &routes, via, contact))
    }

    /// The ACK for the 2xx to our last INVITE in this dialog (§13.2.2.4): built like any
    /// in-dialog request (remote target, route set) but with the INVITE's CSeq number and
    /// method ACK; `via` must carry a new branch. Does not consume a CSeq.
    pub fn ack(&self, via: &Via) -> Result<Request, DialogError> {
        let seq = self.invite_seq.or(self.local_seq).unwrap_or(1);
        let (uri, routes) = self.routing();
        Ok(self.build(Method::Ack, seq, uri, &routes, via, None))
    }

    /// Request-URI and Route headers for a new request (§12.2.1.1).
    fn routing(&self) -> (Uri, Vec<NameAddr>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let loose = first
            .uri
            .as_sip()
            .is_some_and(|sip| sip.params.contains("lr"));
        if loose {
            return (self.remote_target.clone(), self.route_set.clone());
        }
        let mut routes: Vec<NameAddr> = self.route_set[1..].to_vec();
        routes.push(NameAddr::new(self.remote_target.clone()));
        (first.uri.clone(), routes)
    }

    fn build(
        &self,
        method: Method,
        seq: u32,
        uri: Uri,
        routes: &[NameAddr],
        via: &Via,
        contact: Option<&NameAddr>,
    ) -> Request {
        let mut builder = Request::builder(method, uri)
            .via(via)
            .from(&self.local_uri)
            .to(&self.remote_uri)
            .call_id(self.id.call_id.clone())
            .cseq(seq);
        if let Some(contact) = contact {
            builder = builder.contact(contact);
        }
        for route in routes {
            builder = builder.route(route);
        }
        builder.build()
    }
}

fn creating_state(response: &Response) -> Result<DialogState, DialogError> {
    match response.status().0 {
        101..=199 => Ok(DialogState::Early),
        200..=299 => Ok(DialogState::Confirmed),
        other => Err(DialogError::NotDialogCreating(other)),
    }
}

fn contact_uri(contacts: Vec<pbx_sip::Contact>) -> Result<Uri, DialogError> {
    contacts
        .first()
        .and_then(|contact| contact.uri())
        .cloned()
        .ok_or(DialogError::MissingContact)
}

/// Methods whose Contact replaces the remote target (RFC 3261 §12.2, RFC 3311, RFC 6665).
fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}
