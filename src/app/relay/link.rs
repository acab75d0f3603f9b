//! One peer as the relay speaks to it: its client and its keys. Apart from
//! the sending of rows and of notices, which both take it.

use super::peer_client::PeerClient;
use crate::crypto::jose::JwsKeys;
use crate::domain::PartnerId;

/// What this gateway needs to talk to one peer.
#[derive(Debug)]
pub struct PeerLink {
    /// The peer's id.
    pub peer: PartnerId,
    /// This gateway's id.
    pub own: PartnerId,
    /// The client.
    pub client: PeerClient,
    /// The peer's envelope key (receipts).
    pub keys: JwsKeys,
}
