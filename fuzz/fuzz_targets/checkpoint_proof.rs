//! Checkpoint and proof JSON → verification (`brdo::audit::proof_doc`).
//!
//! The documents `GET /v1/audit/checkpoint`, `/v1/audit/proof/{seq}` and
//! `/v1/audit/consistency` serve, as a DPO's tool parses and verifies them.
//! The first byte picks the mode:
//!
//! * `0` (hostile documents): the rest is parsed as each of the three
//!   documents and every one that parses is verified (the checkpoint with a
//!   key made at start). Must return, never panic; an inclusion or
//!   consistency proof that verifies must still verify after its JSON is
//!   re-serialised (the verdict depends on the meaning, not the bytes).
//! * `1`, `2`, `3` (honest documents): from the next bytes take sizes
//!   (`u16` LE each: tree size n in 1..=300, leaf index i < n, old size
//!   m in 1..=n), a byte position `p` (`u16` LE) and a non-zero XOR mask.
//!   Build the honest inclusion proof of leaf i in n (`1`), consistency
//!   proof m → n (`2`) or signed checkpoint of n (`3`) as the gateway
//!   serves it; it must parse and verify. Then flip byte `p % len` of the
//!   JSON with the mask: if the result still parses and verifies against
//!   the honest signed heads, it must be the same document (any other would
//!   be a forgery). Against the signed heads, not alone: an RFC 9162 proof
//!   does not bind the tree size by itself (this target's first finding,
//!   kept in `fuzz/regressions/checkpoint_proof` and as the unit test
//!   `a_proof_alone_does_not_bind_the_tree_size_signed_heads_do`).
//!
//! Seeds (`fuzz/corpus/checkpoint_proof`) are the RFC 9162 vectors of
//! `/work/shared/vectors/merkle` rewritten as Brdo documents, plus one
//! honest case per mode.

#![no_main]

use std::sync::OnceLock;

use brdo::audit::merkle::{Hash, SliceSource, consistency_proof, inclusion_proof, leaf_hash, root};
use brdo::audit::proof_doc::{CheckpointDoc, ConsistencyDoc, InclusionDoc, TreeHead};
use brdo::crypto::jose::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// A throwaway audit signing key, made once per fuzzing process by
/// `brdo pki init` in a temporary folder (no key is committed).
fn keys() -> &'static (CheckpointSigner, CheckpointVerifier) {
    static KEYS: OnceLock<(CheckpointSigner, CheckpointVerifier)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("brdo-fuzz-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        brdo::pki::init(&dir, &[], time::OffsetDateTime::now_utc()).expect("pki init");
        let signer =
            CheckpointSigner::from_pem_file(&dir.join("audit-signing.key")).expect("signer");
        let verifier = signer.verifier().expect("verifier");
        let _ = std::fs::remove_dir_all(&dir);
        (signer, verifier)
    })
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    let lo = data.get(at).copied().unwrap_or(0);
    let hi = data.get(at + 1).copied().unwrap_or(0);
    u16::from_le_bytes([lo, hi])
}

/// Record hashes (leaf data) and leaf hashes of a log of `n` records.
fn log(n: u64) -> (Vec<Hash>, Vec<Hash>) {
    let records: Vec<Hash> = (0..n)
        .map(|j| {
            let mut r = [0u8; 32];
            r[..8].copy_from_slice(&j.to_le_bytes());
            r[31] = 0xa5;
            r
        })
        .collect();
    let leaves = records.iter().map(|r| leaf_hash(r)).collect();
    (records, leaves)
}

fn hexes(hs: &[Hash]) -> Vec<String> {
    hs.iter().map(hex::encode).collect()
}

