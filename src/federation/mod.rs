//! Gateways exchanging with gateways: what one gateway proves to another.
//!
//! Free of I/O: the receipt a gateway signs for every step the other side
//! must be able to prove, and the document a relayed message travels in.
//! The relay itself (outbox, peer client, inbound endpoint) lives in the
//! application layer.

pub mod document;
pub mod notice;
pub mod receipt;

pub use document::{RelayedAttachment, RelayedMessage};
pub use notice::{Notice, NoticeScope};
pub use receipt::{Receipt, ReceiptError, ReceiptKind, ReceiptViolation};
