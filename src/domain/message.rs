//! A message as a partner submits it, and the rules its fields obey.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;
use time::Date;
use uuid::Uuid;

use super::evaluation::Evaluation;
use super::fields::{FieldErrors, Obj, as_array, as_bool, as_int_in, as_str, enum_set, text};
use super::label::{Label, parse_partner_set};
use super::partner::PartnerId;
use super::string_enum;

string_enum! {
    /// Purposes of processing under Art. 1 of the Law Enforcement Directive.
    pub enum Purpose {
        /// Preventing criminal offences.
        Prevention = "prevention",
        /// Investigating criminal offences.
        Investigation = "investigation",
        /// Detecting criminal offences.
        Detection = "detection",
        /// Prosecuting criminal offences.
        Prosecution = "prosecution",
        /// Executing criminal penalties.
        ExecutionOfPenalties = "execution_of_penalties",
    }
}

string_enum! {
    /// Categories of data subjects (LED Art. 6); retention rules key on them.
    pub enum DataSubject {
        /// Suspected of an offence.
        Suspect = "suspect",
        /// Convicted of an offence.
        Convicted = "convicted",
        /// Victim of an offence.
        Victim = "victim",
        /// Witness.
        Witness = "witness",
        /// Contact or associate.
        Contact = "contact",
        /// Informant.
        Informant = "informant",
        /// Any other person.
        Other = "other",
    }
}

string_enum! {
    /// Special categories of personal data (LED Art. 10).
    pub enum SpecialCategory {
        /// Racial or ethnic origin.
        RacialOrEthnicOrigin = "racial_or_ethnic_origin",
        /// Political opinions.
        PoliticalOpinions = "political_opinions",
        /// Religious or philosophical beliefs.
        ReligiousOrPhilosophicalBeliefs = "religious_or_philosophical_beliefs",
        /// Trade union membership.
        TradeUnionMembership = "trade_union_membership",
        /// Genetic data.
        Genetic = "genetic",
        /// Biometric data for identification.
        Biometric = "biometric",
        /// Data concerning health.
        Health = "health",
        /// Sex life or sexual orientation.
        SexLifeOrOrientation = "sex_life_or_orientation",
    }
}

/// What a message says about the personal data it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonalData {
    /// Categories of persons the message is about; empty = no personal data.
    pub subjects: BTreeSet<DataSubject>,
    /// Special categories (Art. 10) present.
    pub special_categories: BTreeSet<SpecialCategory>,
    /// Why processing the special categories is strictly necessary.
    pub special_categories_basis: Option<String>,
    /// Whether data of minors is included.
    pub minors: bool,
}

impl PersonalData {
    /// Reads personal-data facts as stored (without the sealed basis).
    pub(crate) fn from_stored(value: &Value) -> Option<Self> {
        Some(Self {
            subjects: serde_json::from_value(value.get("subjects")?.clone()).ok()?,
            special_categories: serde_json::from_value(value.get("special_categories")?.clone())
                .ok()?,
            special_categories_basis: None,
            minors: value.get("minors")?.as_bool()?,
        })
    }

    /// Whether the message carries personal data at all.
    pub(crate) fn present(&self) -> bool {
        !self.subjects.is_empty()
    }

