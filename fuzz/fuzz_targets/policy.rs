//! Untrusted `policy.toml` text → `Policy::parse`.
//!
//! Properties:
//! * parsing never panics;
//! * an error points into the text: line ≥ 1, column ≥ 1, line ≤ number of
//!   lines + 1 (a file ending in a newline has an empty last line), and the
//!   column lies within that line (≤ its length in characters + 1), where a
//!   line is what lies between `\n`s, as `line_col` counts;
//! * an accepted policy obeys every rule `validate` promises: partners are
//!   keyed by their own id, every agreement has ≥ 2 known, distinct parties,
//!   ≥ 1 purpose, special categories only with personal data, no third-country
//!   party under `union_law`; retention days are ≥ 1, default_days ≤
//!   max_days, and every rule has ≥ 1 subject and days within 1..=max_days.

#![no_main]

use std::path::Path;

use brdo::policy::{LegalBasis, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text, Path::new("fuzz.toml")) {
        Err(e) => {
            let lines = text.lines().count();
            assert!(e.line >= 1, "line {} < 1: {e}", e.line);
            assert!(e.column >= 1, "column {} < 1: {e}", e.column);
            assert!(
                e.line <= lines + 1,
                "line {} beyond the {lines} lines of the text: {e}",
                e.line
            );
            let line_text = text.split('\n').nth(e.line - 1).unwrap_or("");
            let width = line_text.chars().count();
            assert!(
                e.column <= width + 1,
                "column {} beyond line {} ({width} characters): {e}",
                e.column,
                e.line
            );
            assert_eq!(e.file, Path::new("fuzz.toml"));
            assert!(!e.message.is_empty(), "error without a message");
        }
        Ok(p) => {
            assert!(!p.partners.is_empty(), "a policy without partners");
            for (id, partner) in &p.partners {
                assert_eq!(id, &partner.id, "partner keyed by another id");
                assert!(!partner.name.trim().is_empty());
                assert!(
                    partner.country.len() == 2
                        && partner.country.bytes().all(|b| b.is_ascii_uppercase()),
                    "country {:?}",
                    partner.country
                );
            }
            for a in &p.agreements {
                assert!(a.parties.len() >= 2, "agreement with < 2 parties");
                for party in &a.parties {
                    let partner = p
                        .partner(party)
                        .unwrap_or_else(|| panic!("agreement names unknown partner {party}"));
                    assert!(
                        !(a.basis == LegalBasis::UnionLaw && partner.third_country),
                        "union_law covers third-country partner {party}"
                    );
                }
                assert!(!a.reference.trim().is_empty());
                assert!(!a.purposes.is_empty());
                assert!(!a.special_categories || a.personal_data);
            }
            let r = &p.retention;
            assert!(r.default_days >= 1 && r.review_days >= 1 && r.max_days >= 1);
            assert!(
                r.default_days <= r.max_days,
                "default_days {} > max_days {}",
                r.default_days,
                r.max_days
            );
            for rule in &r.rules {
                assert!((1..=r.max_days).contains(&rule.days));
                assert!(!rule.subjects.is_empty());
            }
        }
    }
});
