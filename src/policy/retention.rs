//! When a message must be reviewed and when it is erased (SPEC §4).

use std::collections::BTreeSet;

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use super::file::RetentionPolicy;
use crate::domain::DataSubject;

/// Which rule set the retention period, recorded so the erasure's audit
/// record can name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RetentionBasis {
    /// The sender asked for less than any rule.
    Sender {
        /// Days asked for.
        days: u32,
    },
    /// A `[[retention.rule]]` matched the data subjects.
    Rule {
        /// Index of the rule in the policy file, from 0.
        index: usize,
        /// Its days.
        days: u32,
    },
    /// `default_days`.
    Default {
        /// Its days.
        days: u32,
    },
    /// `max_days` capped everything else.
    Max {
        /// Its days.
        days: u32,
    },
}

impl RetentionBasis {
    /// The number of days the basis gives.
    pub fn days(&self) -> u32 {
        match self {
            Self::Sender { days }
            | Self::Rule { days, .. }
            | Self::Default { days }
            | Self::Max { days } => *days,
        }
    }
}

/// Retention dates of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Erased after this instant unless a review keeps it or a hold stops it.
    pub retain_until: OffsetDateTime,
    /// Date by which the need to keep it is reviewed.
    pub review_on: Date,
    /// Which rule gave `retain_until`.
    pub basis: RetentionBasis,
}

/// Computes retention: `accepted_at` + the smallest of the sender's days,
/// the tightest matching rule and `default_days`, never above `max_days`.
/// `review_on` is the label's, or `accepted_at` + `review_days`.
pub fn compute_retention(
    policy: &RetentionPolicy,
    accepted_at: OffsetDateTime,
    sender_days: Option<u32>,
    subjects: &BTreeSet<DataSubject>,
    label_review_on: Option<Date>,
) -> Retention {
    let mut basis = RetentionBasis::Default {
        days: policy.default_days,
    };
    for (index, rule) in policy.rules.iter().enumerate() {
        if rule.days < basis.days() && !rule.subjects.is_disjoint(subjects) {
            basis = RetentionBasis::Rule {
                index,
                days: rule.days,
            };
        }
    }
    if let Some(days) = sender_days
        && days < basis.days()
    {
        basis = RetentionBasis::Sender { days };
    }
    if basis.days() > policy.max_days {
        basis = RetentionBasis::Max {
            days: policy.max_days,
        };
    }
    let review_on = label_review_on
        .unwrap_or_else(|| (accepted_at + Duration::days(i64::from(policy.review_days))).date());
    Retention {
        retain_until: accepted_at + Duration::days(i64::from(basis.days())),
        review_on,
        basis,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::domain::DataSubject::*;
    use crate::policy::file::tests::sample;

    const AT: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

    fn days(r: &Retention) -> i64 {
        (r.retain_until - AT).whole_days()
    }

    #[test]
    fn smallest_of_sender_rule_default() {
        let p = sample().retention;
        let r = compute_retention(&p, AT, None, &BTreeSet::new(), None);
        assert_eq!(
            (days(&r), &r.basis),
            (1095, &RetentionBasis::Default { days: 1095 })
        );
        assert_eq!(r.review_on, date!(2029 - 11 - 20));

        let r = compute_retention(&p, AT, None, &[Suspect, Witness].into(), None);
        assert_eq!(
            (days(&r), &r.basis),
            (
                365,
                &RetentionBasis::Rule {
                    index: 0,
                    days: 365
                }
            )
        );

        let r = compute_retention(
            &p,
            AT,
            Some(30),
            &[Witness].into(),
            Some(date!(2027 - 01 - 01)),
        );
        assert_eq!(
            (days(&r), &r.basis),
            (30, &RetentionBasis::Sender { days: 30 })
        );
        assert_eq!(r.review_on, date!(2027 - 01 - 01));

        // A sender cannot lengthen retention beyond the rules.
        let r = compute_retention(&p, AT, Some(5000), &[Suspect].into(), None);
        assert_eq!(days(&r), 1095);
    }

    #[test]
    fn never_above_max() {
        let mut p = sample().retention;
        p.default_days = 4000;
        p.max_days = 1825;
        let r = compute_retention(&p, AT, None, &BTreeSet::new(), None);
        assert_eq!(
            (days(&r), &r.basis),
            (1825, &RetentionBasis::Max { days: 1825 })
        );
    }
}
