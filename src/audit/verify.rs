//! Walking a log and naming the first record that is not what it claims.

use super::record::{AuditRecord, GENESIS_HASH};

/// The first problem found in a log, with the seq a person should look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainFault {
    /// Records are missing before this one (removed, or out of order).
    #[error("record {expected} is missing (the next stored record is {found})")]
    Missing {
        /// The seq that should have come next.
        expected: u64,
        /// The seq that came instead.
        found: u64,
    },
    /// A seq appears that should not be there (inserted or duplicated).
    #[error("record {seq} is out of sequence (expected {expected})")]
    OutOfSequence {
        /// The unexpected seq.
        seq: u64,
        /// The seq that should have come.
        expected: u64,
    },
    /// The record does not link to its predecessor (reordered, inserted or
    /// the predecessor was altered together with its hash).
    #[error("record {seq} does not link to record {prev}: prev_hash differs")]
    BrokenLink {
        /// The record.
        seq: u64,
        /// Its predecessor.
        prev: u64,
    },
    /// The record's fields do not hash to its stored hash (altered).
    #[error("record {seq} was altered: its fields do not match its hash")]
    Altered {
        /// The record.
        seq: u64,
    },
}

impl ChainFault {
    /// The first bad seq.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Missing { expected, .. } => *expected,
            Self::OutOfSequence { seq, .. }
            | Self::BrokenLink { seq, .. }
            | Self::Altered { seq } => *seq,
        }
    }
}

/// Checks records one at a time, in stored order, holding O(1) state so a
/// log of any length can be streamed through it.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: u64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// Starts at the beginning of the log.
    pub fn new() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }

    /// Checks the next record. `reduced` records (whose fields were dropped
    /// at the end of audit retention) are only checked for their link.
    pub fn push(&mut self, rec: &AuditRecord, reduced: bool) -> Result<(), ChainFault> {
        if rec.seq > self.next_seq {
            return Err(ChainFault::Missing {
                expected: self.next_seq,
                found: rec.seq,
            });
        }
        if rec.seq < self.next_seq {
            return Err(ChainFault::OutOfSequence {
                seq: rec.seq,
                expected: self.next_seq,
            });
        }
        if rec.prev_hash != self.prev_hash {
            return Err(ChainFault::BrokenLink {
                seq: rec.seq,
                prev: rec.seq - 1,
            });
        }
        if !reduced && !rec.hash_matches() {
            return Err(ChainFault::Altered { seq: rec.seq });
        }
        self.next_seq += 1;
        self.prev_hash.clone_from(&rec.hash);
        Ok(())
    }

    /// Records checked so far.
    pub fn count(&self) -> u64 {
        self.next_seq - 1
    }

    /// The hash of the last record checked.
    pub fn head(&self) -> &str {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Action, Actor, Outcome, RecordDraft};

    fn log(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let r = RecordDraft {
                    at: format!("2026-11-21T10:00:{:02}.000Z", seq % 60),
                    actor: Actor::system("test"),
                    action: Action::Collect,
                    message_id: None,
                    counterparts: vec![],
                    outcome: Outcome::Allowed,
                    code: None,
                    justification: None,
                    request_id: Some(format!("r{seq}")),
                    node: None,
                    details: None,
                }
                .chain(seq, &prev)
                .expect("chain");
                prev.clone_from(&r.hash);
                r
            })
            .collect()
    }

    fn first_fault(records: &[AuditRecord]) -> Option<ChainFault> {
        let mut v = ChainVerifier::new();
        records.iter().find_map(|r| v.push(r, false).err())
    }

    #[test]
    fn intact_log_verifies() {
        let l = log(10);
        assert_eq!(first_fault(&l), None);
    }

    #[test]
    fn altered_removed_inserted_reordered() {
        let mut l = log(10);
        l[4].draft.outcome = Outcome::Denied;
        assert_eq!(first_fault(&l).map(|f| f.seq()), Some(5));

        let mut l = log(10);
        l.remove(3);
        assert_eq!(
            first_fault(&l),
            Some(ChainFault::Missing {
                expected: 4,
                found: 5
            })
        );

        let mut l = log(10);
        let extra = l[2].clone();
        l.insert(3, extra);
        assert_eq!(first_fault(&l).map(|f| f.seq()), Some(3));

        // Stored out of order: record 6 is missing where it should be.
        let mut l = log(10);
        l.swap(5, 6);
        assert_eq!(
            first_fault(&l),
            Some(ChainFault::Missing {
                expected: 6,
                found: 7
            })
        );

        // Reordered in place (contents swapped, seq numbers kept), as an
        // attacker editing rows would: record 6 no longer links to 5.
        let mut l = log(10);
        l.swap(5, 6);
        l[5].seq = 6;
        l[6].seq = 7;
        assert_eq!(
            first_fault(&l),
            Some(ChainFault::BrokenLink { seq: 6, prev: 5 })
        );

        // Renumbered after a removal: the link breaks where the hole was.
        let mut l = log(10);
        l.remove(3);
        for r in &mut l[3..] {
            r.seq -= 1;
        }
        assert_eq!(first_fault(&l).map(|f| f.seq()), Some(4));
    }

    #[test]
    fn reduced_records_keep_the_chain() {
        let mut l = log(5);
        l[1].draft.justification = None;
        l[1].draft.request_id = None;
        let mut v = ChainVerifier::new();
        for (i, r) in l.iter().enumerate() {
            v.push(r, i == 1).expect("reduced record links");
        }
        assert_eq!(v.count(), 5);
    }
}
