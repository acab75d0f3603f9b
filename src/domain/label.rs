//! The security label: classification, handling codes, releasability.
//!
//! Modelled on the confidentiality label of STANAG 4774 and on Europol's
//! handling codes. The label decides who may ever hold a message, so it is
//! parsed strictly and kept whole with every copy.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;
use time::Date;

use super::fields::{FieldErrors, Obj, as_array, as_str, enum_set, text};
use super::partner::PartnerId;
use super::string_enum;

string_enum! {
    /// Classification levels in ascending order; the derived `Ord` is the
    /// order the policy compares with, so declaration order matters.
    pub enum Classification {
        /// Europol's Basic Protection Level: not classified.
        BasicProtection = "BASIC_PROTECTION",
        /// RESTREINT UE/EU RESTRICTED.
        EuRestricted = "EU_RESTRICTED",
        /// CONFIDENTIEL UE/EU CONFIDENTIAL.
        EuConfidential = "EU_CONFIDENTIAL",
        /// SECRET UE/EU SECRET.
        EuSecret = "EU_SECRET",
        /// TRÈS SECRET UE/EU TOP SECRET.
        EuTopSecret = "EU_TOP_SECRET",
    }
}

impl Classification {
    /// The bilingual display marking that people see on screen and in print,
    /// as the EU classified-information rules spell it.
    pub fn marking(self) -> &'static str {
        match self {
            Self::BasicProtection => "BASIC PROTECTION LEVEL",
            Self::EuRestricted => "RESTREINT UE/EU RESTRICTED",
            Self::EuConfidential => "CONFIDENTIEL UE/EU CONFIDENTIAL",
            Self::EuSecret => "SECRET UE/EU SECRET",
            Self::EuTopSecret => "TRÈS SECRET UE/EU TOP SECRET",
        }
    }

    /// A small integer for storage and ordering in SQL.
    pub(crate) fn rank(self) -> i64 {
        match self {
            Self::BasicProtection => 0,
            Self::EuRestricted => 1,
            Self::EuConfidential => 2,
            Self::EuSecret => 3,
            Self::EuTopSecret => 4,
        }
    }
}

string_enum! {
    /// Europol handling codes.
    pub enum HandlingCode {
        /// Use only to prevent and combat crime (always applies).
        H0 = "H0",
        /// Not to be used in judicial proceedings without the provider's permission.
        H1 = "H1",
        /// Not to be disseminated further without the provider's permission.
        H2 = "H2",
        /// Other restrictions, stated in `h3_text`.
        H3 = "H3",
    }
}

/// Longest `h3_text` accepted, in characters.
pub(crate) const H3_TEXT_MAX: usize = 1000;
/// Most partners a `releasable_to` list may name.
pub(crate) const RELEASABLE_MAX: usize = 64;

/// A validated security label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// How sensitive the content is.
    pub classification: Classification,
    /// The handling codes; always contains `H0`, which applies whether
    /// listed or not.
    pub handling_codes: BTreeSet<HandlingCode>,
    /// The H3 restriction text; present exactly when `H3` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h3_text: Option<String>,
    /// The only partners who may ever hold the information, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releasable_to: Option<BTreeSet<PartnerId>>,
    /// Date by which the need to keep the information is reviewed.
    #[serde(skip_serializing_if = "Option::is_none", with = "date_opt")]
    pub review_on: Option<Date>,
}

impl Label {
    /// Whether a handling code applies.
    pub fn has(&self, code: HandlingCode) -> bool {
        self.handling_codes.contains(&code)
    }

    /// Whether `partner` may hold information under this label.
    pub(crate) fn releasable_to_partner(&self, partner: &PartnerId) -> bool {
        self.releasable_to
            .as_ref()
            .is_none_or(|set| set.contains(partner))
    }

    /// Reads a label as stored (validated when it was submitted; a review
    /// date may have passed since).
    pub(crate) fn from_stored(value: &Value) -> Option<Self> {
        let mut errs = FieldErrors::default();
        Self::parse(value, "label", Date::MIN, &mut errs)
    }

    /// Parses a label object at `path`. `today` bounds `review_on`, which
    /// must not lie in the past.
    pub fn parse(value: &Value, path: &str, today: Date, errs: &mut FieldErrors) -> Option<Self> {
        let mut o = Obj::new(value, path, errs)?;
        let before = errs.as_slice().len();

        let classification = o.required_str("classification", errs).and_then(|s| {
            Classification::parse(s).or_else(|| {
                errs.push(
                    o.path_of("classification"),
                    format!("must be one of {}", Classification::allowed()),
                );
                None
            })
        });

        let codes_path = o.path_of("handling_codes");
        let handling_codes = match o.optional("handling_codes") {
            Some(v) => enum_set(
                v,
                &codes_path,
                HandlingCode::parse,
                &HandlingCode::allowed(),
                errs,
            ),
            None => Some(BTreeSet::new()),
        }
        .map(|mut set| {
            set.insert(HandlingCode::H0);
            set
        });

        let h3_path = o.path_of("h3_text");
        let h3_text = o
            .optional_str("h3_text", errs)
            .and_then(|s| text(s, &h3_path, 1, H3_TEXT_MAX, true, errs));
        if let Some(codes) = &handling_codes {
            let has_h3 = codes.contains(&HandlingCode::H3);
            match (&h3_text, has_h3, o.optional("h3_text").is_some()) {
                (None, true, false) => errs.push(h3_path.clone(), "is required when H3 is listed"),
                (Some(_), false, _) => {
                    errs.push(h3_path.clone(), "is only allowed when H3 is listed")
                }
                _ => {}
            }
        }

        let rel_path = o.path_of("releasable_to");
        let releasable_to = match o.optional("releasable_to") {
            None => Some(None),
            Some(v) => parse_partner_set(v, &rel_path, 1, RELEASABLE_MAX, errs).map(Some),
        };

        let review_path = o.path_of("review_on");
        let review_on = match o.optional_str("review_on", errs) {
            None => Some(None),
            Some(s) => match parse_date(s) {
                Some(d) if d < today => {
                    errs.push(review_path, "must not be in the past");
                    None
                }
                Some(d) => Some(Some(d)),
                None => {
                    errs.push(review_path, "must be a date like 2029-11-21");
                    None
                }
            },
        };

        o.finish(errs);
        if errs.as_slice().len() != before {
            return None;
        }
        Some(Label {
            classification: classification?,
            handling_codes: handling_codes?,
            h3_text,
            releasable_to: releasable_to?,
            review_on: review_on?,
        })
    }
}

