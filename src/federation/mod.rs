//! Gateways exchanging with gateways: what one gateway proves to another.
//!
//! Free of I/O: the receipt a gateway signs for every step the other side
//! must be able to prove, the document a relayed message travels in, and
//! the notice that carries the originator's lifecycle decisions.
//! The relay itself (outbox, peer client, inbound endpoint) lives in the
//! application layer.

pub mod batch_sig;
pub mod document;
pub mod notice;
pub mod receipt;

pub use document::{MAX_BATCH, RelayedAttachment, RelayedMessage};
pub use notice::{Notice, NoticeScope};
pub use receipt::{Receipt, ReceiptError, ReceiptKind, ReceiptViolation};
