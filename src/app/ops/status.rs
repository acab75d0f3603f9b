//! Delivery status per recipient, for the originator.

use super::held::visible_message;
use super::{OpError, Trail};
use crate::app::AppState;
use crate::domain::PartnerId;
use crate::domain::time::ms_to_text;
use crate::store::outbox::RECEIVED;

/// One recipient's delivery as the sender sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    /// The recipient.
    pub partner: String,
    /// `queued`, `delivered`, `acknowledged`, or `erased`.
    pub status: String,
    /// When the status last changed.
    pub updated_at: String,
    /// For a recipient behind a peer gateway: that peer (SPEC §11).
    pub via: Option<String>,
    /// For a recipient behind a peer gateway: the latest receipt it sent
    /// (its own, or the family-wide `erased`).
    pub receipt: Option<String>,
    /// For a recipient behind a peer gateway, after an erasure here:
    /// `outstanding` until that gateway confirms it erased its copy.
    pub erasure: Option<&'static str>,
}

/// Every recipient's status of message `id`; only its sender may ask
/// (recipients hold it but may not see who else got it).
pub async fn status(
    app: &AppState,
    sender: &PartnerId,
    trail: &dyn Trail,
    id: &str,
) -> Result<(String, Vec<RecipientState>), OpError> {
    let (row, deliveries) = visible_message(app, trail, sender, id).await?;
    if row.sender != sender.as_str() {
        return Err(OpError::NotFound);
    }
    let erased_at = row.erased_at_ms.map(ms_to_text);
    let remote = deliveries.iter().any(|d| d.via.is_some());
    let receipts = if remote {
        app.store.receipts_of(&row.id, RECEIVED).await?
    } else {
        Vec::new()
    };
    let outstanding = if remote && erased_at.is_some() {
        app.store.erasures_outstanding(&row.id).await?
    } else {
        Vec::new()
    };
    let states = deliveries
        .into_iter()
        .map(|d| {
            let receipt = d.via.as_ref().and_then(|via| {
                receipts
                    .iter()
                    .filter(|r| {
                        r.recipient == d.recipient
                            || (r.recipient.is_empty() && &r.peer == via && r.kind == "erased")
                    })
                    .max_by_key(|r| r.at_ms)
                    .map(|r| r.jws.clone())
            });
            let erasure = d
                .via
                .as_ref()
                .filter(|via| outstanding.contains(via))
                .map(|_| "outstanding");
            let (status, updated_at) = match &erased_at {
                Some(at) => ("erased".to_owned(), at.clone()),
                None => (d.status.as_str().to_owned(), d.updated_at),
            };
            RecipientState {
                partner: d.recipient,
                status,
                updated_at,
                via: d.via,
                receipt,
                erasure,
            }
        })
        .collect();
    Ok((row.id, states))
}
