//! The document of one message for one peer (SPEC §11): the message is
//! opened only now, when it leaves, so the outbox never holds content and
//! a message erased before it left is never sent.

use serde_json::Value;

use crate::app::AppState;
use crate::app::content::{self, ContentError};
use crate::app::ops::signed;
use crate::blobs::BlobReader;
use crate::crypto::{DataKey, Sealed};
use crate::domain::time::ms_to_text;
use crate::federation::{RelayedAttachment, RelayedMessage};
use crate::store::{AttachmentRow, RelaySource, StoreError};

/// Why a message cannot be relayed now.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Erased (or gone) before it left: the row is dropped, nothing sent.
    #[error("the message was erased before it was relayed")]
    Erased,
    /// The stored content or an attachment fails its integrity check.
    #[error("stored content failed its integrity check")]
    Integrity,
    /// The label binding cannot be signed.
    #[error("cannot sign the label binding")]
    Binding,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ContentError> for OutboundError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::Erased => Self::Erased,
            ContentError::Integrity | ContentError::Sealing => Self::Integrity,
            ContentError::Store(s) => Self::Store(s),
        }
    }
}

/// The relayed document of message `id` for the recipients behind `peer`,
/// with the origin's label binding over it; `Ok(None)` when none of its
/// recipients lives behind `peer` (nothing to send). Its attachments name
/// no upload yet: the sender streams each one's bytes to the peer first
/// ([`open_attachment`]) and fills in the id the peer answered.
pub async fn document(
    app: &AppState,
    id: &str,
    peer: &str,
) -> Result<Option<RelayedMessage>, OutboundError> {
    let mut sources = app.store.relay_sources(&[id.to_owned()], peer).await?;
    let source = sources.remove(id).ok_or(OutboundError::Erased)?;
    let mut doc = build(app, source).await?;
    sign_bindings(app, doc.iter_mut().collect())?;
    Ok(doc)
}

/// The documents of the messages `ids` for `peer`, read together (one
/// query per table for all of them), in the order of `ids`: each as
/// [`document`] would give it, their label bindings signed together
/// (one signature over their Merkle root, `federation::batch_sig`).
pub async fn documents(
    app: &AppState,
    ids: &[String],
    peer: &str,
) -> Result<Vec<Result<Option<RelayedMessage>, OutboundError>>, OutboundError> {
    let mut sources = app.store.relay_sources(ids, peer).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(match sources.remove(id) {
            Some(source) => build(app, source).await,
            None => Err(OutboundError::Erased),
        });
    }
    let built: Vec<&mut RelayedMessage> = out
        .iter_mut()
        .filter_map(|d| d.as_mut().ok().and_then(Option::as_mut))
        .collect();
    if sign_bindings(app, built).is_err() {
        for d in &mut out {
            if matches!(d, Ok(Some(_))) {
                *d = Err(OutboundError::Binding);
            }
        }
    }
    Ok(out)
}

