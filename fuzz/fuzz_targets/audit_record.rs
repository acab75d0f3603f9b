//! Structured audit records (built with `arbitrary`) → hash chain and JCS.
//!
//! Properties, for any draft, `seq` < 2^53 and 32-byte `prev_hash`:
//! * `chain` succeeds, the hash is 64 lowercase hex digits and
//!   `hash_matches()` holds;
//! * the served JSON (`to_json`) canonicalises to a string that, parsed back
//!   with serde_json and canonicalised again, is byte-identical;
//! * a verifier that only has the served JSON can recompute the hash: drop
//!   `hash` and `prev_hash` from the re-parsed JSON, canonicalise, chain;
//! * tampering with any single field (a different value of the same field)
//!   makes `hash_matches()` false.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use brdo::audit::jcs::canonicalize;
use brdo::audit::record::chain_hash;
use brdo::audit::{Action, Actor, AuditRecord, Outcome, RecordDraft};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

/// A small JSON scalar for `details`.
#[derive(Arbitrary, Debug)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

impl Scalar {
    fn value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::from(i),
            Scalar::Uint(u) => Value::from(u),
            // NaN and infinities are not JSON; serde_json refuses them.
            Scalar::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Scalar::Str(s) => Value::String(s),
        }
    }
}

/// A small JSON value: a scalar, or one level of array or object of scalars.
#[derive(Arbitrary, Debug)]
enum Small {
    Scalar(Scalar),
    Array(Vec<Scalar>),
    Object(Vec<(String, Scalar)>),
}

