//! The relay between gateways (SPEC §11), below HTTP.
//!
//! - `route`: where a new message's copies go (deliveries and outbox rows).
//! - `receipt_back`: receipts a holder queues for the origin later.
//! - `peer_client`: the mTLS client for one peer (trusts only its CA and
//!   only a certificate naming it).
//! - `outbound`: the relayed document of one message for one peer.
//! - `backoff`: when a failed row is tried again.
//! - `send`: one outbox row, one attempt, and what it records.
//! - `notices`: a lifecycle notice sent and its receipt recorded.
//! - `worker`: the task per peer that drains its queue.

pub mod backoff;
pub mod notices;
pub mod outbound;
pub mod peer_client;
pub mod receipt_back;
pub mod route;
pub mod send;
pub mod worker;
