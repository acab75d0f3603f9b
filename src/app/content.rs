//! Message content at rest: sealing on submit, opening on read, and the
//! document built from stored rows.
//!
//! It lives in the application layer, with errors of its own, so that the
//! operations, the sweeper and the command line share one way of sealing
//! and opening; the HTTP layer only maps [`ContentError`] to a problem.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crypto::{DataKey, MasterKey, Sealed};
use crate::domain::{Classification, NewMessage};
use crate::store::{MessageRow, Store, StoreError};

/// Why content could not be sealed or opened. Causes are logged where
/// they happen; the variants say only what a caller may learn.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The message was erased after its row was read: gone, not damaged.
    #[error("the message was erased")]
    Erased,
    /// Tampering, a missing data key or a master key not in the ring.
    #[error("the stored content failed its integrity check")]
    Integrity,
    /// A fresh data key could not be made or used.
    #[error("content could not be sealed")]
    Sealing,
    /// The store failed while fetching the data key or digests.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The part of a message that is content and therefore sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Free-text basis for special categories (may name persons).
    pub special_categories_basis: Option<String>,
}

impl Content {
    /// The content of a new message.
    pub fn of(msg: &NewMessage) -> Self {
        Self {
            subject: msg.subject.clone(),
            body: msg.body.clone(),
            special_categories_basis: msg.personal_data.special_categories_basis.clone(),
        }
    }
}

const CONTENT_PART: &str = "content";

/// Seals content under a fresh data key; returns the sealed bytes and the
/// wrapped key.
pub fn seal(
    master: &MasterKey,
    message_id: &str,
    content: &Content,
) -> Result<(Vec<u8>, Sealed), ContentError> {
    let fail = |e: crate::crypto::CryptoError| {
        tracing::error!(error = %e, "sealing content failed");
        ContentError::Sealing
    };
    let key = DataKey::generate().map_err(fail)?;
    let plain = serde_json::to_vec(content).map_err(|_| ContentError::Sealing)?;
    let sealed = key.seal(message_id, CONTENT_PART, &plain).map_err(fail)?;
    let wrapped = key.wrap(master, message_id).map_err(fail)?;
    Ok((sealed, wrapped))
}

/// Opens a message's content, fetching and unwrapping its data key.
/// Tampering, a missing key or another master key is `ContentIntegrity`,
/// never garbage.
pub async fn open(
    store: &Store,
    master: &MasterKey,
    message_id: &str,
    sealed: &[u8],
) -> Result<Content, ContentError> {
    let Some(Sealed {
        master_key_id: key_id,
        wrapped_key: wrapped,
    }) = store.data_key(message_id).await?
    else {
        // The row was read before an erasure that committed since: the
        // message is gone, not damaged.
        if store
            .message(message_id)
            .await?
            .is_some_and(|m| m.erased_at_ms.is_some())
        {
            return Err(ContentError::Erased);
        }
        tracing::error!(
            message = message_id,
            "content present but its data key is missing"
        );
        return Err(ContentError::Integrity);
    };
    open_with(master, message_id, &key_id, &wrapped, sealed)
}

/// Opens content with an already fetched wrapped key.
pub(crate) fn open_with(
    master: &MasterKey,
    message_id: &str,
    key_id: &str,
    wrapped: &[u8],
    sealed: &[u8],
) -> Result<Content, ContentError> {
    let integrity = |what: &str| {
        tracing::error!(message = message_id, "{what}");
        ContentError::Integrity
    };
    let Some(master) = master.opener(key_id) else {
        return Err(integrity(
            "data key is wrapped under a master key not in the ring",
        ));
    };
    let key = DataKey::unwrap_key(master, message_id, wrapped)
        .map_err(|_| integrity("data key failed to unwrap"))?;
    let plain = key
        .open(message_id, CONTENT_PART, sealed)
        .map_err(|_| integrity("content failed authentication"))?;
    serde_json::from_slice(&plain).map_err(|_| integrity("content is not the expected document"))
}

/// The SHA-256 of each listed attachment, as its upload recorded it (what
/// label bindings and sender signatures state); ids without an upload are
/// left out.
pub(crate) async fn attachment_digests<'a>(
    store: &Store,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let mut out = std::collections::BTreeMap::new();
    for id in ids {
        if let Some(a) = store.attachment(id).await? {
            out.insert(id.to_owned(), a.sha256);
        }
    }
    Ok(out)
}

use crate::domain::time::ms_to_text;

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The display marking of a stored classification rank.
pub(crate) fn marking_of(rank: i64) -> &'static str {
    Classification::ALL
        .iter()
        .find(|c| c.rank() == rank)
        .map_or("UNKNOWN", |c| c.marking())
}

/// The whole message as a holder reads it: the submitted document plus
/// `id`, `from`, dates, the display marking and forward provenance.
pub(crate) fn message_json(row: &MessageRow, content: &Content, recipients: &[String]) -> Value {
    let mut pd = parsed(&row.personal_data);
    if let Some(obj) = pd.as_object_mut() {
        obj.insert(
            "special_categories_basis".into(),
            json!(content.special_categories_basis),
        );
    }
    let mut v = json!({
        "id": row.id,
        "from": row.sender,
        "recipients": recipients,
        "subject": content.subject,
        "body": content.body,
        "content_type": row.content_type,
        "label": parsed(&row.label),
        "marking": marking_of(row.classification),
        "evaluation": parsed(&row.evaluation),
        "purpose": row.purpose,
        "personal_data": pd,
        "case_ref": row.case_ref,
        "in_reply_to": row.in_reply_to,
        "attachments": parsed(&row.attachments),
        "retention_days": row.retention_days,
        "accepted_at": row.accepted_at,
        "retain_until": ms_to_text(row.retain_until_ms),
        "review_on": row.review_on,
    });
    if let (Some(obj), Some(from)) = (v.as_object_mut(), &row.forwarded_from) {
        obj.insert("originator".into(), json!(row.originator));
        obj.insert("forwarded_from".into(), json!(from));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::to_ms;

    #[test]
    fn seal_open_and_tamper() {
        let master = MasterKey::from_bytes(&[1u8; 32]).expect("key");
        let c = Content {
            subject: "s".into(),
            body: "b".into(),
            special_categories_basis: None,
        };
        let (sealed, wrapped) = seal(&master, "m1", &c).expect("seal");
        let opened = open_with(
            &master,
            "m1",
            &wrapped.master_key_id,
            &wrapped.wrapped_key,
            &sealed,
        )
        .expect("open");
        assert_eq!(opened, c);
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(matches!(
            open_with(
                &master,
                "m1",
                &wrapped.master_key_id,
                &wrapped.wrapped_key,
                &bad
            ),
            Err(ContentError::Integrity)
        ));
        assert!(matches!(
            open_with(
                &master,
                "m2",
                &wrapped.master_key_id,
                &wrapped.wrapped_key,
                &sealed
            ),
            Err(ContentError::Integrity)
        ));
    }

    #[test]
    fn times() {
        assert_eq!(ms_to_text(1_795_256_102_113), "2026-11-21T10:15:02.113Z");
        assert_eq!(
            to_ms(time::macros::datetime!(2026-11-21 10:15:02.113 UTC)),
            1_795_256_102_113
        );
        assert_eq!(marking_of(1), "RESTREINT UE/EU RESTRICTED");
    }
}
