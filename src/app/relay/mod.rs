//! The relay between gateways (SPEC §11), below HTTP.
//!
//! - `route`: where a new message's copies go (deliveries and outbox rows).
//! - `receipt_back`: receipts a holder queues for the origin later.
//! - `link`: one peer's client and keys, as sending rows and notices take it.
//! - `peer_client`: the mTLS client for one peer (trusts only its CA and
//!   only a certificate naming it).
//! - `outbound`: the relayed document of one message for one peer.
//! - `backoff`: when a failed row is tried again.
//! - `send`: one outbox row, one attempt, and what it records.
//! - `batch`: several message rows in one request, each concluded as `send` would.
//! - `notices`: a lifecycle notice sent and its receipt recorded.
//! - `worker`: the task per peer that drains its queue.

pub mod backoff;
pub mod batch;
pub mod link;
pub mod notices;
pub mod outbound;
pub mod peer_client;
pub mod receipt_back;
pub mod route;
pub mod send;
pub mod worker;

/// Checks, before a policy is put in force (start or reload), that it fits
/// this gateway's federation id and that every peer's envelope key can be
/// read: a typo then fails the start or is refused by the reload, instead
/// of every receipt of that peer later.
pub fn check_peers(
    policy: &crate::policy::Policy,
    own: Option<&crate::domain::PartnerId>,
) -> Result<(), String> {
    policy.check_federation(own)?;
    for peer in policy.peers.values() {
        crate::crypto::jose::JwsKeys::from_public_pem_file(&peer.envelope_key)
            .map_err(|e| format!("envelope_key of peer {}: {e}", peer.id))?;
    }
    Ok(())
}
