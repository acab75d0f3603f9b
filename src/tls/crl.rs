//! Which CRL may be put in force: never one whose nextUpdate has passed,
//! never one older than the list already in force or last recorded.
//!
//! A CRL is a signed statement "as of list N, these serials are revoked".
//! Its signature alone does not stop an old list (a lower N, from before a
//! revocation) being put back on disk to let a revoked partner in again;
//! the CRL number and nextUpdate do. The highest number accepted is kept
//! in the audit log (`crl_update` records), so a restart with an older
//! file on disk is refused as well.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::audit::record::{Action, Outcome};
use crate::pki::CrlInfo;
use crate::store::{AuditFilter, Store, StoreError};

/// Days before nextUpdate at which the gateway starts warning that the CRL
/// must be re-signed (`brdo pki crl refresh`).
pub(crate) const CRL_WARNING_DAYS: i64 = 30;

/// Why a CRL is not put in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrlRefusal {
    /// Its nextUpdate has passed: it may be an old list replayed.
    #[error(
        "its nextUpdate ({next_update}) has passed, so it may be an old list put back; \
         re-sign it with `brdo pki crl refresh --dir DIR`"
    )]
    Expired {
        /// nextUpdate, RFC 3339.
        next_update: String,
    },
    /// Its number is lower than the list in force (or last recorded).
    #[error(
        "its CRL number {offered} is lower than {in_force}, the number of the CRL in force \
         (or last recorded in the audit log); an older list would un-revoke certificates"
    )]
    Rollback {
        /// The number of the refused list.
        offered: u128,
        /// The number in force.
        in_force: u128,
    },
    /// Same number as the list in force, but other serials.
    #[error(
        "its CRL number {number} is that of the CRL in force, but it lists other serials; \
         a CA never signs two lists with one number"
    )]
    Conflict {
        /// The shared number.
        number: u128,
    },
}

impl CrlRefusal {
    /// The code in audit records and the metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "crl_expired",
            Self::Rollback { .. } => "crl_rollback",
            Self::Conflict { .. } => "crl_conflict",
        }
    }
}

/// The CRL facts the gateway holds in force.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CrlState {
    /// CRL number.
    pub number: u128,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// Revoked serials.
    pub revoked: BTreeSet<String>,
}

impl From<&CrlInfo> for CrlState {
    fn from(i: &CrlInfo) -> Self {
        Self {
            number: i.number,
            next_update: i.next_update,
            revoked: i.revoked.clone(),
        }
    }
}

/// Refuses a CRL whose nextUpdate is at or before `now` (unix seconds).
pub(crate) fn check_fresh(info: &CrlInfo, now: i64) -> Result<(), CrlRefusal> {
    if info.next_update <= now {
        return Err(CrlRefusal::Expired {
            next_update: rfc3339(info.next_update),
        });
    }
    Ok(())
}

/// Refuses a CRL that would replace `in_force` with an older list, or with
/// a different list under the same number.
pub(crate) fn check_successor(offered: &CrlInfo, in_force: &CrlState) -> Result<(), CrlRefusal> {
    if offered.number < in_force.number {
        return Err(CrlRefusal::Rollback {
            offered: offered.number,
            in_force: in_force.number,
        });
    }
    if offered.number == in_force.number && offered.revoked != in_force.revoked {
        return Err(CrlRefusal::Conflict {
            number: offered.number,
        });
    }
    Ok(())
}

/// Serials added to and removed from the revoked set.
pub fn changes(before: &BTreeSet<String>, after: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    (
        after.difference(before).cloned().collect(),
        before.difference(after).cloned().collect(),
    )
}

/// Details of an accepted `crl_update` record: the list now in force (whole,
/// so the next start can compare against it) and what changed since
/// `before`. `cause` is `start`, `watch` or `reload`.
pub(crate) fn accepted_details(
    after: &CrlState,
    before: Option<&CrlState>,
    cause: &str,
) -> Map<String, Value> {
    let empty = BTreeSet::new();
    let (added, removed) = changes(before.map_or(&empty, |b| &b.revoked), &after.revoked);
    let mut m = Map::new();
    m.insert("cause".into(), cause.into());
    m.insert("crl_number".into(), after.number.to_string().into());
    m.insert(
        "previous_crl_number".into(),
        before.map_or(Value::Null, |b| b.number.to_string().into()),
    );
    m.insert("next_update".into(), rfc3339(after.next_update).into());
    m.insert("added".into(), json!(added));
    m.insert("removed".into(), json!(removed));
    m.insert("revoked".into(), json!(after.revoked));
    m
}

