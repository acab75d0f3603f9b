//! RFC 8785 JSON Canonicalization Scheme (JCS) over [`serde_json::Value`].
//!
//! Every audit record is hashed over its canonical form, so two parties that
//! hold the same record must produce the same bytes regardless of how the JSON
//! was formatted, which order object members arrived in, or how numbers were
//! spelled. This module produces exactly those bytes:
//!
//! * no insignificant whitespace;
//! * object members sorted by the UTF-16 code units of their names
//!   (RFC 8785 §3.2.3), which differs from UTF-8 byte order when a name holds
//!   both a supplementary-plane character and one in U+E000..U+FFFF;
//! * strings escaped exactly as RFC 8785 §3.2.2.2 prescribes;
//! * numbers serialised like ECMAScript `Number.prototype.toString`
//!   (RFC 8785 §3.2.2.3), using the shortest round-tripping digits from `ryu`.
//!
//! The functions are total: a `serde_json::Value` cannot hold NaN, infinities,
//! lone surrogates or duplicate member names, which are the inputs RFC 8785
//! tells a canonicaliser to reject.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Largest integer magnitude that an IEEE 754 double represents exactly
/// (2^53). Integers up to this magnitude print identically as integers and as
/// ECMAScript numbers, so they can skip the floating-point path.
const MAX_EXACT_INT: u64 = 1 << 53;

/// Returns the RFC 8785 canonical form of `value`.
///
/// This is the text an audit record is hashed over: feed its UTF-8 bytes to the
/// hash chain. Allocates one `String`; use [`canonicalize_into`] to reuse a
/// buffer on the hot path.
#[must_use]
pub fn canonicalize(value: &Value) -> String {
    let mut out = String::new();
    canonicalize_into(value, &mut out);
    out
}

/// Appends the RFC 8785 canonical form of `value` to `out`.
///
/// The hot path of the audit log calls this for every record, so it never
/// clones the value and allocates only to sort the members of an object whose
/// iteration order is not already the canonical one (a `serde_json::Map`
/// without `preserve_order` almost always is). `out` is not cleared first.
pub(crate) fn canonicalize_into(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonicalize_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

/// Writes an object with its members sorted by the UTF-16 code units of their
/// names (RFC 8785 §3.2.3).
fn write_object(map: &Map<String, Value>, out: &mut String) {
    out.push('{');
    let already_sorted = map
        .keys()
        .is_sorted_by(|a, b| cmp_utf16(a, b) == Ordering::Less);
    if already_sorted {
        write_members(map.iter(), out);
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_unstable_by(|a, b| cmp_utf16(a.0, b.0));
        write_members(members.into_iter(), out);
    }
    out.push('}');
}

fn write_members<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut String) {
    for (i, (name, value)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(name, out);
        out.push(':');
        canonicalize_into(value, out);
    }
}

/// Compares two strings by their UTF-16 code units, without transcoding.
///
/// UTF-8 byte order equals code point order, and code point order equals
/// UTF-16 order except when the first differing characters are a
/// supplementary-plane character (UTF-16 high surrogate 0xD800..0xDBFF, UTF-8
/// lead byte 0xF0..0xF4) and a character in U+E000..U+FFFF (UTF-8 lead byte
/// 0xEE or 0xEF): there UTF-16 puts the supplementary character first.
///
/// Because the common prefix is byte-identical, the first differing byte sits
/// at the same offset in both strings; if one of them is a 4-byte lead byte,
/// that offset is a character boundary in both.
fn cmp_utf16(a: &str, b: &str) -> Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    match ab.iter().zip(bb).find(|(x, y)| x != y) {
        None => ab.len().cmp(&bb.len()),
        Some((&x, &y)) => match (x >= 0xF0, y >= 0xF0) {
            (true, false) if y >= 0xEE => Ordering::Less,
            (false, true) if x >= 0xEE => Ordering::Greater,
            _ => x.cmp(&y),
        },
    }
}

