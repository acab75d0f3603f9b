//! RFC 9162 Merkle proofs (`brdo::audit::merkle`).
//!
//! Part 1, honest proofs. From the input take a tree size n in 1..=300, a
//! leaf seed, a leaf index i < n and an old size m in 1..=n. Leaf j is
//! `leaf_hash(seed ‖ j)`, so all leaves differ. Properties:
//! * `root` over a `SliceSource` equals the root of a `CompactRange` fed the
//!   same leaves, at size m and at size n;
//! * the inclusion proof for i verifies against the root of n, and does not
//!   verify for another leaf at the same index;
//! * the consistency proof from m to n verifies;
//! * flipping any one bit of any one element of either proof makes it fail.
//!
//! Part 2, hostile proofs. The rest of the input, cut into 32-byte chunks, is
//! fed as a proof with fuzz-chosen (unbounded u64) sizes, index and roots to
//! both verifiers: they must return, never panic. A proof that verifies
//! against the honest tree's roots must be the honest proof.
//!
//! Input layout (fixed, so seeds can be written from the RFC 9162 vectors;
//! bytes past the end read as zero):
//!
//! | bytes | field |
//! | --- | --- |
//! | 2, 2, 2 (LE) | tree size, leaf index, old size (reduced into range) |
//! | 1, 1 | proof element and bit to flip |
//! | 1 + L | leaf seed length L, then L seed bytes |
//! | 8, 8, 8 (LE) | hostile index, size, old size |
//! | 1 | mode: bit 0 = check against the honest tree instead |
//! | 32, 32, 32 | hostile leaf hash, root A (inclusion root / old root), root B (new root) |
//! | rest | hostile proof, in 32-byte elements |

#![no_main]

use brdo::audit::merkle::{
    CompactRange, Hash, SliceSource, consistency_proof, inclusion_proof, leaf_hash, root,
    verify_consistency, verify_inclusion,
};
use libfuzzer_sys::fuzz_target;

/// Reads the fixed layout; past the end every byte is zero.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Vec<u8> {
        let k = n.min(self.0.len());
        let mut out = self.0[..k].to_vec();
        out.resize(n, 0);
        self.0 = &self.0[k..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().expect("2 bytes"))
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    fn hash(&mut self) -> Hash {
        self.take(32).try_into().expect("32 bytes")
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

fn flipped(proof: &[Hash], element: u8, bit: u8) -> Option<Vec<Hash>> {
    if proof.is_empty() {
        return None;
    }
    let mut out = proof.to_vec();
    let e = usize::from(element) % out.len();
    let bit = usize::from(bit);
    out[e][bit / 8 % 32] ^= 1 << (bit % 8);
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let n = 1 + u64::from(r.u16()) % 300;
    let index = u64::from(r.u16()) % n;
    let m = 1 + u64::from(r.u16()) % n;
    let (flip_element, flip_bit) = (r.u8(), r.u8());
    let seed_len = usize::from(r.u8());
    let seed = r.take(seed_len);

    let leaves: Vec<Hash> = (0..n)
        .map(|j| {
            let mut data = seed.clone();
            data.extend_from_slice(&j.to_be_bytes());
            leaf_hash(&data)
        })
        .collect();
    let mut src = SliceSource(&leaves);
    let root_n = root(&mut src, n).expect("root of n");
    let root_m = root(&mut src, m).expect("root of m");

    let mut compact = CompactRange::new();
    for (j, leaf) in leaves.iter().enumerate() {
        assert_eq!(compact.append(leaf).expect("not full"), j as u64);
        if j as u64 + 1 == m {
            assert_eq!(compact.root(), root_m, "compact root differs at size {m}");
        }
    }
    assert_eq!(compact.size(), n);
    assert_eq!(compact.hashes().len(), n.count_ones() as usize);
    assert_eq!(compact.root(), root_n, "compact root differs at size {n}");

    let i = usize::try_from(index).expect("small");
    let incl = inclusion_proof(&mut src, index, n).expect("inclusion proof");
    if let Err(e) = verify_inclusion(&leaves[i], index, n, &incl, &root_n) {
        panic!("honest inclusion proof for {index} in {n} rejected: {e}");
    }
    if n > 1 {
        let other = &leaves[(i + 1) % leaves.len()];
        assert!(
            verify_inclusion(other, index, n, &incl, &root_n).is_err(),
            "inclusion proof for {index} in {n} accepts another leaf"
        );
    }
    if let Some(bad) = flipped(&incl, flip_element, flip_bit) {
        assert!(
            verify_inclusion(&leaves[i], index, n, &bad, &root_n).is_err(),
            "tampered inclusion proof for {index} in {n} accepted"
        );
    }

    let cons = consistency_proof(&mut src, m, n).expect("consistency proof");
    if let Err(e) = verify_consistency(m, n, &root_m, &root_n, &cons) {
        panic!("honest consistency proof {m} -> {n} rejected: {e}");
    }
    if let Some(bad) = flipped(&cons, flip_element, flip_bit) {
        assert!(
            verify_consistency(m, n, &root_m, &root_n, &bad).is_err(),
            "tampered consistency proof {m} -> {n} accepted"
        );
    }

    // Part 2: hostile proofs.
    let (x_index, x_size, x_old) = (r.u64(), r.u64(), r.u64());
    let use_honest = r.u8() & 1 == 1;
    let (x_leaf, root_a, root_b) = (r.hash(), r.hash(), r.hash());
    let raw = r.rest();
    let proof: Vec<Hash> = raw
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    if use_honest {
        // Sizes and roots of the honest trees, fuzz-chosen proof: whatever
        // verifies must be the honest proof (anything else would be a second
        // preimage of SHA-256 or a verifier bug).
        if verify_inclusion(&leaves[i], index, n, &proof, &root_n).is_ok() {
            assert_eq!(proof, incl, "forged inclusion proof accepted");
        }
        if verify_consistency(m, n, &root_m, &root_n, &proof).is_ok() {
            assert_eq!(proof, cons, "forged consistency proof accepted");
        }
    } else {
        let _ = verify_inclusion(&x_leaf, x_index, x_size, &proof, &root_a);
        let _ = verify_consistency(x_old, x_size, &root_a, &root_b, &proof);
    }
});
