//! Sans-IO SIP transaction (RFC 3261 §17, RFC 6026) and dialog engine.

mod build;
pub mod config;
pub mod dialog;
mod endpoint;
pub mod error;
pub mod event;
mod ids;
mod incoming;
mod key;
mod routing;
pub mod timer;
pub mod transaction;
pub mod transport;

pub use config::{Config, Overload};
pub use dialog::{Dialog, DialogError, DialogId, DialogState, Role};
pub use endpoint::{CancelOutcome, Endpoint, Stats};
pub use error::{AcceptError, AckError, CancelError, ResponseError, SendError};
pub use event::Event;
pub use incoming::Incoming;
pub use timer::Timer;
pub use transaction::{
    AcceptedTransaction, ClientTransaction, Invite, Kind, NonInvite, ServerTransaction,
    TransactionId, TransactionState,
};
pub use transport::{FlowId, Target, Transmit, TransportInfo};