/// Writes a JSON string literal escaped per RFC 8785 §3.2.2.2: `"` and `\`
/// and the control characters below U+0020 are escaped (the five with a short
/// form as `\b \t \n \f \r`, the rest as `\u00xx` in lowercase hex);
/// everything else, including U+007F and `/`, is written as literal UTF-8.
pub(crate) fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, &byte) in s.as_bytes().iter().enumerate() {
        let short: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x09 => "\\t",
            0x0A => "\\n",
            0x0C => "\\f",
            0x0D => "\\r",
            0x00..=0x1F => "",
            _ => continue,
        };
        // `byte` is ASCII, so `i` and `i + 1` are character boundaries.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes a number as ECMAScript would after converting it to an IEEE 754
/// double (RFC 8785 §3.2.2.3). Integers are converted like JavaScript does, so
/// `u64::MAX` becomes `18446744073709552000`.
fn write_number(n: &Number, out: &mut String) {
    if let Some(i) = n.as_i64()
        && i.unsigned_abs() <= MAX_EXACT_INT
    {
        if i < 0 {
            out.push('-');
        }
        push_u64(i.unsigned_abs(), out);
        return;
    }
    if let Some(u) = n.as_u64()
        && u <= MAX_EXACT_INT
    {
        push_u64(u, out);
        return;
    }
    match n.as_f64() {
        Some(f) => write_f64(f, out),
        // Only reachable with serde_json's `arbitrary_precision` feature, for
        // a number beyond the double range; ECMAScript's JSON.stringify writes
        // such a value (Infinity) as `null`.
        None => out.push_str("null"),
    }
}

