//! Walking a log and naming the first record that is not what it claims.

use super::merkle::{CompactRange, leaf_hash};
use super::record::{AuditRecord, GENESIS_HASH, StoredFields, decode_hash};
use crate::crypto::jose::CheckpointVerifier;

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
    /// A record was reduced to its hash although a later-kept record
    /// precedes it: audit retention reduces the oldest records only.
    #[error(
        "record {seq} was reduced to its hash out of order (audit retention only reduces the oldest records)"
    )]
    ReducedOutOfOrder {
        /// The record.
        seq: u64,
    },
    /// A signed checkpoint's root does not match the records it covers: a
    /// record after the previous good checkpoint was altered and the chain
    /// rewritten to hide it.
    #[error(
        "the checkpoint of tree size {tree_size} does not match the records: a record from {first} to {tree_size} was altered and the chain rewritten"
    )]
    CheckpointMismatch {
        /// The checkpoint's size.
        tree_size: u64,
        /// First record that may have been altered.
        first: u64,
    },
    /// A checkpoint's signature does not verify with the published key.
    #[error("the checkpoint of tree size {tree_size} is not validly signed: {reason}")]
    BadSignature {
        /// The checkpoint's size.
        tree_size: u64,
        /// Why.
        reason: String,
    },
    /// A stored row cannot be read back as a record (damaged in place).
    #[error("the record after {after} cannot be read back: the stored row is damaged")]
    Unreadable {
        /// The last record read before it.
        after: u64,
    },
    /// A signed checkpoint covers more records than the log holds: the
    /// newest records were removed.
    #[error(
        "records {first} to {tree_size} are missing: a checkpoint was signed over {tree_size} records"
    )]
    Truncated {
        /// First missing record.
        first: u64,
        /// The checkpoint's size.
        tree_size: u64,
    },
}

impl ChainFault {
    /// The first bad seq.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Missing { expected, .. } => *expected,
            Self::OutOfSequence { seq, .. }
            | Self::BrokenLink { seq, .. }
            | Self::Altered { seq }
            | Self::ReducedOutOfOrder { seq } => *seq,
            Self::CheckpointMismatch { first, .. } | Self::Truncated { first, .. } => *first,
            Self::BadSignature { tree_size, .. } => *tree_size,
            Self::Unreadable { after } => after + 1,
        }
    }
}

/// Checks records one at a time, in stored order, holding O(1) state so a
/// log of any length can be streamed through it.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: u64,
    prev_hash: String,
    prev_bytes: [u8; 32],
    canonical: String,
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
            prev_bytes: [0u8; 32],
            canonical: String::with_capacity(1024),
        }
    }

    /// Checks the next record and returns its hash as bytes (the Merkle
    /// leaf data). `reduced` records (whose fields were dropped at the end
    /// of audit retention) are only checked for their link.
    pub fn push(&mut self, rec: &AuditRecord, reduced: bool) -> Result<[u8; 32], ChainFault> {
        self.check(rec.seq, &rec.prev_hash, &rec.hash, reduced, |out| {
            rec.draft.canonical_into(rec.seq, out)
        })
    }

    /// [`push`](Self::push) for a record read as borrowed columns (`None`
    /// fields when reduced): the bulk path, with no allocation per record.
    pub(crate) fn push_stored(
        &mut self,
        seq: u64,
        fields: Option<&StoredFields<'_>>,
        prev_hash: &str,
        hash: &str,
    ) -> Result<[u8; 32], ChainFault> {
        self.check(seq, prev_hash, hash, fields.is_none(), |out| {
            if let Some(f) = fields {
                f.canonical_into(out);
            }
        })
    }

    fn check(
        &mut self,
        seq: u64,
        prev_hash: &str,
        hash: &str,
        reduced: bool,
        canonical: impl FnOnce(&mut String),
    ) -> Result<[u8; 32], ChainFault> {
        if seq > self.next_seq {
            return Err(ChainFault::Missing {
                expected: self.next_seq,
                found: seq,
            });
        }
        if seq < self.next_seq {
            return Err(ChainFault::OutOfSequence {
                seq,
                expected: self.next_seq,
            });
        }
        if prev_hash != self.prev_hash {
            return Err(ChainFault::BrokenLink { seq, prev: seq - 1 });
        }
        let bytes = decode_hash(hash).map_err(|_| ChainFault::Altered { seq })?;
        if !reduced {
            self.canonical.clear();
            canonical(&mut self.canonical);
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(&self.prev_bytes);
            ctx.update(self.canonical.as_bytes());
            if ctx.finish().as_ref() != bytes {
                return Err(ChainFault::Altered { seq });
            }
        }
        self.next_seq += 1;
        self.prev_hash.clear();
        self.prev_hash.push_str(hash);
        self.prev_bytes = bytes;
        Ok(bytes)
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

/// A checkpoint to check while walking the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointClaim {
    /// Records it covers.
    pub tree_size: u64,
    /// Its root (hex).
    pub root_hash: String,
    /// The compact JWS, checked with the published key.
    pub jws: String,
}

