//! One signature for many statements (SPEC §11, *Batch signatures*).
//!
//! A relayed message cost four Ed25519 operations (the origin signs its
//! label binding, the peer checks it, signs a receipt, the origin checks
//! that): about a fifth of both gateways' CPU in `brdo bench --scenario
//! relay` (BENCHMARKS.md). Statements made together — the bindings of the
//! documents one relay batch carries, the receipts one group commit
//! produces — are therefore signed once: the leaves of an RFC 9162 Merkle
//! tree are the statements' bytes, and one compact JWS (`typ`
//! `brdo-batch+jws`) signs `{"v": 1, "typ", "size", "root"}`, naming the
//! statements' own `typ` so a batch of bindings can never pass as a batch
//! of receipts. Each statement then travels as a token of its own,
//!
//! ```text
//! <root JWS>~<statement, base64url>~<leaf index>~<audit path, base64url>
//! ```
//!
//! checkable offline, alone, with the same public key: its leaf hash and
//! path must lead to the signed root. Security rests on the signature and
//! on SHA-256 (the same as the audit log's proofs). A single statement is
//! still signed as a plain compact JWS, and [`verify`] takes either form.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::json;

use crate::audit::merkle::{self, Hash};
use crate::crypto::jose::{JoseError, JwsKey, JwsKeys};

/// The JWS `typ` of a batch's root.
pub const BATCH_TYP: &str = "brdo-batch+jws";

/// Between the parts of a token: not in the base64url alphabet, so a
/// compact JWS never holds it.
const SEP: char = '~';

/// The deepest path accepted: a root covers at most 2^32 statements, far
/// more than any batch; a longer path is refused before any hashing.
const MAX_DEPTH: usize = 32;

/// The signed statement about a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Root {
    v: u32,
    typ: String,
    size: u64,
    root: String,
}

fn bad(why: &str) -> JoseError {
    JoseError::Signature(why.to_owned())
}

/// Signs `payloads`, each a statement of type `typ`: one token each, in
/// order. One payload is signed as a plain compact JWS; several share one
/// signature over their Merkle root.
pub fn sign(key: &JwsKey, payloads: &[Vec<u8>], typ: &str) -> Result<Vec<String>, JoseError> {
    if payloads.len() < 2 {
        return payloads.iter().map(|p| key.sign(p, typ)).collect();
    }
    let leaves: Vec<Hash> = payloads.iter().map(|p| merkle::leaf_hash(p)).collect();
    let levels = levels(leaves);
    let root = levels
        .last()
        .and_then(|l| l.first())
        .ok_or_else(|| bad("an empty batch"))?;
    let statement = crate::audit::jcs::canonicalize(&json!({
        "v": 1,
        "typ": typ,
        "size": payloads.len(),
        "root": hex::encode(root),
    }));
    let root_jws = key.sign(statement.as_bytes(), BATCH_TYP)?;
    Ok(payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = path(&levels, i).concat();
            format!(
                "{root_jws}{SEP}{}{SEP}{i}{SEP}{}",
                B64.encode(p),
                B64.encode(path)
            )
        })
        .collect())
}

/// The tree's levels, leaves first, root last: each level pairs the one
/// below from the left, and an odd last node rises unpaired. This is the
/// RFC 9162 tree (split at the largest power of two below the size).
fn levels(leaves: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaves];
    while let Some(below) = levels.last().filter(|l| l.len() > 1) {
        let next: Vec<Hash> = below
            .chunks(2)
            .filter_map(|pair| match pair {
                [l, r] => Some(merkle::node_hash(l, r)),
                [single, ..] => Some(*single),
                [] => None,
            })
            .collect();
        levels.push(next);
    }
    levels
}

/// The RFC 9162 audit path of leaf `index`: its sibling at each level
/// where it has one, bottom up.
fn path(levels: &[Vec<Hash>], index: usize) -> Vec<Hash> {
    let mut out = Vec::new();
    let mut i = index;
    for level in levels.iter().take(levels.len().saturating_sub(1)) {
        if let Some(sibling) = level.get(i ^ 1) {
            out.push(*sibling);
        }
        i >>= 1;
    }
    out
}

/// Verifies a statement of type `typ` signed by `keys`, as a plain
/// compact JWS or as a batch token, and returns its bytes. A batch's root
/// signature is checked once per `keys` ([`JwsKeys::verify_memo`]).
pub fn verify(keys: &JwsKeys, token: &str, typ: &str) -> Result<Vec<u8>, JoseError> {
    let token = token.trim();
    if !token.contains(SEP) {
        return keys.verify(token, typ);
    }
    let parts: Vec<&str> = token.split(SEP).collect();
    let [root_jws, payload, index, path] = parts[..] else {
        return Err(bad("a batch token has four parts"));
    };
    let payload = B64
        .decode(payload)
        .map_err(|_| bad("a batch token's statement is not base64url"))?;
    let index = decimal(index).ok_or_else(|| bad("a batch token's index is not a number"))?;
    let path = B64
        .decode(path)
        .map_err(|_| bad("a batch token's path is not base64url"))?;
    if path.len() % 32 != 0 || path.len() / 32 > MAX_DEPTH {
        return Err(bad("a batch token's path is not a list of hashes"));
    }
    let path: Vec<Hash> = path
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect();
    let signed = keys.verify_memo(root_jws, BATCH_TYP)?;
    let root: Root = serde_json::from_slice(&signed)
        .map_err(|_| bad("a batch's signed statement is not a batch root"))?;
    if root.v != 1 {
        return Err(bad("a batch root of another version"));
    }
    if root.typ != typ {
        return Err(JoseError::Signature(format!(
            "the batch is not of type {typ} (typ)"
        )));
    }
    let mut expected = [0u8; 32];
    hex::decode_to_slice(&root.root, &mut expected)
        .map_err(|_| bad("a batch root's hash is not 64 hex digits"))?;
    merkle::verify_inclusion(
        &merkle::leaf_hash(&payload),
        index,
        root.size,
        &path,
        &expected,
    )
    .map_err(|_| bad("the statement is not in the signed batch"))?;
    Ok(payload)
}