    fn parse(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<Self> {
        let mut o = Obj::new(value, path, errs)?;
        let before = errs.as_slice().len();
        let subjects_path = o.path_of("subjects");
        let subjects = o.required("subjects", errs).and_then(|v| {
            enum_set(
                v,
                &subjects_path,
                DataSubject::parse,
                &DataSubject::allowed(),
                errs,
            )
        });
        let sc_path = o.path_of("special_categories");
        let special_categories = match o.optional("special_categories") {
            Some(v) => enum_set(
                v,
                &sc_path,
                SpecialCategory::parse,
                &SpecialCategory::allowed(),
                errs,
            ),
            None => Some(BTreeSet::new()),
        };
        let basis_path = o.path_of("special_categories_basis");
        let basis = o
            .optional_str("special_categories_basis", errs)
            .and_then(|s| text(s, &basis_path, 1, 1000, true, errs));
        let minors_path = o.path_of("minors");
        let minors = match o.optional("minors") {
            Some(v) => as_bool(v, &minors_path, errs),
            None => Some(false),
        };
        if let (Some(sc), None) = (&special_categories, &basis)
            && !sc.is_empty()
            && o.optional("special_categories_basis").is_none()
        {
            errs.push(
                basis_path.clone(),
                "is required when special_categories is not empty",
            );
        }
        if let (Some(sc), Some(_)) = (&special_categories, &basis)
            && sc.is_empty()
        {
            errs.push(
                basis_path,
                "is only allowed when special_categories is not empty",
            );
        }
        if let (Some(subjects), Some(sc), Some(minors)) = (&subjects, &special_categories, minors)
            && subjects.is_empty()
        {
            if !sc.is_empty() {
                errs.push(
                    sc_path,
                    "needs at least one entry in subjects: special categories are personal data",
                );
            }
            if minors {
                errs.push(
                    minors_path,
                    "needs at least one entry in subjects: data of minors is personal data",
                );
            }
        }
        o.finish(errs);
        if errs.as_slice().len() != before {
            return None;
        }
        Some(PersonalData {
            subjects: subjects?,
            special_categories: special_categories?,
            special_categories_basis: basis,
            minors: minors?,
        })
    }
}

/// Limits on a submitted message's fields, from the contract.
pub mod limits {
    /// Most recipients of one message.
    pub(crate) const RECIPIENTS_MAX: usize = 64;
    /// Longest subject, in characters.
    pub(crate) const SUBJECT_MAX: usize = 500;
    /// Longest case reference, in characters.
    pub(crate) const CASE_REF_MAX: usize = 64;
    /// Longest content type.
    pub(crate) const CONTENT_TYPE_MAX: usize = 127;
    /// Most attachments on one message.
    pub(crate) const ATTACHMENTS_MAX: usize = 32;
    /// Longest retention a sender may ask for, in days (the policy's
    /// `max_days` caps it further).
    pub(crate) const RETENTION_DAYS_MAX: u64 = 36_500;
}

/// A message a partner submits, fully validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMessage {
    /// The partners it is addressed to (distinct, never the sender: the
    /// policy checks the latter).
    pub recipients: BTreeSet<PartnerId>,
    /// Subject line (content: encrypted at rest).
    pub subject: String,
    /// Body (content: encrypted at rest).
    pub body: String,
    /// MIME type of the body.
    pub content_type: String,
    /// Security label.
    pub label: Label,
    /// Evaluation of source and information.
    pub evaluation: Evaluation,
    /// Purpose of processing.
    pub purpose: Purpose,
    /// Personal data carried.
    pub personal_data: PersonalData,
    /// The sender's case reference.
    pub case_ref: Option<String>,
    /// The message this one answers.
    pub in_reply_to: Option<Uuid>,
    /// Ids of attachments uploaded beforehand.
    pub attachments: Vec<Uuid>,
    /// Retention the sender asks for, in days.
    pub retention_days: Option<u32>,
}

impl NewMessage {
    /// Parses a submitted JSON document, reporting every field error.
    pub fn parse(value: &Value, today: Date) -> Result<Self, FieldErrors> {
        let mut errs = FieldErrors::default();
        let parsed = Self::parse_into(value, today, &mut errs);
        match parsed {
            Some(m) if errs.is_empty() => Ok(m),
            _ => {
                if errs.is_empty() {
                    errs.push("(body)", "is not a valid message");
                }
                Err(errs)
            }
        }
    }

