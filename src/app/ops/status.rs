//! Delivery status per recipient, for the originator.

use super::held::visible_message;
use super::{OpError, Trail};
use crate::app::AppState;
use crate::domain::PartnerId;
use crate::domain::time::ms_to_text;

/// One recipient's delivery as the sender sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    /// The recipient.
    pub partner: String,
    /// `queued`, `delivered`, `acknowledged`, or `erased`.
    pub status: String,
    /// When the status last changed.
    pub updated_at: String,
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
    let states = deliveries
        .into_iter()
        .map(|d| match &erased_at {
            Some(at) => RecipientState {
                partner: d.recipient,
                status: "erased".into(),
                updated_at: at.clone(),
            },
            None => RecipientState {
                partner: d.recipient,
                status: d.status.as_str().to_owned(),
                updated_at: d.updated_at,
            },
        })
        .collect();
    Ok((row.id, states))
}