/// Parses a list of distinct partner ids of `min..=max` entries.
pub(crate) fn parse_partner_set(
    value: &Value,
    path: &str,
    min: usize,
    max: usize,
    errs: &mut FieldErrors,
) -> Option<BTreeSet<PartnerId>> {
    let items = as_array(value, path, errs)?;
    if items.len() < min || items.len() > max {
        errs.push(
            path,
            format!("must list {min} to {max} partners, not {}", items.len()),
        );
        return None;
    }
    let mut set = BTreeSet::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(s) = as_str(item, &p, errs) else {
            ok = false;
            continue;
        };
        match PartnerId::parse(s) {
            Some(id) => {
                if !set.insert(id) {
                    errs.push(p, format!("{s} is listed twice"));
                    ok = false;
                }
            }
            None => {
                errs.push(p, "must be a partner id such as AL-CTD");
                ok = false;
            }
        }
    }
    ok.then_some(set)
}

/// Parses a calendar date in the `YYYY-MM-DD` form.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if s.len() != 10 {
        return None;
    }
    Date::parse(s, &format).ok()
}

/// Formats a date as `YYYY-MM-DD`.
pub(crate) fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Serde glue for optional `YYYY-MM-DD` dates.
pub(crate) mod date_opt {
    use serde::Serializer;
    use time::Date;

    /// Writes the date as `YYYY-MM-DD`.
    pub(crate) fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_date(*d)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2026 - 11 - 21);

    fn parse(v: Value) -> Result<Label, Vec<String>> {
        let mut errs = FieldErrors::default();
        Label::parse(&v, "label", TODAY, &mut errs).ok_or_else(|| {
            errs.into_vec()
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect()
        })
    }

    #[test]
    fn classification_order_is_the_contract_order() {
        use Classification::*;
        assert!(BasicProtection < EuRestricted);
        assert!(EuRestricted < EuConfidential);
        assert!(EuConfidential < EuSecret);
        assert!(EuSecret < EuTopSecret);
        assert_eq!(EuRestricted.marking(), "RESTREINT UE/EU RESTRICTED");
    }

    #[test]
    fn full_label_parses_and_h0_is_implied() {
        let l = parse(json!({
            "classification": "EU_RESTRICTED",
            "handling_codes": ["H2", "H3"],
            "h3_text": "Not to be shared with border police units.",
            "releasable_to": ["RS-MOI", "EU-ECTC"],
            "review_on": "2029-11-21"
        }))
        .expect("valid");
        assert!(l.has(HandlingCode::H0) && l.has(HandlingCode::H2) && l.has(HandlingCode::H3));
        assert!(!l.has(HandlingCode::H1));
        assert_eq!(l.review_on, Some(date!(2029 - 11 - 21)));
        assert!(l.releasable_to_partner(&PartnerId::parse("RS-MOI").expect("id")));
        assert!(!l.releasable_to_partner(&PartnerId::parse("XK-CTD").expect("id")));
    }

    #[test]
    fn h3_needs_text_and_text_needs_h3() {
        let e = parse(json!({"classification": "EU_RESTRICTED", "handling_codes": ["H3"]}))
            .unwrap_err();
        assert_eq!(e, ["label.h3_text: is required when H3 is listed"]);
        let e = parse(json!({"classification": "EU_RESTRICTED", "h3_text": "x"})).unwrap_err();
        assert_eq!(e, ["label.h3_text: is only allowed when H3 is listed"]);
    }

    #[test]
    fn every_error_is_listed() {
        let e = parse(json!({
            "classification": "SECRET",
            "handling_codes": ["H4", "H1", "H1"],
            "releasable_to": ["rs-moi"],
            "review_on": "2020-01-01",
            "colour": "red"
        }))
        .unwrap_err();
        assert_eq!(
            e,
            [
                "label.classification: must be one of BASIC_PROTECTION, EU_RESTRICTED, EU_CONFIDENTIAL, EU_SECRET, EU_TOP_SECRET",
                "label.handling_codes[0]: must be one of H0, H1, H2, H3",
                "label.handling_codes[2]: H1 is listed twice",
                "label.releasable_to[0]: must be a partner id such as AL-CTD",
                "label.review_on: must not be in the past",
                "label.colour: is not a known field",
            ]
        );
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2029-02-28").is_some());
        assert!(parse_date("2029-02-29").is_none());
        assert!(parse_date("2029-2-28").is_none());
        assert!(parse_date("2029-02-28T00:00:00Z").is_none());
        assert_eq!(format_date(date!(2029 - 02 - 03)), "2029-02-03");
    }
}
