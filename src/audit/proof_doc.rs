//! The checkpoint and proof documents the DPO endpoints serve (SPEC §5),
//! parsed and verified as a DPO's tool would, trusting only the public key.
//!
//! `GET /v1/audit/checkpoint`, `/proof/{seq}` and `/consistency` answer JSON
//! that a data-protection officer or a supervisory authority verifies
//! outside the gateway. These documents come from a party that is being
//! checked, so they are parsed strictly (unknown fields refused, hashes
//! exactly 64 lower-case hex digits) and every claim in them is verified:
//! a checkpoint's fields must be what its signature covers, a proof must
//! lead to its root. Nothing here panics on any input (the `checkpoint_proof`
//! fuzz target holds it to that).

use serde::Deserialize;

use super::merkle::{Hash, VerifyError, leaf_hash, verify_consistency, verify_inclusion};
use crate::crypto::jose::{CheckpointVerifier, JoseError};

/// Why a document is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofDocError {
    /// Not JSON of the expected shape.
    #[error("not a valid document: {0}")]
    Shape(String),
    /// A hash that is not 64 lower-case hex digits.
    #[error("{field} is not a SHA-256 value in lower-case hex")]
    Hash {
        /// The field (with its index for lists).
        field: String,
    },
    /// The JWS does not verify with the key.
    #[error(transparent)]
    Signature(#[from] JoseError),
    /// The document's fields differ from what the signature covers.
    #[error("the checkpoint's {field} differs from its signed payload")]
    Unsigned {
        /// The field.
        field: &'static str,
    },
    /// The proof does not establish its claim.
    #[error(transparent)]
    Proof(#[from] VerifyError),
    /// The proof is about another tree than the trusted checkpoint.
    #[error("the proof is against tree size {proof} and root {root}, not the checkpoint's")]
    NotTheCheckpoint {
        /// The proof's tree size.
        proof: u64,
        /// The proof's root.
        root: String,
    },
}

/// `GET /v1/audit/checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointDoc {
    /// The compact JWS.
    pub jws: String,
    /// Records covered.
    pub tree_size: u64,
    /// Root over them, hex.
    pub root_hash: String,
    /// When it was signed.
    pub at: String,
}

/// `GET /v1/audit/proof/{seq}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionDoc {
    /// Leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// Size of the tree the proof is against.
    pub tree_size: u64,
    /// That tree's root, hex.
    pub root_hash: String,
    /// Sibling hashes from the leaf up, hex.
    pub audit_path: Vec<String>,
    /// The record's `hash` (the leaf's data), hex.
    pub record_hash: Option<String>,
}

/// `GET /v1/audit/consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyDoc {
    /// The earlier size.
    pub from: u64,
    /// The later size.
    pub to: u64,
    /// Root at `from`, hex.
    pub from_root: String,
    /// Root at `to`, hex.
    pub to_root: String,
    /// The proof, hex.
    pub proof: Vec<String>,
}

/// A tree size and its root. From [`CheckpointDoc::verify`] it is signed
/// and can be trusted; from a proof document alone it is only a claim: an
/// RFC 9162 proof does not bind the tree size by itself (a proof for leaf 0
/// of 70 leaves also verifies for 71 leaves and the same root, since both
/// paths are the same right siblings), so proofs are checked against signed
/// heads with [`InclusionDoc::verify_against`] and
/// [`ConsistencyDoc::verify_between`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Records covered.
    pub tree_size: u64,
    /// Their root.
    pub root: Hash,
}

/// Decodes one hash field strictly.
pub(crate) fn hash_field(field: &str, hex_text: &str) -> Result<Hash, ProofDocError> {
    let bad = || ProofDocError::Hash {
        field: field.to_owned(),
    };
    if hex_text.len() != 64
        || !hex_text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).map_err(|_| bad())?;
    Ok(out)
}