impl Small {
    fn value(self) -> Value {
        match self {
            Small::Scalar(s) => s.value(),
            Small::Array(items) => Value::Array(items.into_iter().map(Scalar::value).collect()),
            Small::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k, v.value()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    at: String,
    role: String,
    actor_id: Option<String>,
    officer: Option<String>,
    cert_serial: Option<String>,
    action: u8,
    message_id: Option<String>,
    counterparts: Vec<String>,
    outcome: u8,
    code: Option<String>,
    justification: Option<String>,
    request_id: Option<String>,
    node: Option<String>,
    details: Option<Vec<(String, Small)>>,
    seq: u64,
    prev_hash: [u8; 32],
    /// Which field to tamper with, and how.
    tamper: u8,
    tamper_text: String,
}

fn draft_of(i: Input) -> RecordDraft {
    RecordDraft {
        at: i.at,
        actor: Actor {
            role: i.role.into(),
            id: i.actor_id,
            officer: i.officer,
            cert_serial: i.cert_serial,
        },
        action: Action::ALL[usize::from(i.action) % Action::ALL.len()],
        message_id: i.message_id,
        counterparts: i.counterparts,
        outcome: Outcome::ALL[usize::from(i.outcome) % Outcome::ALL.len()],
        code: i.code,
        justification: i.justification,
        request_id: i.request_id,
        node: i.node,
        details: i.details.map(|members| {
            members
                .into_iter()
                .map(|(k, v)| (k, v.value()))
                .collect::<Map<_, _>>()
        }),
    }
}

/// A string different from `old`: `text` if it differs, else `old` + "x".
fn other_string(old: &str, text: &str) -> String {
    if old == text {
        format!("{old}x")
    } else {
        text.to_owned()
    }
}

/// A different value for an optional string: `None` ↔ `Some`, or another text.
fn other_opt(old: &Option<String>, text: &str, drop: bool) -> Option<String> {
    match old {
        None => Some(text.to_owned()),
        Some(_) if drop => None,
        Some(s) => Some(other_string(s, text)),
    }
}

/// Changes exactly one field of `rec` to a different value; returns its name.
fn tamper(rec: &mut AuditRecord, which: u8, text: &str) -> &'static str {
    let drop = which & 0x80 != 0;
    let d = &mut rec.draft;
    match which % 18 {
        0 => {
            rec.seq = rec.seq.wrapping_add(1);
            "seq"
        }
        1 => {
            let mut bytes = brdo::audit::record::decode_hash(&rec.prev_hash).expect("hex");
            bytes[usize::from(which) % 32] ^= 1 << (which % 8);
            rec.prev_hash = hex_lower(&bytes);
            "prev_hash"
        }
        2 => {
            let mut bytes = brdo::audit::record::decode_hash(&rec.hash).expect("hex");
            bytes[usize::from(which) % 32] ^= 1 << (which % 8);
            rec.hash = hex_lower(&bytes);
            "hash"
        }
        3 => {
            d.at = other_string(&d.at, text);
            "at"
        }
        4 => {
            d.actor.role = other_string(d.actor.role.as_str(), text).into();
            "actor.role"
        }
        5 => {
            d.actor.id = other_opt(&d.actor.id, text, drop);
            "actor.id"
        }
        6 => {
            d.actor.officer = other_opt(&d.actor.officer, text, drop);
            "actor.officer"
        }
        7 => {
            d.actor.cert_serial = other_opt(&d.actor.cert_serial, text, drop);
            "actor.cert_serial"
        }
        8 => {
            let i = Action::ALL
                .iter()
                .position(|a| *a == d.action)
                .expect("known");
            d.action = Action::ALL
                [(i + 1 + usize::from(which) % (Action::ALL.len() - 1)) % Action::ALL.len()];
            "action"
        }
        9 => {
            d.message_id = other_opt(&d.message_id, text, drop);
            "message_id"
        }
        10 => {
            match (d.counterparts.is_empty(), drop) {
                (false, true) => {
                    d.counterparts.pop();
                }
                (false, false) => {
                    let last = d.counterparts.last_mut().expect("non-empty");
                    *last = other_string(last, text);
                }
                (true, _) => d.counterparts.push(text.to_owned()),
            }
            "counterparts"
        }
        11 => {
            let i = Outcome::ALL
                .iter()
                .position(|o| *o == d.outcome)
                .expect("known");
            d.outcome = Outcome::ALL
                [(i + 1 + usize::from(which) % (Outcome::ALL.len() - 1)) % Outcome::ALL.len()];
            "outcome"
        }
        12 => {
            d.code = other_opt(&d.code, text, drop);
            "code"
        }
        13 => {
            d.justification = other_opt(&d.justification, text, drop);
            "justification"
        }
        14 => {
            d.request_id = other_opt(&d.request_id, text, drop);
            "request_id"
        }
        15 => {
            d.node = other_opt(&d.node, text, drop);
            "node"
        }
        16 => {
            match &mut d.details {
                None => d.details = Some(Map::new()),
                Some(_) if drop => d.details = None,
                // A member that is not there yet is added; one that is, removed.
                Some(map) => {
                    if map.remove(text).is_none() {
                        map.insert(text.to_owned(), Value::Null);
                    }
                }
            }
            "details"
        }
        _ => {
            // A string member of details changed, or a new string member.
            let map = d.details.get_or_insert_with(Map::new);
            let key = map.keys().next().cloned().unwrap_or_default();
            let new = match map.get(&key) {
                Some(Value::String(s)) => other_string(s, text),
                _ => format!("{text}\u{1}"),
            };
            map.insert(key, Value::String(new));
            "details member"
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    // Above 2^53 RFC 8785 writes a number as the nearest double, so
    // neighbouring seqs would share a canonical form and a hash (fuzzing
    // found that at once: fuzz/regressions/audit_record/). The chain refuses
    // such seqs; below the limit, every field change changes the hash.
    let seq = input.seq;
    if seq > brdo::audit::record::MAX_SEQ {
        let prev_hash = hex_lower(&input.prev_hash);
        assert!(
            draft_of(input).chain(seq, &prev_hash).is_err(),
            "seq {seq} must be refused"
        );
        return;
    }
    let prev_hash = hex_lower(&input.prev_hash);
    let which = input.tamper;
    let text = input.tamper_text.clone();
    let draft = draft_of(input);

    let rec = draft
        .clone()
        .chain(seq, &prev_hash)
        .expect("valid prev_hash");
    assert_eq!(rec.hash.len(), 64);
    assert!(
        rec.hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "hash {:?} is not lowercase hex",
        rec.hash
    );
    assert!(rec.hash_matches(), "fresh record does not verify");

    // JCS idempotence on the served form.
    let served = rec.to_json();
    let canonical = canonicalize(&served);
    let reparsed: Value = serde_json::from_str(&canonical)
        .unwrap_or_else(|e| panic!("canonical form is not JSON ({e}): {canonical}"));
    let again = canonicalize(&reparsed);
    assert_eq!(canonical, again, "canonicalisation is not idempotent");

    // A verifier holding only the served JSON recomputes the same hash.
    let Value::Object(mut body) = reparsed else {
        panic!("served record is not an object");
    };
    let served_hash = body.remove("hash");
    let served_prev = body.remove("prev_hash");
    assert_eq!(served_hash, Some(Value::String(rec.hash.clone())));
    assert_eq!(served_prev, Some(Value::String(prev_hash.clone())));
    let recomputed =
        chain_hash(&prev_hash, &canonicalize(&Value::Object(body))).expect("valid prev_hash");
    assert_eq!(
        recomputed, rec.hash,
        "hash not reproducible from the served JSON"
    );

    // Tampering with one field is detected.
    let mut tampered = rec.clone();
    let field = tamper(&mut tampered, which, &text);
    assert_ne!(tampered, rec, "tamper({field}) changed nothing");
    assert!(
        !tampered.hash_matches(),
        "changing {field} leaves hash_matches() true\nbefore: {}\nafter:  {}",
        canonicalize(&rec.to_json()),
        canonicalize(&tampered.to_json())
    );
});