/// What a complete verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Records checked.
    pub records: u64,
    /// Leading records reduced to their hashes (audit retention).
    pub reduced: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: usize,
    /// Hash of the last record.
    pub head: String,
    /// Root over all records.
    pub root: String,
}

/// Verifies a whole log streamed record by record: the hash chain, that
/// reduced records form a prefix, the RFC 9162 root at every checkpoint,
/// each checkpoint's signature, and that no checkpoint covers more records
/// than the log holds. O(log n) memory.
pub struct LogVerifier<'a> {
    chain: ChainVerifier,
    tree: CompactRange,
    claims: Vec<CheckpointClaim>,
    next_claim: usize,
    last_good: u64,
    kept_seen: bool,
    reduced: u64,
    keys: &'a CheckpointVerifier,
}

impl<'a> LogVerifier<'a> {
    /// Starts a verification against `claims` (any order) signed by `keys`.
    pub fn new(mut claims: Vec<CheckpointClaim>, keys: &'a CheckpointVerifier) -> Self {
        claims.sort_by_key(|c| c.tree_size);
        Self {
            chain: ChainVerifier::new(),
            tree: CompactRange::new(),
            claims,
            next_claim: 0,
            last_good: 0,
            kept_seen: false,
            reduced: 0,
            keys,
        }
    }

    /// Checks the next record.
    pub fn push(&mut self, rec: &AuditRecord, reduced: bool) -> Result<(), ChainFault> {
        let hash = self.chain.push(rec, reduced)?;
        self.after_chain(rec.seq, reduced, &hash)
    }

    /// Checks the next record, read as borrowed columns (`None` = reduced).
    pub(crate) fn push_stored(
        &mut self,
        seq: u64,
        fields: Option<&StoredFields<'_>>,
        prev_hash: &str,
        hash: &str,
    ) -> Result<(), ChainFault> {
        let bytes = self.chain.push_stored(seq, fields, prev_hash, hash)?;
        self.after_chain(seq, fields.is_none(), &bytes)
    }

    fn after_chain(&mut self, seq: u64, reduced: bool, hash: &[u8; 32]) -> Result<(), ChainFault> {
        if reduced {
            if self.kept_seen {
                return Err(ChainFault::ReducedOutOfOrder { seq });
            }
            self.reduced += 1;
        } else {
            self.kept_seen = true;
        }
        self.tree
            .append(&leaf_hash(hash))
            .map_err(|_| ChainFault::Altered { seq })?;
        while let Some(claim) = self.claims.get(self.next_claim) {
            if claim.tree_size != self.tree.size() {
                if claim.tree_size < self.tree.size() {
                    // A checkpoint of size 0 or a duplicate: check its signature only.
                    self.check_signature(claim)?;
                    self.next_claim += 1;
                    continue;
                }
                break;
            }
            self.check_signature(claim)?;
            if hex::encode(self.tree.root()) != claim.root_hash {
                return Err(ChainFault::CheckpointMismatch {
                    tree_size: claim.tree_size,
                    first: self.last_good + 1,
                });
            }
            self.last_good = claim.tree_size;
            self.next_claim += 1;
        }
        Ok(())
    }

    fn check_signature(&self, claim: &CheckpointClaim) -> Result<(), ChainFault> {
        let signed = self
            .keys
            .verify(&claim.jws)
            .map_err(|e| ChainFault::BadSignature {
                tree_size: claim.tree_size,
                reason: e.to_string(),
            })?;
        if signed.tree_size != claim.tree_size || signed.root_hash != claim.root_hash {
            return Err(ChainFault::BadSignature {
                tree_size: claim.tree_size,
                reason: "the signed values differ from the stored ones".into(),
            });
        }
        Ok(())
    }

