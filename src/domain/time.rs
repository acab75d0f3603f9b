//! Instants as the gateway writes them: unix milliseconds in the store, and
//! RFC 3339 UTC text with milliseconds (`2026-01-31T12:00:00.000Z`) in audit
//! records, problem documents and API answers. One place, so the store, the
//! audit log and the API can never disagree on a spelling or a rounding.

use time::{OffsetDateTime, UtcOffset};

/// Formats an instant the way records carry it: UTC, milliseconds, `Z`.
pub fn format_at(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Unix milliseconds (as stored) → the record spelling; an instant out of
/// range reads as the empty string rather than a made-up date.
pub fn ms_to_text(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(format_at)
        .unwrap_or_default()
}

/// An instant → unix milliseconds, saturating far beyond any retention.
pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_through_text() {
        let t = OffsetDateTime::from_unix_timestamp(1_769_860_800).expect("t");
        assert_eq!(format_at(t), "2026-01-31T12:00:00.000Z");
        assert_eq!(ms_to_text(to_ms(t) + 7), "2026-01-31T12:00:00.007Z");
        assert_eq!(ms_to_text(i64::MAX), "");
    }
}