fn hostile(bytes: &[u8]) {
    if let Ok(doc) = InclusionDoc::parse(bytes)
        && doc.verify().is_ok()
    {
        let again = serde_json::to_vec(&json!({
            "leaf_index": doc.leaf_index, "tree_size": doc.tree_size,
            "root_hash": doc.root_hash, "audit_path": doc.audit_path,
            "record_hash": doc.record_hash,
        }))
        .expect("json");
        let doc2 = InclusionDoc::parse(&again).expect("re-parse");
        assert!(doc2.verify().is_ok(), "verdict changed by re-serialising");
    }
    if let Ok(doc) = ConsistencyDoc::parse(bytes) {
        let _ = doc.verify();
    }
    if let Ok(doc) = CheckpointDoc::parse(bytes) {
        let _ = doc.verify(&keys().1);
    }
}

/// The honest document of `mode` and whether a mutant still verifies.
fn honest(mode: u8, data: &[u8]) {
    let n = 1 + u64::from(u16_at(data, 0)) % 300;
    let i = u64::from(u16_at(data, 2)) % n;
    let m = 1 + u64::from(u16_at(data, 4)) % n;
    let pos = usize::from(u16_at(data, 6));
    let mask = data.get(8).copied().unwrap_or(0).max(1);
    let (records, leaves) = log(n);
    let mut src = SliceSource(&leaves);
    let root_n = root(&mut src, n).expect("root");
    let head_n = TreeHead {
        tree_size: n,
        root: root_n,
    };
    let head_m = TreeHead {
        tree_size: m,
        root: root(&mut src, m).expect("root"),
    };
    let doc = match mode {
        1 => json!({
            "leaf_index": i,
            "tree_size": n,
            "root_hash": hex::encode(root_n),
            "audit_path": hexes(&inclusion_proof(&mut src, i, n).expect("proof")),
            "record_hash": hex::encode(records[usize::try_from(i).expect("small")]),
        }),
        2 => json!({
            "from": m,
            "to": n,
            "from_root": hex::encode(root(&mut src, m).expect("root")),
            "to_root": hex::encode(root_n),
            "proof": hexes(&consistency_proof(&mut src, m, n).expect("proof")),
        }),
        _ => {
            let cp = Checkpoint {
                tree_size: n,
                root_hash: hex::encode(root_n),
                at: "2026-11-21T10:15:02.113Z".into(),
            };
            json!({
                "jws": keys().0.sign(&cp).expect("sign"),
                "tree_size": cp.tree_size,
                "root_hash": cp.root_hash,
                "at": cp.at,
            })
        }
    };
    let bytes = serde_json::to_vec(&doc).expect("json");
    let mut mutant = bytes.clone();
    let at = pos % mutant.len();
    mutant[at] ^= mask;
    match mode {
        1 => {
            let honest = InclusionDoc::parse(&bytes).expect("honest parses");
            honest
                .verify_against(&head_n)
                .expect("honest inclusion proof verifies");
            if let Ok(d) = InclusionDoc::parse(&mutant)
                && d.verify_against(&head_n).is_ok()
            {
                assert_eq!(d, honest, "a changed inclusion document verified");
            }
        }
        2 => {
            let honest = ConsistencyDoc::parse(&bytes).expect("honest parses");
            honest
                .verify_between(&head_m, &head_n)
                .expect("honest consistency proof verifies");
            if let Ok(d) = ConsistencyDoc::parse(&mutant)
                && d.verify_between(&head_m, &head_n).is_ok()
            {
                assert_eq!(d, honest, "a changed consistency document verified");
            }
        }
        _ => {
            let honest = CheckpointDoc::parse(&bytes).expect("honest parses");
            honest
                .verify(&keys().1)
                .expect("honest checkpoint verifies");
            assert_eq!(
                honest.verify(&keys().1).expect("again"),
                head_n,
                "the signed head is the tree's"
            );
            if let Ok(d) = CheckpointDoc::parse(&mutant)
                && d.verify(&keys().1).is_ok()
            {
                // Base64url has no second spelling of the same bytes except
                // in the last character's unused bits; compare meaning.
                assert_eq!(
                    (d.tree_size, &d.root_hash, &d.at),
                    (honest.tree_size, &honest.root_hash, &honest.at),
                    "a changed checkpoint verified"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => hostile(rest),
        other => honest(other, rest),
    }
});