/// Signs the label bindings of `docs` with the envelope key, together.
fn sign_bindings(app: &AppState, docs: Vec<&mut RelayedMessage>) -> Result<(), OutboundError> {
    let digests: Vec<Vec<(String, String)>> = docs
        .iter()
        .map(|d| {
            d.attachments
                .iter()
                .map(|a| (a.id.clone(), a.sha256.clone()))
                .collect()
        })
        .collect();
    type Lookup<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let lookups: Vec<Lookup<'_>> = digests
        .iter()
        .map(|list| {
            Box::new(move |aid: &str| {
                list.iter()
                    .find(|(i, _)| i == aid)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default()
            }) as Lookup<'_>
        })
        .collect();
    let views: Vec<(serde_json::Value, crate::binding::DigestOf<'_>)> = docs
        .iter()
        .zip(&lookups)
        .map(|(d, f)| (d.binding_view(), &**f))
        .collect();
    let tokens =
        crate::binding::sign_all(&app.envelope_key, &views).map_err(|_| OutboundError::Binding)?;
    for (doc, token) in docs.into_iter().zip(tokens) {
        doc.binding = token;
    }
    Ok(())
}

/// Opens a message read for the relay and builds its document (its
/// binding is signed by the caller, with the others read with it).
async fn build(
    app: &AppState,
    source: RelaySource,
) -> Result<Option<RelayedMessage>, OutboundError> {
    let RelaySource {
        message: row,
        key,
        recipients,
        signatures,
    } = source;
    let Some(sealed) = row
        .content
        .as_deref()
        .filter(|_| row.erased_at_ms.is_none())
    else {
        return Err(OutboundError::Erased);
    };
    let opened = match key {
        Some(key) => content::open_with(
            &app.master_key,
            &row.id,
            &key.master_key_id,
            &key.wrapped_key,
            sealed,
        )?,
        // Erased between the reads, or damaged: `open` tells which.
        None => content::open(&app.store, &app.master_key, &row.id, sealed).await?,
    };
    if recipients.is_empty() {
        return Ok(None);
    }
    let personal_data = personal_data(&row.personal_data, opened.special_categories_basis.clone());
    let parsed = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
    let mut doc = RelayedMessage {
        v: 1,
        id: row.id.clone(),
        originator: row.originator.clone(),
        sender: row.sender.clone(),
        officer: row.officer.clone(),
        recipients,
        subject: opened.subject,
        body: opened.body,
        content_type: row.content_type.clone(),
        label: parsed(&row.label),
        evaluation: parsed(&row.evaluation),
        purpose: row.purpose.clone(),
        personal_data,
        case_ref: row.case_ref.clone(),
        in_reply_to: row.in_reply_to.clone(),
        forwarded_from: row.forwarded_from.clone(),
        family: row.root_id.clone(),
        accepted_at: row.accepted_at.clone(),
        retain_until: ms_to_text(row.retain_until_ms),
        review_on: row.review_on.clone(),
        attachments: attachments(app, &row.attachments).await?,
        binding: String::new(),
        signatures: Vec::new(),
    };
    if let Value::Array(s) = signed::delivered(&signatures) {
        doc.signatures = s;
    }
    Ok(Some(doc))
}

/// The stored personal-data facts with the (sealed, now opened) basis of
/// any special categories, as the document carries them.
fn personal_data(stored: &str, basis: Option<String>) -> Value {
    let mut value: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "special_categories_basis".into(),
            basis.map_or(Value::Null, Value::String),
        );
    }
    value
}

/// The message's attachments, in the message's order (no upload yet).
async fn attachments(
    app: &AppState,
    listed: &str,
) -> Result<Vec<RelayedAttachment>, OutboundError> {
    let ids: Vec<String> = serde_json::from_str(listed).unwrap_or_default();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let att = app
            .store
            .attachment(&id)
            .await?
            .filter(|a| a.erased_at_ms.is_none())
            .ok_or(OutboundError::Erased)?;
        out.push(RelayedAttachment {
            id,
            content_type: att.content_type,
            sha256: att.sha256,
            upload: String::new(),
        });
    }
    Ok(out)
}

/// Attachment `id`'s row and the reader of its plaintext, chunk by chunk
/// (each chunk authenticated as it is read), for streaming to a peer.
pub async fn open_attachment(
    app: &AppState,
    id: &str,
) -> Result<(AttachmentRow, BlobReader), OutboundError> {
    let att = app
        .store
        .attachment(id)
        .await?
        .filter(|a| a.erased_at_ms.is_none())
        .ok_or(OutboundError::Erased)?;
    let Some(Sealed {
        master_key_id,
        wrapped_key,
    }) = app.store.data_key(id).await?
    else {
        return Err(OutboundError::Integrity);
    };
    let master = app
        .master_key
        .opener(&master_key_id)
        .ok_or(OutboundError::Integrity)?;
    let key =
        DataKey::unwrap_key(master, id, &wrapped_key).map_err(|_| OutboundError::Integrity)?;
    let reader = app
        .blobs
        .reader(id, key)
        .await
        .map_err(|_| OutboundError::Integrity)?;
    Ok((att, reader))
}
