//! The writes the store performs, each a named struct in a module of its
//! own together with its SQL and its `apply`. The writer (`super::writer`)
//! batches jobs and commits; here is only what one job does inside the
//! batch's transaction.
//!
//! Instants cross this edge as unix milliseconds (`i64`, as
//! `domain::time::to_ms` gives them) and are spelt as RFC 3339 text, where
//! a column holds text, by `domain::time::ms_to_text` here, so the store
//! and the API can never disagree on a spelling.
//!
//! An op does its checks (SELECTs) before its first write, its audit
//! record, so a refusal leaves nothing behind (see `super::writer`).

mod acknowledge;
mod apply_notice;
mod erase;
mod erase_orphan;
mod grant;
mod hold;
mod judicial_use;
mod mark_delivered;
mod notice_outcome;
mod partner_state;
mod peer_state;
mod raise_label;
mod receive;
mod record_receipts;
mod reduce_audit;
mod relay_outcome;
mod review_keep;
mod rewrap;
mod submit;
mod tx;
mod upload;

pub use acknowledge::Acknowledge;
pub use apply_notice::{ApplyNotice, NoticeChange};
pub use erase::Erase;
pub use erase_orphan::EraseOrphan;
pub use grant::Grant;
pub use hold::SetHold;
pub use judicial_use::JudicialUse;
pub use mark_delivered::MarkDelivered;
pub use notice_outcome::NoticeOutcome;
pub use partner_state::SetPartnerState;
pub use peer_state::SetPeerState;
pub use raise_label::RaiseLabel;
pub use receive::Receive;
pub use record_receipts::RecordReceipts;
pub use reduce_audit::ReduceAudit;
pub use relay_outcome::RelayOutcome;
pub use review_keep::ReviewKeep;
pub use rewrap::Rewrap;
pub use submit::Submit;
pub use upload::Upload;

pub use tx::WriteOutput;
pub(super) use tx::{Applied, Tx};

use super::error::StoreError;
use super::expected::Expected;
use crate::audit::RecordDraft;

/// A write to perform together with its audit record.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WriteOp {
    /// Nothing but the audit record.
    AuditOnly,
    /// A write performed only if what it was decided on still holds.
    Checked(Checked),
    /// Store an accepted message (or a forward).
    Submit(Submit),
    /// First read by a recipient.
    MarkDelivered(MarkDelivered),
    /// A recipient acknowledges.
    Acknowledge(Acknowledge),
    /// Suspend or resume a partner.
    SetPartnerState(SetPartnerState),
    /// The originator grants a permission.
    Grant(Grant),
    /// A recipient records judicial use.
    JudicialUse(JudicialUse),
    /// Set or lift a legal hold.
    SetHold(SetHold),
    /// A `keep` review decision.
    ReviewKeep(ReviewKeep),
    /// Raise a family's label.
    RaiseLabel(RaiseLabel),
    /// Erase messages' content.
    Erase(Erase),
    /// Store an uploaded attachment.
    Upload(Upload),
    /// Remove an attachment no message references.
    EraseOrphan(EraseOrphan),
    /// Audit retention.
    ReduceAudit(ReduceAudit),
    /// Re-wrap data keys under a new master key.
    Rewrap(Rewrap),
    /// The end of an outbox row: the peer's answer, or giving up.
    RelayOutcome(RelayOutcome),
    /// A message a peer gateway relayed.
    Receive(Box<Receive>),
    /// Receipts a peer sent later.
    RecordReceipts(RecordReceipts),
    /// Suspend or resume a peer gateway.
    SetPeerState(SetPeerState),
    /// A holder applies a peer's lifecycle notice and signs its receipt.
    ApplyNotice(Box<ApplyNotice>),
    /// The origin records a peer's receipt for a notice.
    NoticeOutcome(NoticeOutcome),
}

/// `op`, only if what it was decided on still holds at commit (see
/// [`Expected`]); otherwise refused with nothing written.
#[derive(Debug, Clone)]
pub struct Checked {
    /// What the decision rested on.
    pub expected: Expected,
    /// The write (never itself a checked one).
    pub op: Box<WriteOp>,
}

impl WriteOp {
    /// This write, performed only if `expected` still holds at commit.
    #[must_use]
    pub fn checked(self, expected: Expected) -> Self {
        Self::Checked(Checked {
            expected,
            op: Box::new(self),
        })
    }

    /// The write itself and, for a checked one, what it must find.
    pub(super) fn unwrapped(&self) -> (&WriteOp, Option<&Expected>) {
        match self {
            WriteOp::Checked(c) => (&c.op, Some(&c.expected)),
            op => (op, None),
        }
    }

    /// Performs the write (after its check) in the batch's transaction.
    pub(super) async fn apply<'a>(&'a self, tx: &mut Tx<'_, 'a>, audit: RecordDraft) -> Applied {
        match self {
            WriteOp::AuditOnly => tx.append_done(audit).await,
            // Unwrapped by the writer; a nested one is never built.
            WriteOp::Checked(_) => Err(StoreError::Corrupt("nested checked write".into())),
            WriteOp::Submit(w) => w.apply(tx, audit).await,
            WriteOp::MarkDelivered(w) => w.apply(tx, audit).await,
            WriteOp::Acknowledge(w) => w.apply(tx, audit).await,
            WriteOp::SetPartnerState(w) => w.apply(tx, audit).await,
            WriteOp::Grant(w) => w.apply(tx, audit).await,
            WriteOp::JudicialUse(w) => w.apply(tx, audit).await,
            WriteOp::SetHold(w) => w.apply(tx, audit).await,
            WriteOp::ReviewKeep(w) => w.apply(tx, audit).await,
            WriteOp::RaiseLabel(w) => w.apply(tx, audit).await,
            WriteOp::Erase(w) => w.apply(tx, audit).await,
            WriteOp::Upload(w) => w.apply(tx, audit).await,
            WriteOp::EraseOrphan(w) => w.apply(tx, audit).await,
            WriteOp::ReduceAudit(w) => w.apply(tx, audit).await,
            WriteOp::Rewrap(w) => w.apply(tx, audit).await,
            WriteOp::RelayOutcome(w) => w.apply(tx, audit).await,
            WriteOp::Receive(w) => w.apply(tx, audit).await,
            WriteOp::RecordReceipts(w) => w.apply(tx, audit).await,
            WriteOp::SetPeerState(w) => w.apply(tx, audit).await,
            WriteOp::ApplyNotice(w) => w.apply(tx, audit).await,
            WriteOp::NoticeOutcome(w) => w.apply(tx, audit).await,
        }
    }
}

/// `From` each write's struct, so callers write `Grant { .. }.into()`.
macro_rules! into_write_op {
    ($($name:ident),+) => {$(
        impl From<$name> for WriteOp {
            fn from(w: $name) -> Self {
                WriteOp::$name(w)
            }
        }
    )+};
}

into_write_op!(
    Checked,
    Submit,
    MarkDelivered,
    Acknowledge,
    SetPartnerState,
    Grant,
    JudicialUse,
    SetHold,
    ReviewKeep,
    RaiseLabel,
    Erase,
    Upload,
    EraseOrphan,
    ReduceAudit,
    Rewrap,
    RelayOutcome,
    RecordReceipts,
    SetPeerState,
    NoticeOutcome
);

impl From<Receive> for WriteOp {
    fn from(w: Receive) -> Self {
        WriteOp::Receive(Box::new(w))
    }
}

impl From<ApplyNotice> for WriteOp {
    fn from(w: ApplyNotice) -> Self {
        WriteOp::ApplyNotice(Box::new(w))
    }
}