    /// Records checked so far.
    pub fn count(&self) -> u64 {
        self.chain.count()
    }

    /// Ends the walk: fails if a checkpoint covers records that are not there.
    pub fn finish(self) -> Result<LogReport, ChainFault> {
        if let Some(claim) = self.claims.get(self.next_claim) {
            self.check_signature(claim)?;
            return Err(ChainFault::Truncated {
                first: self.chain.count() + 1,
                tree_size: claim.tree_size,
            });
        }
        Ok(LogReport {
            records: self.chain.count(),
            reduced: self.reduced,
            checkpoints: self.claims.len(),
            head: self.chain.head().to_owned(),
            root: hex::encode(self.tree.root()),
        })
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

    fn signed(
        records: &[AuditRecord],
        sizes: &[u64],
    ) -> (Vec<CheckpointClaim>, CheckpointVerifier) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let signer =
            crate::crypto::jose::CheckpointSigner::from_pem(pair.serialize_pem().as_bytes())
                .expect("signer");
        let leaves: Vec<_> = records
            .iter()
            .map(|r| leaf_hash(&r.hash_bytes().expect("hash")))
            .collect();
        let claims = sizes
            .iter()
            .map(|&n| {
                let root = hex::encode(
                    crate::audit::merkle::root(&mut crate::audit::merkle::SliceSource(&leaves), n)
                        .expect("root"),
                );
                let jws = signer
                    .sign(&crate::crypto::jose::Checkpoint {
                        tree_size: n,
                        root_hash: root.clone(),
                        at: "2026-11-21T10:00:00.000Z".into(),
                    })
                    .expect("sign");
                CheckpointClaim {
                    tree_size: n,
                    root_hash: root,
                    jws,
                }
            })
            .collect();
        (claims, signer.verifier().expect("verifier"))
    }

    fn run(
        records: &[AuditRecord],
        reduced: &[u64],
        claims: Vec<CheckpointClaim>,
        keys: &CheckpointVerifier,
    ) -> Result<LogReport, ChainFault> {
        let mut v = LogVerifier::new(claims, keys);
        for r in records {
            v.push(r, reduced.contains(&r.seq))?;
        }
        v.finish()
    }

    #[test]
    fn checkpoints_catch_rewritten_chains_and_truncation() {
        let l = log(20);
        let (claims, keys) = signed(&l, &[5, 10, 20]);
        let report = run(&l, &[1, 2], claims.clone(), &keys).expect("intact");
        assert_eq!(
            (report.records, report.reduced, report.checkpoints),
            (20, 2, 3)
        );

        // Rewrite record 12 and re-chain everything after it: the chain
        // verifies, the checkpoint at 20 does not.
        let mut forged = l[..11].to_vec();
        let mut prev = forged[10].hash.clone();
        for r in &l[11..] {
            let mut d = r.draft.clone();
            if r.seq == 12 {
                d.outcome = Outcome::Denied;
            }
            let rec = d.chain(r.seq, &prev).expect("chain");
            prev.clone_from(&rec.hash);
            forged.push(rec);
        }
        assert_eq!(
            run(&forged, &[], claims.clone(), &keys),
            Err(ChainFault::CheckpointMismatch {
                tree_size: 20,
                first: 11
            })
        );
        // The newest records removed.
        assert_eq!(
            run(&l[..17], &[], claims.clone(), &keys),
            Err(ChainFault::Truncated {
                first: 18,
                tree_size: 20
            })
        );
        // A reduced record after kept ones.
        assert_eq!(
            run(&l, &[7], claims.clone(), &keys),
            Err(ChainFault::ReducedOutOfOrder { seq: 7 })
        );
        // A checkpoint signed by someone else, or with its root edited.
        let (foreign, _) = signed(&l, &[5]);
        let mut mixed = claims.clone();
        mixed[0] = foreign[0].clone();
        assert!(matches!(
            run(&l, &[], mixed, &keys),
            Err(ChainFault::BadSignature { tree_size: 5, .. })
        ));
        let mut edited = claims;
        edited[1].root_hash = "00".repeat(32);
        assert!(matches!(
            run(&l, &[], edited, &keys),
            Err(ChainFault::BadSignature { tree_size: 10, .. })
        ));
    }
}
