//! Untrusted query string of `GET /v1/inbox` → `parse_query`.
//!
//! Properties: never panics; on success `limit` is within 1..=500 and
//! `wait` ≤ 60 (the API's `MAX_LIMIT` and `MAX_WAIT_SECS`), and a cursor is
//! 1 to `cursor::MAX_LEN` bytes (it is opened later, against the caller's
//! key); a query with no
//! parameters at all gives the defaults; on failure at least one error is
//! named and no error's field name is longer than `text::ECHO_MAX`
//! characters and the cut mark (field names are echoed back to the caller
//! and cut there).

#![no_main]

use brdo::api::inbox::{DEFAULT_LIMIT, MAX_LIMIT, MAX_WAIT_SECS, parse_query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_query(Some(s)) {
        Ok(q) => {
            assert!((1..=MAX_LIMIT).contains(&q.limit), "limit {}", q.limit);
            if let Some(after) = &q.after {
                assert!(
                    !after.is_empty() && after.len() <= brdo::app::cursor::MAX_LEN,
                    "after {after:?}"
                );
            }
            assert!(q.wait <= MAX_WAIT_SECS, "wait {}", q.wait);
            if s.split('&').all(str::is_empty) {
                assert_eq!((q.after, q.limit, q.wait), (None, DEFAULT_LIMIT, 0));
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected without an error");
            for e in &errors {
                // The echo is cut at ECHO_MAX characters and marked `…`.
                assert!(
                    e.field.chars().count() <= brdo::domain::text::ECHO_MAX + 1,
                    "field {:?}",
                    e.field
                );
            }
        }
    }
});
