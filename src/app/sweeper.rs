//! The retention sweeper: content does not outlive its retention.
//!
//! A sweep erases every message whose `retain_until` has passed and which
//! is not under a legal hold (each erasure one `erase` audit record naming
//! the rule that set the date), removes uploads no message took up within
//! 24 hours, and deletes the blob files of attachments whose last carrying
//! message was erased. The gateway runs it every
//! `retention.sweep_interval_secs`; `brdo retention run` runs it once, also
//! as if at another time (`--as-of`).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::app::ops::erase::{Erasure, delete_blobs, erase};
use crate::audit::record::{Action, Actor, Outcome, RecordDraft, format_at};
use crate::blobs::{BlobState, BlobStore};
use crate::domain::time::to_ms;
use crate::store::writes::{EraseOrphan, ReduceAudit};
use crate::store::{ReceiptSigner, Store, StoreError, WriteOp};

/// Unreferenced uploads are removed after this long.
pub(crate) const ORPHAN_AFTER: Duration = Duration::hours(24);
const PAGE: u32 = 500;

/// What one sweep did (or, dry, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Messages erased, in the order erased.
    pub erased: Vec<String>,
    /// Unreferenced uploads removed.
    pub orphans: Vec<String>,
    /// Audit records reduced to their hashes (audit retention).
    pub audit_reduced: u64,
}

/// How to sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// Sweep as if it were this time.
    pub as_of: OffsetDateTime,
    /// Report only.
    pub dry_run: bool,
    /// Days audit records keep their fields (`audit.retention_days`).
    pub audit_retention_days: u32,
}

/// Reduces audit records older than the audit retention to their hashes,
/// in bounded steps; returns how many were reduced. The reduction is one
/// `erase` record by the system naming the range.
pub async fn reduce_audit(store: &Store, opts: &SweepOptions) -> Result<u64, StoreError> {
    let cutoff = opts.as_of - Duration::days(i64::from(opts.audit_retention_days));
    let Some(through) = store.audit_seq_before(to_ms(cutoff)).await? else {
        return Ok(0);
    };
    let first = store.audit_first_kept().await?.unwrap_or(through + 1);
    if first > through {
        return Ok(0);
    }
    let count = through - first + 1;
    if opts.dry_run {
        return Ok(count);
    }
    let draft = erase_draft(
        None,
        Vec::new(),
        json!({
            "rule": {"kind": "audit_retention", "days": opts.audit_retention_days},
            "reduced_from_seq": first,
            "reduced_through_seq": through,
            "as_of": format_at(opts.as_of),
        }),
    );
    let op = WriteOp::from(ReduceAudit {
        through_seq: through,
        tombstones_before_ms: to_ms(cutoff),
    });
    store.write(op, draft).await?;
    Ok(count)
}

/// The audit draft of a system erasure.
pub(crate) fn erase_draft(
    message_id: Option<&str>,
    counterparts: Vec<String>,
    details: Value,
) -> RecordDraft {
    RecordDraft {
        at: format_at(OffsetDateTime::now_utc()),
        actor: Actor::system("retention"),
        action: Action::Erase,
        message_id: message_id.map(str::to_owned),
        counterparts,
        outcome: Outcome::Allowed,
        code: None,
        justification: None,
        request_id: None,
        node: None,
        details: details.as_object().cloned(),
    }
}

/// One sweep as if at `as_of`. With `dry_run`, nothing is written and the
/// report lists what would be erased. Erasures are announced to the peers
/// holding copies; without a signer no `erased` receipt goes to the peers
/// a message came from (see [`sweep_with`]).
pub async fn sweep(
    store: &Store,
    blobs: &BlobStore,
    opts: &SweepOptions,
) -> Result<SweepReport, StoreError> {
    sweep_with(store, blobs, opts, None).await
}

/// The signer of the `erased` receipts a holder owes the peers its
/// messages came from (SPEC §11), for a gateway with a federation id: the
/// command line's sweep uses it as the gateway's does.
pub fn receipt_signer(
    config: &crate::config::Config,
) -> Result<Option<ReceiptSigner>, crate::crypto::jose::JoseError> {
    let Some(own) = config.federation.id.clone() else {
        return Ok(None);
    };
    let key = crate::crypto::jose::JwsKey::from_pem_file(&config.envelope_key_path())?;
    Ok(Some(ReceiptSigner {
        own,
        key: std::sync::Arc::new(key),
    }))
}