    fn parse_into(value: &Value, today: Date, errs: &mut FieldErrors) -> Option<Self> {
        let mut o = Obj::new(value, "", errs)?;

        let recipients = o
            .required("recipients", errs)
            .and_then(|v| parse_partner_set(v, "recipients", 1, limits::RECIPIENTS_MAX, errs));
        let subject = o
            .required_str("subject", errs)
            .and_then(|s| text(s, "subject", 1, limits::SUBJECT_MAX, false, errs));
        let body = o.required_str("body", errs).filter(|s| {
            if s.is_empty() {
                errs.push("body", "must not be empty");
                false
            } else if s.contains('\0') {
                errs.push("body", "must not contain NUL characters");
                false
            } else {
                true
            }
        });
        let content_type = match o.optional_str("content_type", errs) {
            Some(s) => check_content_type(s, errs).then(|| s.to_owned()),
            None if o.optional("content_type").is_some() => None,
            None => Some("text/plain".to_owned()),
        };
        let label = o
            .required("label", errs)
            .and_then(|v| Label::parse(v, "label", today, errs));
        let evaluation = o
            .required("evaluation", errs)
            .and_then(|v| Evaluation::parse(v, "evaluation", errs));
        let purpose = o.required_str("purpose", errs).and_then(|s| {
            Purpose::parse(s).or_else(|| {
                errs.push("purpose", format!("must be one of {}", Purpose::allowed()));
                None
            })
        });
        let personal_data = o
            .required("personal_data", errs)
            .and_then(|v| PersonalData::parse(v, "personal_data", errs));
        let case_ref = o
            .optional_str("case_ref", errs)
            .and_then(|s| text(s, "case_ref", 1, limits::CASE_REF_MAX, false, errs));
        let in_reply_to = o
            .optional("in_reply_to")
            .and_then(|v| parse_uuid(v, "in_reply_to", errs));
        let attachments = match o.optional("attachments") {
            Some(v) => parse_uuid_list(v, "attachments", limits::ATTACHMENTS_MAX, errs),
            None => Some(Vec::new()),
        };
        let retention_days = o
            .optional("retention_days")
            .and_then(|v| as_int_in(v, "retention_days", 1, limits::RETENTION_DAYS_MAX, errs))
            .and_then(|n| u32::try_from(n).ok());
        o.finish(errs);

        Some(NewMessage {
            recipients: recipients?,
            subject: subject?,
            body: body?.to_owned(),
            content_type: content_type?,
            label: label?,
            evaluation: evaluation?,
            purpose: purpose?,
            personal_data: personal_data?,
            case_ref,
            in_reply_to,
            attachments: attachments?,
            retention_days,
        })
    }
}

