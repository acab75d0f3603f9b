//! The operations of the gateway: what partners, the DPO, the sweeper and
//! the command line ask it to do, with typed inputs and outcomes.
//!
//! Each operation reads what it needs, asks the policy, checks signatures,
//! seals content, writes with the request's audit record, records metrics
//! and wakes inboxes; its caller only parses the request and writes the
//! answer. Errors are [`OpError`]s, which the HTTP layer maps to problem
//! documents in one place (`api::problem`).

pub mod acknowledge;
pub mod attachments;
pub mod caller;
pub mod due;
pub mod erase;
pub mod error;
pub mod forward;
pub mod grant;
pub mod held;
pub mod hold;
pub mod inbox;
pub mod judicial_use;
pub mod notice_in;
pub mod peer_receipts;
pub mod raise_label;
pub mod read;
pub mod relayed;
pub mod review;
pub mod signed;
pub mod status;
pub mod submit;

pub use caller::{Caller, Trail};
pub use error::OpError;