/// Writes the decimal digits of `v`.
fn push_u64(mut v: u64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    loop {
        pos -= 1;
        // `v % 10` is below 10, so the cast is lossless.
        buf[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &digit in &buf[pos..] {
        out.push(char::from(digit));
    }
}

/// Writes a double exactly like ECMAScript `Number::toString(x)` with radix
/// 10 (ECMA-262 §6.1.6.1.20): shortest round-tripping digits `s` (k digits)
/// with decimal exponent `n` such that `x = s × 10^(n-k)`, laid out as an
/// integer, a fraction, `0.000ddd` or `d.ddde±x` depending on `n`.
fn write_f64(f: f64, out: &mut String) {
    if !f.is_finite() {
        // A serde_json::Value cannot hold these; JSON.stringify writes `null`.
        out.push_str("null");
        return;
    }
    if f == 0.0 {
        // Both +0 and -0 serialise as "0".
        out.push('0');
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    let mut buffer = ryu::Buffer::new();
    let (digits, k, n) = decompose(buffer.format_finite(f.abs()));
    let digits = &digits[..k];
    let k = k as i32; // at most 32, see `decompose`

    if k <= n && n <= 21 {
        // Integer: the digits followed by n - k zeros.
        push_digits(digits, out);
        push_zeros(n - k, out);
    } else if 0 < n && n <= 21 {
        // Fraction with the decimal point after n digits (here n < k).
        let (int_part, frac_part) = digits.split_at(n as usize);
        push_digits(int_part, out);
        out.push('.');
        push_digits(frac_part, out);
    } else if -6 < n && n <= 0 {
        // 0.000ddd
        out.push_str("0.");
        push_zeros(-n, out);
        push_digits(digits, out);
    } else {
        // d.ddde±x
        let (first, rest) = digits.split_first().unwrap_or((&0, &[]));
        push_digits(&[*first], out);
        if !rest.is_empty() {
            out.push('.');
            push_digits(rest, out);
        }
        let exponent = n - 1;
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        push_u64(u64::from(exponent.unsigned_abs()), out);
    }
}

/// Splits the output of a shortest-digits float formatter for a positive,
/// finite, non-zero number (`ryu` prints forms like `123.0`, `0.00123`,
/// `1.5e-7` and `1e21`) into its significant digits (as values 0..=9, without
/// leading or trailing zeros), their count `k`, and the ECMAScript exponent
/// `n`, so that the number equals `digits × 10^(n - k)`.
fn decompose(text: &str) -> ([u8; 32], usize, i32) {
    let mut digits = [0u8; 32];
    let mut k = 0usize;
    // Position of the decimal point relative to the first significant digit.
    let mut point: i32 = 0;
    let mut after_point = false;
    let mut bytes = text.bytes();
    for byte in bytes.by_ref() {
        match byte {
            b'0'..=b'9' => {
                let digit = byte - b'0';
                if k == 0 && digit == 0 {
                    // Leading zero: only moves the point if it is fractional.
                    if after_point {
                        point -= 1;
                    }
                    continue;
                }
                if let Some(slot) = digits.get_mut(k) {
                    *slot = digit;
                    k += 1;
                }
                if !after_point {
                    point += 1;
                }
            }
            b'.' => after_point = true,
            b'e' | b'E' => break,
            _ => {}
        }
    }
    let mut exponent: i32 = 0;
    let mut negative = false;
    for byte in bytes {
        match byte {
            b'-' => negative = true,
            b'0'..=b'9' => {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i32::from(byte - b'0'));
            }
            _ => {}
        }
    }
    if negative {
        exponent = -exponent;
    }
    while k > 0 && digits[k - 1] == 0 {
        k -= 1;
    }
    (digits, k, point.saturating_add(exponent))
}

fn push_digits(digits: &[u8], out: &mut String) {
    for &digit in digits {
        out.push(char::from(b'0' + digit));
    }
}

fn push_zeros(count: i32, out: &mut String) {
    for _ in 0..count {
        out.push('0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::path::PathBuf;

    use crate::audit::vectors_dir;

    fn num(f: f64) -> String {
        canonicalize(&Value::from(f))
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn jcs_vectors_match_byte_for_byte() {
        let dir = vectors_dir().join("jcs");
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir.join("input"))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.join("input").display()))
            .map(|entry| entry.expect("directory entry").path())
            .collect();
        inputs.sort();
        assert!(
            inputs.len() >= 6,
            "expected the JCS vectors, found {inputs:?}"
        );
        for input in &inputs {
            let name = input.file_name().expect("file name");
            let expected = std::fs::read(dir.join("output").join(name)).expect("output file");
            let value: Value =
                serde_json::from_slice(&std::fs::read(input).expect("input file")).expect("JSON");
            let got = canonicalize(&value);
            assert_eq!(
                got.as_bytes(),
                expected.as_slice(),
                "{}: got {got}, want {}",
                input.display(),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn audit_chain_canonical_forms() {
        let path = vectors_dir().join("audit/chain.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let doc = parse(&text);
        let chain = doc["chain"].as_array().expect("chain array");
        assert_eq!(chain.len(), 4);
        for entry in chain {
            let mut record = entry["record"].clone();
            let object = record.as_object_mut().expect("record object");
            object.remove("hash").expect("hash member");
            object.remove("prev_hash").expect("prev_hash member");
            assert_eq!(
                canonicalize(&record),
                entry["canonical"].as_str().expect("canonical")
            );
        }
    }

    #[test]
    fn brief_number_cases() {
        assert_eq!(num(1e21), "1e+21");
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(0.000001), "0.000001");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(0.0), "0");
        assert_eq!(
            canonicalize(&parse("123456789012345680000")),
            "123456789012345680000"
        );
        assert_eq!(canonicalize(&parse("-0")), "0");
        assert_eq!(canonicalize(&parse("-0.0")), "0");
        assert_eq!(canonicalize(&parse("1E30")), "1e+30");
        assert_eq!(canonicalize(&parse("4.50")), "4.5");
        assert_eq!(canonicalize(&parse("2e-3")), "0.002");
        assert_eq!(canonicalize(&parse("1.0")), "1");
        assert_eq!(canonicalize(&parse("100")), "100");
        assert_eq!(canonicalize(&parse("1e20")), "100000000000000000000");
        assert_eq!(canonicalize(&parse("1e-6")), "0.000001");
        assert_eq!(canonicalize(&parse("1.5e-7")), "1.5e-7");
        assert_eq!(canonicalize(&parse("123e-20")), "1.23e-18");
        assert_eq!(canonicalize(&parse("0.1")), "0.1");
        assert_eq!(num(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(-1.5), "-1.5");
        assert_eq!(num(123.456), "123.456");
        assert_eq!(num(1e100), "1e+100");
        assert_eq!(num(1.2345e-100), "1.2345e-100");
        assert_eq!(num(f64::MIN_POSITIVE), "2.2250738585072014e-308");
        // An exact tie between two shortest candidates resolves to the even
        // digit (ECMA-262 Number::toString Note 2), as ryu does.
        let tie = 732_231_037_549_425.0 / 8.0; // exactly 91528879693678.125
        assert_eq!(num(tie), "91528879693678.12");
        assert_eq!(num(-tie), "-91528879693678.12");
    }

    #[test]
    fn integers_are_converted_to_doubles_like_javascript() {
        assert_eq!(canonicalize(&json!(0)), "0");
        assert_eq!(canonicalize(&json!(-1)), "-1");
        assert_eq!(
            canonicalize(&json!(9_007_199_254_740_992_u64)),
            "9007199254740992"
        );
        assert_eq!(
            canonicalize(&json!(9_007_199_254_740_993_u64)),
            "9007199254740992"
        );
        assert_eq!(
            canonicalize(&json!(-9_007_199_254_740_993_i64)),
            "-9007199254740992"
        );
        assert_eq!(canonicalize(&json!(u64::MAX)), "18446744073709552000");
        assert_eq!(canonicalize(&json!(i64::MAX)), "9223372036854776000");
        assert_eq!(canonicalize(&json!(i64::MIN)), "-9223372036854776000");
        // 2^60: shortest digits, then zero padding, exactly like JavaScript.
        assert_eq!(
            canonicalize(&json!(1_152_921_504_606_846_976_u64)),
            "1152921504606847000"
        );
    }

    /// RFC 8785 Appendix B, minus NaN and Infinity (not representable in a
    /// `serde_json::Value`).
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let table: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, want) in table {
            assert_eq!(num(f64::from_bits(bits)), want, "bits {bits:016x}");
            // The same value parsed from its canonical text canonicalises the same.
            assert_eq!(canonicalize(&parse(want)), want, "reparsed {want}");
        }
    }

    #[test]
    fn string_escaping_per_rfc8785() {
        let mut expected = String::from("\"");
        for c in 0u8..0x20 {
            expected.push_str(&match c {
                0x08 => "\\b".to_owned(),
                0x09 => "\\t".to_owned(),
                0x0A => "\\n".to_owned(),
                0x0C => "\\f".to_owned(),
                0x0D => "\\r".to_owned(),
                _ => format!("\\u{c:04x}"),
            });
        }
        expected.push_str(" !\\\"#/\\\\\u{7f}\u{80}é€😂\"");
        let mut input: String = (0u8..0x20).map(char::from).collect();
        input.push_str(" !\"#/\\\u{7f}\u{80}é€😂");
        assert_eq!(canonicalize(&Value::String(input)), expected);
        assert_eq!(canonicalize(&json!("\u{1f}")), "\"\\u001f\"");
        assert_eq!(canonicalize(&json!("")), "\"\"");
    }

    #[test]
    fn members_sorted_by_utf16_code_units() {
        // UTF-8 byte order would put U+E000, U+FB33 and U+FFFF before the
        // supplementary characters; UTF-16 puts the surrogate pairs first.
        let value = json!({
            "\u{ffff}": 1, "\u{1f602}": 2, "\u{10000}": 3, "\u{e000}": 4,
            "\u{d7ff}": 5, "a": 6, "\u{20ac}": 7, "\u{fb33}": 8, "": 9, "aa": 10,
        });
        assert_eq!(
            canonicalize(&value),
            "{\"\":9,\"a\":6,\"aa\":10,\"\u{20ac}\":7,\"\u{d7ff}\":5,\"\u{10000}\":3,\
             \"\u{1f602}\":2,\"\u{e000}\":4,\"\u{fb33}\":8,\"\u{ffff}\":1}"
        );
        assert_eq!(cmp_utf16("\u{20ac}", "\u{1f602}"), Ordering::Less);
        assert_eq!(cmp_utf16("\u{fb33}", "\u{1f602}"), Ordering::Greater);
    }

    #[test]
    fn nested_structures_and_literals() {
        let value = json!({"b": [true, false, null, {"z": [], "y": {}}], "a": "x"});
        assert_eq!(
            canonicalize(&value),
            "{\"a\":\"x\",\"b\":[true,false,null,{\"y\":{},\"z\":[]}]}"
        );
        let mut out = String::from("prefix:");
        canonicalize_into(&json!([1, "2"]), &mut out);
        assert_eq!(out, "prefix:[1,\"2\"]");
    }

    fn arb_char() -> impl Strategy<Value = char> {
        prop_oneof![
            any::<char>(),
            (0u32..0x80).prop_map(|c| char::from_u32(c).unwrap_or('a')),
            (0xE000u32..=0xFFFF).prop_map(|c| char::from_u32(c).unwrap_or('a')),
            (0x10000u32..0x10100).prop_map(|c| char::from_u32(c).unwrap_or('a')),
        ]
    }

    fn arb_string() -> impl Strategy<Value = String> {
        proptest::collection::vec(arb_char(), 0..6).prop_map(|cs| cs.into_iter().collect())
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            (-1_000_000i64..1_000_000, -30i32..30)
                .prop_map(|(m, e)| Value::from(m as f64 * 10f64.powi(e))),
            arb_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::vec((arb_string(), inner), 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        // No failure persistence: a failing case is reported with its seed
        // instead of writing regression files into the source tree.
        #![proptest_config(ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn canonicalize_is_idempotent(value in arb_value()) {
            let once = canonicalize(&value);
            let reparsed: Value = serde_json::from_str(&once).expect("canonical JSON parses");
            prop_assert_eq!(canonicalize(&reparsed), once);
        }

        #[test]
        fn utf16_order_matches_transcoding(a in arb_string(), b in arb_string()) {
            prop_assert_eq!(cmp_utf16(&a, &b), a.encode_utf16().cmp(b.encode_utf16()));
        }

        #[test]
        fn integer_fast_path_matches_double_path(i in any::<i64>(), u in any::<u64>()) {
            let mut via_double = String::new();
            write_f64(i as f64, &mut via_double);
            prop_assert_eq!(canonicalize(&Value::from(i)), via_double);
            let mut via_double = String::new();
            write_f64(u as f64, &mut via_double);
            prop_assert_eq!(canonicalize(&Value::from(u)), via_double);
        }

        /// ECMAScript's digits: the fewest that round-trip (k minimal), and
        /// among those the closest to x, ties to even (ECMA-262 Number::toString
        /// Note 2). Checked against Rust's correctly rounded fixed-precision
        /// formatting, which is an independent implementation.
        #[test]
        fn numbers_use_shortest_closest_digits(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assume!(f.is_finite() && f != 0.0);
            let text = num(f);
            // Same double back (the text is a valid ECMAScript number literal).
            let back: f64 = text.parse().expect("number text");
            prop_assert_eq!(back, f);
            let x = f.abs();
            let mut buffer = ryu::Buffer::new();
            let (digits, k, n) = decompose(buffer.format_finite(x));
            let (closest, kc, nc) = decompose(&format!("{:.*e}", k - 1, x));
            prop_assert_eq!((&digits[..k], n), (&closest[..kc], nc));
            if k > 1 {
                let shorter: f64 = format!("{:.*e}", k - 2, x).parse().expect("number");
                prop_assert_ne!(shorter, x);
            }
        }
    }
}
