//! Who asks for an operation, and where the operation writes down what
//! the audit record of the request must say.

use serde_json::Value;

use crate::audit::record::{Action, Outcome, RecordDraft};
use crate::domain::PartnerId;

/// The facts an operation gathers for the audit record of the request
/// that caused it. The HTTP layer keeps them per request (and writes the
/// record of a refusal from them); other callers keep their own. An
/// operation notes facts as soon as it knows them, so a refusal later on
/// is recorded with everything learned up to that point.
pub trait Trail: Send + Sync {
    /// The message concerned.
    fn message(&self, id: &str);
    /// The other partners concerned.
    fn counterparts(&self, parties: Vec<String>);
    /// The justification given.
    fn justification(&self, text: &str);
    /// A structured fact (never content).
    fn detail(&self, key: &str, value: Value);
    /// The record to write for `action`, from the facts noted so far.
    fn draft(&self, action: Action, outcome: Outcome) -> RecordDraft;
    /// The operation wrote the request's record itself, at `seq`.
    fn audited(&self, seq: u64);
}

/// A partner calling an operation, as the connection identified it.
pub struct Caller<'a> {
    /// The partner on the connection.
    pub partner: PartnerId,
    /// The acting officer (required by the caller's layer where the
    /// operation needs one).
    pub officer: String,
    /// Where the operation notes facts for the audit record.
    pub trail: &'a dyn Trail,
}

impl Caller<'_> {
    /// Notes the counterparts from any list of partner-like values.
    pub(crate) fn counterparts<I: IntoIterator<Item = S>, S: ToString>(&self, parties: I) {
        self.trail
            .counterparts(parties.into_iter().map(|p| p.to_string()).collect());
    }
}
