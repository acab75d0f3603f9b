//! Arbitrary JSON → RFC 8785 canonical form (`brdo::audit::jcs`).
//!
//! Properties, for every document serde_json accepts:
//! * canonicalisation never panics and its output is JSON;
//! * it is idempotent: canonicalising the re-parsed output gives the same
//!   bytes;
//! * the output means the input, number by number as IEEE 754 doubles: RFC
//!   8785 writes every number as ECMAScript would after converting it to a
//!   double, so the re-parsed value equals the input once each number is
//!   compared by its `f64` value (structure, strings, key sets equal);
//! * when every number of the input is an integer of magnitude ≤ 2^53 (exactly
//!   representable as a double, written as plain digits), the re-parsed
//!   value equals the input as a `serde_json::Value`. With floats or larger
//!   integers strict equality does not hold by design: `1.0` is written `1`
//!   and comes back as an integer, `2^64-1` is written `18446744073709552000`
//!   and comes back as a float, and `Value`'s `==` tells integers from floats;
//! * the output has no insignificant whitespace: no space outside string
//!   literals and no raw byte below 0x20 anywhere (control characters only
//!   appear escaped).

#![no_main]

use brdo::audit::jcs::canonicalize;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MAX_EXACT: u64 = 1 << 53;

/// Whether every number is an integer of magnitude ≤ 2^53.
fn exact_integers_only(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.as_u64().is_some_and(|u| u <= MAX_EXACT)
                || n.as_i64().is_some_and(|i| i.unsigned_abs() <= MAX_EXACT)
        }
        Value::Array(items) => items.iter().all(exact_integers_only),
        Value::Object(map) => map.values().all(exact_integers_only),
        _ => true,
    }
}

/// Equality with numbers compared by their double value.
fn eq_as_doubles(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| eq_as_doubles(x, y))
        }
        (Value::Object(xm), Value::Object(ym)) => {
            xm.len() == ym.len()
                && xm
                    .iter()
                    .all(|(k, x)| ym.get(k).is_some_and(|y| eq_as_doubles(x, y)))
        }
        _ => a == b,
    }
}

/// No whitespace outside string literals, and no raw control characters.
fn is_compact(canonical: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for b in canonical.bytes() {
        if b < 0x20 {
            return false;
        }
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b' ' {
            return false;
        }
    }
    !in_string
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let canonical = canonicalize(&input);
    assert!(is_compact(&canonical), "whitespace in {canonical:?}");
    let reparsed: Value = serde_json::from_str(&canonical)
        .unwrap_or_else(|e| panic!("canonical form is not JSON ({e}): {canonical:?}"));
    let again = canonicalize(&reparsed);
    assert_eq!(canonical, again, "not idempotent");
    assert!(
        eq_as_doubles(&input, &reparsed),
        "canonical form means something else\ninput: {input}\ncanonical: {canonical}"
    );
    if exact_integers_only(&input) {
        assert_eq!(input, reparsed, "canonical form: {canonical}");
    }
});
