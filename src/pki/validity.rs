//! Validity windows: checked time arithmetic, so a huge `--days` is an error rather than a panic.

use time::{Duration, OffsetDateTime, UtcOffset};

use super::PkiError;

/// How far back `not_before` is set, so a peer whose clock runs slightly behind
/// does not reject a certificate issued a moment ago.
pub(crate) const BACKDATE: Duration = Duration::minutes(5);

/// `now - 5 minutes .. now + days`, in UTC.
pub(crate) fn window(
    now: OffsetDateTime,
    days: u32,
) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    if days == 0 {
        return Err(PkiError::InvalidValidity {
            detail: "the certificate must be valid for at least one day".to_owned(),
        });
    }
    let now = now.to_offset(UtcOffset::UTC);
    let not_after = now
        .checked_add(Duration::days(i64::from(days)))
        .ok_or_else(|| too_far(days))?;
    let not_before = now.checked_sub(BACKDATE).ok_or_else(|| too_far(days))?;
    check(not_before, not_after)
}

/// Accepts an explicit window if X.509 can encode it and it is not empty.
pub(crate) fn check(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    let nb = not_before.to_offset(UtcOffset::UTC);
    let na = not_after.to_offset(UtcOffset::UTC);
    for t in [nb, na] {
        if !(1950..=9999).contains(&t.year()) {
            return Err(PkiError::InvalidValidity {
                detail: format!("{t} is outside the years 1950-9999 that X.509 can encode"),
            });
        }
    }
    // Certificates carry whole seconds; compare what will actually be encoded.
    if na.unix_timestamp() <= nb.unix_timestamp() {
        return Err(PkiError::InvalidValidity {
            detail: format!("not_after {na} is not later than not_before {nb}"),
        });
    }
    Ok((nb, na))
}

fn too_far(days: u32) -> PkiError {
    PkiError::InvalidValidity {
        detail: format!("{days} days is too far in the future"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn window_backdates_and_extends() {
        let now = datetime!(2030-01-01 12:00 +02:00);
        let (nb, na) = window(now, 10).unwrap();
        assert_eq!(nb, datetime!(2030-01-01 09:55 UTC));
        assert_eq!(na, datetime!(2030-01-11 10:00 UTC));
    }

    #[test]
    fn rejects_empty_and_unencodable_windows() {
        let now = datetime!(2030-01-01 0:00 UTC);
        assert!(window(now, 0).is_err());
        assert!(window(now, u32::MAX).is_err());
        assert!(check(now, now).is_err());
        assert!(check(now, now - Duration::days(1)).is_err());
        assert!(check(datetime!(1900-01-01 0:00 UTC), now).is_err());
    }
}