fn hash_list(field: &str, items: &[String]) -> Result<Vec<Hash>, ProofDocError> {
    items
        .iter()
        .enumerate()
        .map(|(i, h)| hash_field(&format!("{field}[{i}]"), h))
        .collect()
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ProofDocError> {
    serde_json::from_slice(bytes).map_err(|e| ProofDocError::Shape(e.to_string()))
}

impl CheckpointDoc {
    /// Parses the JSON the checkpoint endpoint serves.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProofDocError> {
        parse(bytes)
    }

    /// Verifies the JWS with `keys` and that the unsigned fields beside it
    /// say exactly what it signs.
    pub fn verify(&self, keys: &CheckpointVerifier) -> Result<TreeHead, ProofDocError> {
        let signed = keys.verify(&self.jws)?;
        if signed.tree_size != self.tree_size {
            return Err(ProofDocError::Unsigned { field: "tree_size" });
        }
        if signed.root_hash != self.root_hash {
            return Err(ProofDocError::Unsigned { field: "root_hash" });
        }
        if signed.at != self.at {
            return Err(ProofDocError::Unsigned { field: "at" });
        }
        Ok(TreeHead {
            tree_size: signed.tree_size,
            root: hash_field("root_hash", &signed.root_hash)?,
        })
    }
}

impl InclusionDoc {
    /// Parses the JSON the proof endpoint serves.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProofDocError> {
        parse(bytes)
    }

    /// Verifies that `record_hash` is leaf `leaf_index` of the tree whose
    /// root the document names; returns that tree's claimed head (see
    /// [`TreeHead`] for why the size still needs a signed head).
    pub fn verify(&self) -> Result<TreeHead, ProofDocError> {
        let record = self
            .record_hash
            .as_deref()
            .ok_or_else(|| ProofDocError::Shape("record_hash is missing".into()))?;
        let record = hash_field("record_hash", record)?;
        let root = hash_field("root_hash", &self.root_hash)?;
        let path = hash_list("audit_path", &self.audit_path)?;
        verify_inclusion(
            &leaf_hash(&record),
            self.leaf_index,
            self.tree_size,
            &path,
            &root,
        )?;
        Ok(TreeHead {
            tree_size: self.tree_size,
            root,
        })
    }

    /// Verifies the proof and that its tree is the trusted checkpoint's.
    pub fn verify_against(&self, head: &TreeHead) -> Result<(), ProofDocError> {
        let tree = self.verify()?;
        if tree != *head {
            return Err(ProofDocError::NotTheCheckpoint {
                proof: tree.tree_size,
                root: self.root_hash.clone(),
            });
        }
        Ok(())
    }
}