/// A leaf index as written: decimal digits only, no sign, no leading zero.
fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::{SliceSource, inclusion_proof};

    const ED_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBGxdt0AIsrUSlwXpBn7Mqn0yZjKZV3uNrlVSuOqBhL5\n-----END PRIVATE KEY-----\n";
    const TYP: &str = "brdo-receipt+jws";

    fn key() -> JwsKey {
        JwsKey::from_pem(ED_KEY.as_bytes()).expect("key")
    }

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect()
    }

    /// The levels' root and paths are RFC 9162's, for every size and
    /// index up to 70 (the audit log's own `inclusion_proof`, which the
    /// RFC's vectors test, is the reference).
    #[test]
    fn paths_are_rfc_9162_paths() {
        for n in 1..=70usize {
            let leaves: Vec<Hash> = payloads(n).iter().map(|p| merkle::leaf_hash(p)).collect();
            let levels = levels(leaves.clone());
            let root = levels
                .last()
                .and_then(|l| l.first())
                .copied()
                .expect("root");
            let mut src = SliceSource(&leaves);
            assert_eq!(
                Some(root),
                merkle::root(&mut src, n as u64).ok(),
                "root of {n}"
            );
            for i in 0..n {
                let want = inclusion_proof(&mut src, i as u64, n as u64).expect("proof");
                assert_eq!(path(&levels, i), want, "path of {i} in {n}");
            }
        }
    }

    #[test]
    fn each_token_verifies_alone_and_only_as_itself() {
        let key = key();
        let keys = key.verifier().expect("verifier");
        for n in [1, 2, 3, 7, 64] {
            let p = payloads(n);
            let tokens = sign(&key, &p, TYP).expect("sign");
            assert_eq!(tokens.len(), n);
            assert_eq!(tokens[0].contains(SEP), n > 1);
            for (t, want) in tokens.iter().zip(&p) {
                // A fresh verifier each time: no memo to lean on.
                let fresh = key.verifier().expect("verifier");
                assert_eq!(verify(&fresh, t, TYP).ok().as_ref(), Some(want));
                assert_eq!(verify(&keys, t, TYP).ok().as_ref(), Some(want));
                assert!(verify(&keys, t, "brdo-binding+jws").is_err(), "{n}");
            }
        }
    }

    /// Every way to alter a token fails: another statement, index, path,
    /// root, key, or a malformed part; nothing panics.
    #[test]
    fn altered_tokens_are_refused() {
        let key = key();
        let keys = key.verifier().expect("verifier");
        let tokens = sign(&key, &payloads(5), TYP).expect("sign");
        let parts: Vec<String> = tokens[3].split(SEP).map(str::to_owned).collect();
        let other: Vec<String> = tokens[1].split(SEP).map(str::to_owned).collect();
        let with = |i: usize, v: &str| {
            let mut p = parts.clone();
            p[i] = v.to_owned();
            p.join("~")
        };
        let forged = B64.encode(b"{\"n\":99}");
        let long_path = B64.encode(vec![0u8; 32 * (MAX_DEPTH + 1)]);
        let cases = [
            with(1, &forged),
            with(1, &other[1]),
            with(2, "1"),
            with(2, "03"),
            with(2, "+3"),
            with(2, "-1"),
            with(2, "5"),
            with(2, "18446744073709551616"),
            with(2, ""),
            with(3, &other[3]),
            with(3, ""),
            with(3, "AAAA"),
            with(3, &long_path),
            with(1, "not base64!"),
            with(0, "a.b.c"),
            format!("{}~x", tokens[3]),
            parts[..3].join("~"),
            "~~~".into(),
            "\u{200b}~a~0~".into(),
        ];
        for t in &cases {
            assert!(verify(&keys, t, TYP).is_err(), "{t}");
        }
        // Another key's batch of the same statements.
        let other_key = JwsKey::from_pem(
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHSSiaRAclkb1yhOx2gs8uo/l3qwCc/wcSLU+NhWm4xL\n-----END PRIVATE KEY-----\n",
        )
        .expect("key");
        let theirs = sign(&other_key, &payloads(5), TYP).expect("sign");
        assert!(verify(&keys, &theirs[3], TYP).is_err());
        // A plain JWS of the batch type is no statement.
        let root_only = key.sign(b"{\"n\":3}", BATCH_TYP).expect("sign");
        assert!(verify(&keys, &root_only, TYP).is_err());
    }
}