/// Details of a refused `crl_update` record.
pub(crate) fn refused_details(
    offered: &CrlInfo,
    in_force: &CrlState,
    cause: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("cause".into(), cause.into());
    m.insert(
        "offered_crl_number".into(),
        offered.number.to_string().into(),
    );
    m.insert(
        "offered_next_update".into(),
        rfc3339(offered.next_update).into(),
    );
    m.insert("crl_number".into(), in_force.number.to_string().into());
    m
}

/// The CRL last accepted according to the audit log (its newest allowed
/// `crl_update` record), or `None` when there is none.
///
/// Why the audit log: it is the gateway's tamper-evident memory, shared by
/// every node of a cluster; a file beside `ca.crl` could be rolled back
/// together with it. A record that cannot be read is an error: fail closed.
pub async fn recorded(store: &Store) -> Result<Option<CrlState>, RecordedError> {
    let filter = AuditFilter {
        action: Some(Action::CrlUpdate.as_str().to_owned()),
        outcome: Some(Outcome::Allowed.as_str().to_owned()),
        descending: true,
        limit: 1,
        ..AuditFilter::default()
    };
    let rows = store.audit_query(&filter, None).await?;
    let Some((record, _)) = rows.into_iter().next() else {
        return Ok(None);
    };
    let bad = || RecordedError::Unreadable { seq: record.seq };
    let details = record.draft.details.as_ref().ok_or_else(bad)?;
    let number = details
        .get("crl_number")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u128>().ok())
        .ok_or_else(bad)?;
    let revoked = details
        .get("revoked")
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(Some(CrlState {
        number,
        next_update: 0,
        revoked,
    }))
}

/// Why the recorded CRL state cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordedError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record exists but does not hold a CRL number and list.
    #[error("audit record {seq} (crl_update) does not hold a readable CRL number and list")]
    Unreadable {
        /// Its seq.
        seq: u64,
    },
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(crate::audit::record::format_at)
        .unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(number: u128, next_update: i64, revoked: &[&str]) -> CrlInfo {
        CrlInfo {
            revoked: revoked.iter().map(|s| (*s).to_owned()).collect(),
            number,
            this_update: 0,
            next_update,
        }
    }

    #[test]
    fn expired_and_older_lists_are_refused_newer_ones_accepted() {
        let now = 1_000_000;
        assert!(check_fresh(&info(1, now + 1, &[]), now).is_ok());
        let e = check_fresh(&info(1, now, &[]), now).unwrap_err();
        assert_eq!(e.code(), "crl_expired");
        assert!(e.to_string().contains("pki crl refresh"), "{e}");
        let in_force = CrlState::from(&info(5, now + 10, &["0a", "0b"]));
        let table: &[(u128, &[&str], Option<&str>)] = &[
            (4, &["0a", "0b"], Some("crl_rollback")),
            (1, &[], Some("crl_rollback")),
            (5, &["0a"], Some("crl_conflict")),
            (5, &["0a", "0b"], None),
            (6, &["0a"], None),
            (6, &["0a", "0b", "0c"], None),
        ];
        for (number, revoked, want) in table {
            let got = check_successor(&info(*number, now + 10, revoked), &in_force)
                .err()
                .map(|e| e.code());
            assert_eq!(got, *want, "number {number} {revoked:?}");
        }
    }

    #[test]
    fn accepted_details_name_added_and_removed_serials() {
        let before = CrlState::from(&info(2, 0, &["0a", "0b"]));
        let after = CrlState::from(&info(3, 86_400, &["0b", "0c"]));
        let d = accepted_details(&after, Some(&before), "watch");
        assert_eq!(d["added"], json!(["0c"]));
        assert_eq!(d["removed"], json!(["0a"]));
        assert_eq!(d["crl_number"], "3");
        assert_eq!(d["previous_crl_number"], "2");
        assert_eq!(d["revoked"], json!(["0b", "0c"]));
        assert_eq!(d["next_update"], "1970-01-02T00:00:00.000Z");
        let first = accepted_details(&after, None, "start");
        assert_eq!(first["added"], json!(["0b", "0c"]));
        assert_eq!(first["previous_crl_number"], Value::Null);
    }
}