impl ConsistencyDoc {
    /// Parses the JSON the consistency endpoint serves.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProofDocError> {
        parse(bytes)
    }

    /// Verifies the proof between the two roots it names; returns both
    /// claimed heads (see [`TreeHead`]).
    pub fn verify(&self) -> Result<(TreeHead, TreeHead), ProofDocError> {
        let old = hash_field("from_root", &self.from_root)?;
        let new = hash_field("to_root", &self.to_root)?;
        let proof = hash_list("proof", &self.proof)?;
        verify_consistency(self.from, self.to, &old, &new, &proof)?;
        Ok((
            TreeHead {
                tree_size: self.from,
                root: old,
            },
            TreeHead {
                tree_size: self.to,
                root: new,
            },
        ))
    }

    /// Verifies that the signed head `new` extends the signed head `old`:
    /// the proof verifies and its sizes and roots are exactly theirs.
    pub fn verify_between(&self, old: &TreeHead, new: &TreeHead) -> Result<(), ProofDocError> {
        let (from, to) = self.verify()?;
        for (claimed, signed) in [(from, old), (to, new)] {
            if claimed != *signed {
                return Err(ProofDocError::NotTheCheckpoint {
                    proof: claimed.tree_size,
                    root: hex::encode(claimed.root),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::{SliceSource, consistency_proof, inclusion_proof, root};
    use crate::crypto::jose::{Checkpoint, CheckpointSigner};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Record hashes (the leaves' data) and their leaf hashes.
    fn log(n: u64) -> (Vec<Hash>, Vec<Hash>) {
        let records: Vec<Hash> = (0..n)
            .map(|i| ring::digest::digest(&ring::digest::SHA256, &i.to_le_bytes()))
            .map(|d| d.as_ref().try_into().expect("32"))
            .collect();
        let leaves = records.iter().map(|r| leaf_hash(r)).collect();
        (records, leaves)
    }

    fn inclusion_json(records: &[Hash], leaves: &[Hash], i: u64, n: u64) -> String {
        let mut src = SliceSource(leaves);
        let path = inclusion_proof(&mut src, i, n).expect("proof");
        let r = root(&mut src, n).expect("root");
        serde_json::json!({
            "leaf_index": i,
            "tree_size": n,
            "root_hash": hex::encode(r),
            "audit_path": path.iter().map(hex::encode).collect::<Vec<_>>(),
            "record_hash": hex::encode(records[usize::try_from(i).expect("small")]),
        })
        .to_string()
    }

    #[test]
    fn honest_inclusion_documents_verify_and_any_change_fails() {
        let (records, leaves) = log(13);
        for i in 0..13 {
            let doc = InclusionDoc::parse(inclusion_json(&records, &leaves, i, 13).as_bytes())
                .expect("parse");
            doc.verify().expect("honest proof verifies");
            let mut other = doc.clone();
            other.record_hash = Some(hex::encode(records[(i as usize + 1) % 13]));
            assert!(other.verify().is_err(), "another record at {i}");
            let mut moved = doc.clone();
            moved.leaf_index = (i + 1) % 13;
            assert!(moved.verify().is_err(), "another index for {i}");
            if let Some(first) = doc.audit_path.first() {
                let mut flipped = doc.clone();
                let mut bytes = hash_field("x", first).expect("hex");
                bytes[31] ^= 1;
                flipped.audit_path[0] = hex::encode(bytes);
                assert!(flipped.verify().is_err(), "tampered path for {i}");
            }
        }
    }

    #[test]
    fn strict_parsing() {
        let (records, leaves) = log(4);
        let good = inclusion_json(&records, &leaves, 1, 4);
        let upper = good.replace(&hex::encode(records[1]), &hex::encode_upper(records[1]));
        let doc = InclusionDoc::parse(upper.as_bytes()).expect("shape is fine");
        assert!(
            matches!(doc.verify(), Err(ProofDocError::Hash { field }) if field == "record_hash")
        );
        let extra = good.replacen('{', "{\"extra\":1,", 1);
        assert!(InclusionDoc::parse(extra.as_bytes()).is_err());
        assert!(InclusionDoc::parse(b"[]").is_err());
        assert!(ConsistencyDoc::parse(b"{\"from\":-1}").is_err());
        assert!(hash_field("h", &"0".repeat(63)).is_err());
        assert!(hash_field("h", &"g".repeat(64)).is_err());
        assert!(hash_field("h", "é".repeat(32).as_str()).is_err());
    }

    #[test]
    fn consistency_documents_verify() {
        let l = leaves(21);
        let mut src = SliceSource(&l);
        for (m, n) in [(1, 21), (7, 21), (8, 21), (21, 21)] {
            let proof = consistency_proof(&mut src, m, n).expect("proof");
            let json = serde_json::json!({
                "from": m, "to": n,
                "from_root": hex::encode(root(&mut src, m).expect("root")),
                "to_root": hex::encode(root(&mut src, n).expect("root")),
                "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            });
            let doc = ConsistencyDoc::parse(json.to_string().as_bytes()).expect("parse");
            let (old, new) = doc.verify().expect("honest");
            assert_eq!((old.tree_size, new.tree_size), (m, n));
            let mut wrong = doc.clone();
            let mut bad = hash_field("from_root", &doc.from_root).expect("hex");
            bad[0] ^= 0x80;
            wrong.from_root = hex::encode(bad);
            assert!(wrong.verify().is_err());
        }
        let zero = ConsistencyDoc {
            from: 0,
            to: 3,
            from_root: "0".repeat(64),
            to_root: "0".repeat(64),
            proof: vec![],
        };
        assert!(matches!(
            zero.verify(),
            Err(ProofDocError::Proof(VerifyError::EmptyOldTree))
        ));
    }

    /// Fuzz finding (`checkpoint_proof`, fuzz/regressions/checkpoint_proof):
    /// the consistency proof 1 → 70 also verifies as 1 → 71 with the same
    /// roots, because RFC 9162 proofs do not bind the tree size. Only the
    /// signed heads do, so `verify_between` refuses it.
    #[test]
    fn a_proof_alone_does_not_bind_the_tree_size_signed_heads_do() {
        let l = leaves(70);
        let mut src = SliceSource(&l);
        let proof = consistency_proof(&mut src, 1, 70).expect("proof");
        let old = TreeHead {
            tree_size: 1,
            root: root(&mut src, 1).expect("root"),
        };
        let new = TreeHead {
            tree_size: 70,
            root: root(&mut src, 70).expect("root"),
        };
        let honest = ConsistencyDoc {
            from: 1,
            to: 70,
            from_root: hex::encode(old.root),
            to_root: hex::encode(new.root),
            proof: proof.iter().map(hex::encode).collect(),
        };
        honest.verify_between(&old, &new).expect("honest");
        let resized = ConsistencyDoc {
            to: 71,
            ..honest.clone()
        };
        assert!(resized.verify().is_ok(), "the RFC 9162 ambiguity itself");
        assert!(matches!(
            resized.verify_between(&old, &new),
            Err(ProofDocError::NotTheCheckpoint { proof: 71, .. })
        ));
        // The same holds for inclusion of leaf 0.
        let (records, leaves70) = log(70);
        let doc = InclusionDoc::parse(inclusion_json(&records, &leaves70, 0, 70).as_bytes())
            .expect("parse");
        let head = doc.verify().expect("honest");
        let resized = InclusionDoc {
            tree_size: 71,
            ..doc.clone()
        };
        assert!(resized.verify().is_ok());
        assert!(resized.verify_against(&head).is_err());
    }

    #[test]
    fn checkpoints_verify_only_as_signed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        crate::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("init");
        let signer =
            CheckpointSigner::from_pem_file(&pki.join("audit-signing.key")).expect("signer");
        let keys = signer.verifier().expect("verifier");
        let (records, leaves) = log(5);
        let mut src = SliceSource(&leaves);
        let r = root(&mut src, 5).expect("root");
        let cp = Checkpoint {
            tree_size: 5,
            root_hash: hex::encode(r),
            at: "2026-11-21T10:00:00.000Z".into(),
        };
        let doc = CheckpointDoc {
            jws: signer.sign(&cp).expect("sign"),
            tree_size: 5,
            root_hash: cp.root_hash.clone(),
            at: cp.at.clone(),
        };
        let head = doc.verify(&keys).expect("verifies");
        assert_eq!(
            head,
            TreeHead {
                tree_size: 5,
                root: r
            }
        );
        let proof =
            InclusionDoc::parse(inclusion_json(&records, &leaves, 3, 5).as_bytes()).expect("parse");
        proof
            .verify_against(&head)
            .expect("in the checkpoint's tree");
        let older =
            InclusionDoc::parse(inclusion_json(&records, &leaves, 3, 4).as_bytes()).expect("parse");
        assert!(matches!(
            older.verify_against(&head),
            Err(ProofDocError::NotTheCheckpoint { proof: 4, .. })
        ));
        let mut lying = doc.clone();
        lying.tree_size = 6;
        assert!(matches!(
            lying.verify(&keys),
            Err(ProofDocError::Unsigned { field: "tree_size" })
        ));
        let mut forged = doc.clone();
        forged.jws.push('A');
        assert!(matches!(
            forged.verify(&keys),
            Err(ProofDocError::Signature(_))
        ));
    }
}