/// Parses a UUID string field.
pub(crate) fn parse_uuid(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<Uuid> {
    let s = as_str(value, path, errs)?;
    match Uuid::try_parse(s) {
        Ok(u) if s.len() == 36 => Some(u),
        _ => {
            errs.push(
                path,
                "must be a UUID such as 0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b",
            );
            None
        }
    }
}

fn parse_uuid_list(
    value: &Value,
    path: &str,
    max: usize,
    errs: &mut FieldErrors,
) -> Option<Vec<Uuid>> {
    let items = as_array(value, path, errs)?;
    if items.len() > max {
        errs.push(
            path,
            format!("must list at most {max} entries, not {}", items.len()),
        );
        return None;
    }
    let mut out: Vec<Uuid> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match parse_uuid(item, &p, errs) {
            Some(u) if out.contains(&u) => {
                errs.push(p, "is listed twice");
                ok = false;
            }
            Some(u) => out.push(u),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Checks a MIME type: `type/subtype` with optional parameters, printable
/// ASCII only (it is echoed in headers).
fn check_content_type(s: &str, errs: &mut FieldErrors) -> bool {
    let essence = s.split(';').next().unwrap_or_default().trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let ok = s.len() <= limits::CONTENT_TYPE_MAX
        && s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(t, st)| token(t) && token(st));
    if !ok {
        errs.push(
            "content_type",
            format!(
                "must be a MIME type such as text/plain, at most {} characters",
                limits::CONTENT_TYPE_MAX
            ),
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2026 - 11 - 21);

    pub(crate) fn example() -> Value {
        json!({
            "recipients": ["RS-MOI", "EU-ECTC"],
            "subject": "Travel of a returning foreign terrorist fighter",
            "body": "Details follow.",
            "content_type": "text/plain",
            "label": {
                "classification": "EU_RESTRICTED",
                "handling_codes": ["H0", "H2", "H3"],
                "h3_text": "Not to be shared with border police units.",
                "releasable_to": ["RS-MOI", "EU-ECTC"],
                "review_on": "2029-11-21"
            },
            "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
            "purpose": "investigation",
            "personal_data": {
                "subjects": ["suspect"],
                "special_categories": [],
                "special_categories_basis": null,
                "minors": false
            },
            "case_ref": "AL-2026-0042",
            "in_reply_to": null,
            "attachments": [],
            "retention_days": 365
        })
    }

    fn fields(v: Value) -> Vec<String> {
        NewMessage::parse(&v, TODAY)
            .map(|_| Vec::new())
            .unwrap_or_else(|e| e.into_vec().into_iter().map(|e| e.field).collect())
    }

    #[test]
    fn the_contract_example_is_valid() {
        let m = NewMessage::parse(&example(), TODAY).expect("valid");
        assert_eq!(m.recipients.len(), 2);
        assert_eq!(m.retention_days, Some(365));
        assert_eq!(m.purpose, Purpose::Investigation);
        assert!(m.personal_data.present());
    }

    #[test]
    fn minimal_message_takes_defaults() {
        let v = json!({
            "recipients": ["RS-MOI"], "subject": "s", "body": "b",
            "label": {"classification": "BASIC_PROTECTION"},
            "evaluation": {"scheme": "NATO-6x6", "source": "F", "information": "6"},
            "purpose": "prevention", "personal_data": {"subjects": []}
        });
        let m = NewMessage::parse(&v, TODAY).expect("valid");
        assert_eq!(m.content_type, "text/plain");
        assert!(m.attachments.is_empty() && m.case_ref.is_none() && m.retention_days.is_none());
    }

    #[test]
    fn every_field_error_is_reported_at_once() {
        let mut v = example();
        v["recipients"] = json!(["RS-MOI", "RS-MOI", "nope"]);
        v["subject"] = json!("");
        v["label"]["handling_codes"] = json!(["H3"]);
        v["label"]["h3_text"] = Value::Null;
        v["evaluation"]["source"] = json!("Z");
        v["purpose"] = json!("curiosity");
        v["personal_data"]["special_categories"] = json!(["health"]);
        v["retention_days"] = json!(0);
        v["attachments"] = json!(["not-a-uuid"]);
        v["colour"] = json!("red");
        assert_eq!(
            fields(v),
            [
                "recipients[1]",
                "recipients[2]",
                "subject",
                "label.h3_text",
                "evaluation.source",
                "purpose",
                "personal_data.special_categories_basis",
                "attachments[0]",
                "retention_days",
                "colour",
            ]
        );
    }

    #[test]
    fn special_categories_need_a_basis_and_subjects() {
        let mut v = example();
        v["personal_data"] = json!({
            "subjects": [], "special_categories": ["biometric"],
            "special_categories_basis": "Identification of a suspect", "minors": true
        });
        assert_eq!(
            fields(v),
            ["personal_data.special_categories", "personal_data.minors"]
        );
        let mut v = example();
        v["personal_data"]["special_categories_basis"] = json!("why");
        assert_eq!(fields(v), ["personal_data.special_categories_basis"]);
    }

    #[test]
    fn wrong_types_are_named() {
        let mut v = example();
        v["recipients"] = json!("RS-MOI");
        v["personal_data"]["minors"] = json!("no");
        v["retention_days"] = json!("365");
        let errs = NewMessage::parse(&v, TODAY).unwrap_err().into_vec();
        assert_eq!(errs[0].message, "must be an array, not a string");
        assert_eq!(errs[1].field, "personal_data.minors");
        assert_eq!(errs[2].field, "retention_days");
    }

    #[test]
    fn non_object_documents_are_rejected() {
        assert_eq!(fields(json!([1, 2])), ["(body)"]);
        assert_eq!(fields(json!(null)), ["(body)"]);
    }

    #[test]
    fn content_types() {
        for ok in [
            "text/plain",
            "application/json",
            "text/plain; charset=utf-8",
        ] {
            let mut v = example();
            v["content_type"] = json!(ok);
            assert!(fields(v).is_empty(), "{ok}");
        }
        for bad in ["text", "/plain", "text/pl ain", "text/plain\r\nX: y", ""] {
            let mut v = example();
            v["content_type"] = json!(bad);
            assert_eq!(fields(v), ["content_type"], "{bad:?}");
        }
    }
}