/// [`sweep`], with `receipts` signing the `erased` receipts owed to the
/// peers the erased messages came from, queued in each erasure's
/// transaction.
pub async fn sweep_with(
    store: &Store,
    blobs: &BlobStore,
    opts: &SweepOptions,
    receipts: Option<&ReceiptSigner>,
) -> Result<SweepReport, StoreError> {
    let (as_of, dry_run) = (opts.as_of, opts.dry_run);
    let mut report = SweepReport::default();
    let as_of_ms = to_ms(as_of);
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    loop {
        let due = store.due_for_erasure(as_of_ms, PAGE).await?;
        let fresh: Vec<_> = due
            .into_iter()
            .filter(|d| !skipped.contains(&d.id))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for d in fresh {
            if dry_run {
                skipped.insert(d.id.clone());
                report.erased.push(d.id);
                continue;
            }
            let Some(msg) = store.message(&d.id).await? else {
                continue;
            };
            let mut parties: Vec<String> = store
                .deliveries(&d.id)
                .await?
                .into_iter()
                .map(|x| x.recipient)
                .collect();
            parties.insert(0, msg.sender.clone());
            parties.dedup();
            let rule: Value = serde_json::from_str(&d.retention_basis).unwrap_or(Value::Null);
            let draft = erase_draft(
                Some(&d.id),
                parties,
                json!({
                    "rule": rule,
                    "retain_until": crate::domain::time::ms_to_text(d.retain_until_ms),
                    "as_of": format_at(as_of),
                }),
            );
            let what = Erasure {
                message_ids: vec![d.id.clone()],
                family_of: None,
                notice: Some("retention period ended (retain_until)".into()),
                receipts: receipts.cloned(),
            };
            match erase(store, blobs, what, draft).await {
                Ok(_) => report.erased.push(d.id),
                // Held or erased since the query: not this sweep's to erase.
                Err(StoreError::Held | StoreError::AlreadyErased | StoreError::NotFound) => {
                    skipped.insert(d.id);
                }
                Err(e) => return Err(e),
            }
        }
    }

    report.orphans = sweep_orphans(store, blobs, opts).await?;
    report.audit_reduced = reduce_audit(store, opts).await?;
    if !dry_run {
        sweep_blob_strays(store, blobs).await?;
        // Erasures by this sweep and any since the last (review decisions
        // on any node).
        store.purge_erased().await?;
    }
    Ok(report)
}

/// Removes uploads no message took up within [`ORPHAN_AFTER`] (with
/// `dry_run`, lists them); returns their ids.
async fn sweep_orphans(
    store: &Store,
    blobs: &BlobStore,
    opts: &SweepOptions,
) -> Result<Vec<String>, StoreError> {
    let (as_of, dry_run) = (opts.as_of, opts.dry_run);
    let mut orphans_out = Vec::new();
    let cutoff = to_ms(as_of - ORPHAN_AFTER);
    let orphans = store.orphan_attachments(cutoff, 10_000).await?;
    for id in orphans {
        if dry_run {
            orphans_out.push(id);
            continue;
        }
        let draft = erase_draft(
            None,
            Vec::new(),
            json!({"attachment_id": id, "rule": "unreferenced_upload_24h"}),
        );
        let op = WriteOp::from(EraseOrphan {
            attachment_id: id.clone(),
            at_ms: to_ms(OffsetDateTime::now_utc()),
        });
        match store.write(op, draft).await {
            Ok((out, _)) => {
                delete_blobs(blobs, &out).await;
                orphans_out.push(id);
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(orphans_out)
}

/// Removes attachment files no attachment needs (see
/// [`BlobStore::sweep_strays`]): the gateway runs it at start and the
/// sweeper on every run, so an erased attachment whose file could not be
/// deleted at its erasure goes at the next run. A file system failure is
/// logged and left to the next run; it never stops the sweep.
pub(crate) async fn sweep_blob_strays(
    store: &Store,
    blobs: &BlobStore,
) -> Result<usize, StoreError> {
    let states = store.attachment_states().await?;
    let state = |name: &str| match states.get(name) {
        Some(false) => BlobState::Live,
        Some(true) => BlobState::Erased,
        None => BlobState::Unknown,
    };
    match blobs.sweep_strays(state).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(removed = n, "stray attachment files removed");
            }
            Ok(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot sweep stray attachment files; retried at the next run");
            Ok(0)
        }
    }
}

/// [`sweep`], unless another node is sweeping the same database now
/// (`Ok(None)`): several nodes on one PostgreSQL database take turns
/// through an advisory lock instead of erasing the same messages twice. A
/// dry run changes nothing and needs no turn.
pub async fn sweep_exclusive(
    store: &Store,
    blobs: &BlobStore,
    opts: &SweepOptions,
    receipts: Option<&ReceiptSigner>,
) -> Result<Option<SweepReport>, StoreError> {
    if opts.dry_run {
        return sweep(store, blobs, opts).await.map(Some);
    }
    let Some(lock) = store.try_sweep_lock().await? else {
        return Ok(None);
    };
    let report = sweep_with(store, blobs, opts, receipts).await;
    lock.release().await;
    report.map(Some)
}

/// Runs [`sweep_exclusive`] every `interval` until the task is dropped.
pub(crate) async fn run_periodically(
    app: std::sync::Arc<crate::app::AppState>,
    interval: std::time::Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let opts = SweepOptions {
            as_of: OffsetDateTime::now_utc(),
            dry_run: false,
            audit_retention_days: app.config.audit.retention_days,
        };
        let signer = app.receipt_signer();
        match sweep_exclusive(&app.store, &app.blobs, &opts, signer.as_ref()).await {
            Ok(None) => tracing::debug!("another node is sweeping retention; skipped"),
            Ok(Some(r)) => {
                if !r.erased.is_empty() {
                    app.wake_relay();
                }
                app.metrics
                    .sweep(r.erased.len(), r.orphans.len(), r.audit_reduced);
                if !r.erased.is_empty() || !r.orphans.is_empty() || r.audit_reduced > 0 {
                    tracing::info!(
                        erased = r.erased.len(),
                        orphans = r.orphans.len(),
                        audit_reduced = r.audit_reduced,
                        "retention sweep"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "retention sweep failed; retrying next interval"),
        }
    }
}
