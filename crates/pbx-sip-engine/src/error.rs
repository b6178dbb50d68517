//! Errors of the endpoint's commands, one enum per command family.

use pbx_sip::ParseError;

/// Why a request could not be sent in a new client transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The request has no top Via, or it does not parse.
    #[error("request has no usable top Via: {0}")]
    InvalidVia(ParseError),
    /// The top Via has no branch with the RFC 3261 magic cookie (use `Endpoint::new_branch`).
    #[error("top Via has no RFC 3261 branch")]
    MissingBranch,
    /// CSeq is missing or malformed.
    #[error("request has no usable CSeq: {0}")]
    InvalidCSeq(ParseError),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// `send_invite` got another method, or `send_request` got an INVITE.
    #[error("wrong command for this method (INVITE goes through send_invite)")]
    WrongMethod,
    /// ACK is not a transaction: use `send_ack` or `send_stateless`.
    #[error("ACK does not create a transaction")]
    AckIsNotATransaction,
    /// A client transaction with this branch and method already exists.
    #[error("a client transaction with this branch already exists")]
    DuplicateBranch,
    /// The configured maximum of live transactions is reached.
    #[error("too many live transactions")]
    TooManyTransactions,
}

/// Why a response could not be sent on a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// No such transaction (it terminated, or the id is from another endpoint).
    #[error("unknown or terminated transaction")]
    UnknownTransaction,
    /// The id names a client transaction.
    #[error("not a server transaction")]
    NotAServerTransaction,
    /// A final response was already sent (only further 2xx may follow a 2xx to INVITE).
    #[error("a final response was already sent")]
    AlreadyFinal,
    /// The response lacks the headers needed to route or match it.
    #[error("malformed response: {0}")]
    Malformed(ParseError),
}

/// Why an `Incoming` could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// A transaction for this request already exists (a retransmission was accepted first).
    #[error("a server transaction for this request already exists")]
    AlreadyExists,
    /// The configured maximum of live transactions is reached.
    #[error("too many live transactions")]
    TooManyTransactions,
}

/// Why a CANCEL could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// No such INVITE client transaction.
    #[error("unknown or terminated INVITE transaction")]
    UnknownTransaction,
    /// The INVITE already got a final response: nothing to cancel.
    #[error("the INVITE already has a final response")]
    AlreadyFinal,
    /// The INVITE cannot be turned into a CANCEL (its headers no longer parse).
    #[error("cannot build CANCEL: {0}")]
    Malformed(ParseError),
    /// The configured maximum of live transactions is reached.
    #[error("too many live transactions")]
    TooManyTransactions,
}

/// Why an ACK for a 2xx could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The request is not an ACK.
    #[error("not an ACK request")]
    NotAck,
    /// The ACK has no usable To header (needed to match 2xx retransmissions).
    #[error("malformed ACK: {0}")]
    Malformed(ParseError),
}
