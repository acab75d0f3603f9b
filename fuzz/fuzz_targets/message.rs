//! Untrusted message JSON → `NewMessage::parse`.
//!
//! Properties:
//! * parsing never panics, whatever the bytes;
//! * a rejected document always names at least one field error;
//! * an accepted message round-trips: serialising it with serde_json and
//!   parsing the result again (same `today`) yields an equal `NewMessage`.
//!   Defaults the parser fills in (`content_type` = text/plain, H0 in the
//!   handling codes, empty `attachments`, `minors` = false) are written out
//!   explicitly by `Serialize`, and `None` is written as `null` or omitted,
//!   which the parser reads as "not given", so the whole value round-trips;
//! * serialising the re-parsed message gives the same JSON again (a fixed
//!   point after one round).

#![no_main]

use brdo::domain::NewMessage;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use time::Date;
use time::macros::date;

/// A fixed "today": `review_on` must not lie before it, so the round trip
/// must use the same date.
const TODAY: Date = date!(2026 - 11 - 21);

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let msg = match NewMessage::parse(&value, TODAY) {
        Ok(msg) => msg,
        Err(errs) => {
            assert!(!errs.is_empty(), "rejected without a field error");
            return;
        }
    };
    let json = serde_json::to_value(&msg).expect("a parsed message serialises");
    let again = match NewMessage::parse(&json, TODAY) {
        Ok(m) => m,
        Err(errs) => panic!(
            "serialised message is rejected: {:?}\n{json:#}",
            errs.into_vec()
        ),
    };
    assert_eq!(msg, again, "round trip changed the message\n{json:#}");
    let json_again = serde_json::to_value(&again).expect("serialises");
    assert_eq!(json, json_again, "serialisation is not a fixed point");
});
