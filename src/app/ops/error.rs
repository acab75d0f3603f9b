//! Why an operation did not happen, in the application's terms. The HTTP
//! layer maps each variant to a problem document in one place
//! (`api::problem`); the command line prints them.

use crate::app::content::ContentError;
use crate::domain::FieldError;
use crate::policy::Violation;
use crate::store::StoreError;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Nothing the caller may see is there (a missing id and a message the
    /// caller does not hold answer alike, so nothing leaks).
    #[error("no such message")]
    NotFound,
    /// The message's content was erased under its retention rules.
    #[error("the message was erased when its retention ended")]
    Erased,
    /// Only the message's originator may do this.
    #[error("only the originator of the information may do this")]
    NotOriginator,
    /// The policy refuses; all violations are listed.
    #[error("the policy does not allow this")]
    PolicyRefused(Vec<Violation>),
    /// The input is not valid; every field error is listed.
    #[error("the input is not valid")]
    Invalid(Vec<FieldError>),
    /// A label change that is not a raise.
    #[error("a label can only be raised, never lowered")]
    LabelNotRaised(Vec<FieldError>),
    /// A signature was presented and does not hold; the text says why.
    #[error("{0}")]
    InvalidSignature(String),
    /// The idempotency key was used with another submission.
    #[error("the idempotency key was already used with a different submission")]
    IdempotencyConflict,
    /// An upload larger than allowed.
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// An upload that ended before its body was complete.
    #[error("the upload ended before its body was complete; nothing was stored")]
    UploadIncomplete,
    /// Stored content failed its integrity check.
    #[error("the stored content failed its integrity check")]
    ContentIntegrity,
    /// The store refused or failed (hold, family changed, unavailable...);
    /// kept whole so its one mapping to an answer applies.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit record could not be written; nothing was done.
    #[error("the audit log cannot be written; the operation was not carried out")]
    AuditUnavailable,
    /// A relayed message's sender (or originator) does not live behind the
    /// calling peer gateway (SPEC §11).
    #[error("{0}")]
    OriginNotBehindPeer(String),
    /// A relayed message names recipients that are not this gateway's own
    /// partners.
    #[error("recipients not served by this gateway: {}", .0.join(", "))]
    RecipientNotLocal(Vec<String>),
    /// A relayed message's label binding does not hold.
    #[error("{0}")]
    BindingInvalid(String),
    /// The operator suspended the partner a peer relays for (SPEC §1: a
    /// suspended partner is refused on every call, through a peer too).
    #[error("partner {0} is suspended")]
    PartnerSuspended(String),
    /// The operator suspended the calling peer gateway.
    #[error("peer gateway {0} is suspended")]
    PeerSuspended(String),
    /// A receipt from a peer does not hold; the text says which and why.
    #[error("{0}")]
    ReceiptInvalid(String),
    /// Stored data the operation needs does not read back, or a key could
    /// not be used; details are logged where it happened.
    #[error("internal error")]
    Internal,
}

impl From<ContentError> for OpError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::Erased => OpError::Erased,
            ContentError::Integrity => OpError::ContentIntegrity,
            ContentError::Sealing => OpError::Internal,
            ContentError::Store(s) => OpError::Store(s),
        }
    }
}
