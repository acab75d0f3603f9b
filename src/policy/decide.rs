//! The submit and forward decision (SPEC §4), as one pure function.
//!
//! It reports *every* violation for *every* recipient rather than the first:
//! a partner's officer must be able to see at once that a message fails on
//! both clearance and legal basis, and a data-protection officer reading the
//! audit log must see the same.

use std::collections::BTreeSet;

use serde::Serialize;

use super::file::{Agreement, Policy};
use crate::domain::label::HandlingCode;
use crate::domain::string_enum;
use crate::domain::{Classification, Label, PartnerId, PersonalData, Purpose};

string_enum! {
    /// Why a transfer is refused; the wire codes of SPEC §4.
    pub enum ViolationCode {
        /// Above the gateway's accredited maximum.
        ClassificationExceedsAccreditation = "classification_exceeds_accreditation",
        /// Above the sender's clearance.
        SenderNotCleared = "sender_not_cleared",
        /// Not a known partner, or the sender itself.
        UnknownRecipient = "unknown_recipient",
        /// The recipient is suspended.
        RecipientSuspended = "recipient_suspended",
        /// Above the recipient's clearance.
        RecipientNotCleared = "recipient_not_cleared",
        /// No agreement covers the pair.
        NoLegalBasis = "no_legal_basis",
        /// Above every covering agreement's maximum.
        ClassificationExceedsAgreement = "classification_exceeds_agreement",
        /// The purpose is not permitted.
        PurposeNotPermitted = "purpose_not_permitted",
        /// Personal data is not permitted.
        PersonalDataNotPermitted = "personal_data_not_permitted",
        /// Special categories are not permitted.
        SpecialCategoriesNotPermitted = "special_categories_not_permitted",
        /// The recipient is not in `releasable_to`.
        NotReleasable = "not_releasable",
        /// H2: onward transmission needs the provider's permission.
        HandlingCodeH2 = "handling_code_h2",
        /// H1: judicial use needs the provider's permission.
        HandlingCodeH1 = "handling_code_h1",
    }
}

/// One reason a transfer is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The recipient concerned; `None` when the reason is the sender's or
    /// the gateway's and applies to all recipients alike.
    pub recipient: Option<PartnerId>,
    /// The machine-readable code.
    pub code: ViolationCode,
    /// A sentence for people: names partners, levels and agreements, never
    /// message content.
    pub detail: String,
}

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Every check passed for every recipient.
    Allow,
    /// At least one check failed; all failures are listed.
    Deny(Vec<Violation>),
}

impl Decision {
    /// The violations, empty when allowed.
    pub fn violations(&self) -> &[Violation] {
        match self {
            Decision::Allow => &[],
            Decision::Deny(v) => v,
        }
    }
}

/// What the decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Transfer<'a> {
    /// Who sends (for a forward: the forwarding holder).
    pub sender: &'a PartnerId,
    /// To whom.
    pub recipients: &'a BTreeSet<PartnerId>,
    /// The label that travels.
    pub label: &'a Label,
    /// Purpose of processing.
    pub purpose: Purpose,
    /// Personal data carried.
    pub personal_data: &'a PersonalData,
    /// For an onward transmission: the provider's permissions.
    pub onward: Option<Onward<'a>>,
}

/// The provider's say in an onward transmission.
#[derive(Debug, Clone, Copy)]
pub struct Onward<'a> {
    /// The partner that first provided the information.
    pub originator: &'a PartnerId,
    /// Partners the originator granted a `forward` permission for.
    pub forward_permitted: &'a BTreeSet<PartnerId>,
}

/// Decides a transfer. `accreditation` is the gateway's accredited maximum;
/// `suspended` the partners currently cut off.
pub fn decide(
    policy: &Policy,
    accreditation: Classification,
    suspended: &BTreeSet<PartnerId>,
    t: &Transfer<'_>,
) -> Decision {
    let mut found = Found(Vec::new());
    sender_checks(policy, accreditation, t, &mut found);
    for r in t.recipients {
        recipient_checks(policy, suspended, t, r, &mut found);
    }
    if found.0.is_empty() {
        Decision::Allow
    } else {
        Decision::Deny(found.0)
    }
}

/// The violations found so far, in the order the checks run (the order a
/// denial lists them in).
struct Found(Vec<Violation>);

impl Found {
    fn push(&mut self, recipient: Option<&PartnerId>, code: ViolationCode, detail: String) {
        self.0.push(Violation {
            recipient: recipient.cloned(),
            code,
            detail,
        });
    }
}

/// What applies to every recipient alike: the gateway's accreditation and
/// the sender's clearance.
fn sender_checks(
    policy: &Policy,
    accreditation: Classification,
    t: &Transfer<'_>,
    found: &mut Found,
) {
    let level = t.label.classification;
    if level > accreditation {
        found.push(
            None,
            ViolationCode::ClassificationExceedsAccreditation,
            format!("{level} is above the gateway's accredited maximum {accreditation}"),
        );
    }
    match policy.partner(t.sender) {
        Some(s) if level > s.clearance => found.push(
            None,
            ViolationCode::SenderNotCleared,
            format!("{level} is above {}'s clearance {}", s.id, s.clearance),
        ),
        Some(_) => {}
        None => found.push(
            None,
            ViolationCode::SenderNotCleared,
            format!("{} is not a partner in the policy", t.sender),
        ),
    }
}

/// Everything that holds or fails for recipient `r`.
fn recipient_checks(
    policy: &Policy,
    suspended: &BTreeSet<PartnerId>,
    t: &Transfer<'_>,
    r: &PartnerId,
    found: &mut Found,
) {
    let level = t.label.classification;
    let Some(partner) = policy.partner(r).filter(|_| r != t.sender) else {
        let detail = if r == t.sender {
            format!("{r} cannot send to itself")
        } else {
            format!("{r} is not a partner in the policy")
        };
        found.push(Some(r), ViolationCode::UnknownRecipient, detail);
        return;
    };
    if suspended.contains(r) {
        found.push(
            Some(r),
            ViolationCode::RecipientSuspended,
            format!("{r} is suspended"),
        );
    }
    if level > partner.clearance {
        found.push(
            Some(r),
            ViolationCode::RecipientNotCleared,
            format!("{level} is above {r}'s clearance {}", partner.clearance),
        );
    }
    legal_basis_checks(policy, t, r, found);
    if !t.label.releasable_to_partner(r) {
        found.push(
            Some(r),
            ViolationCode::NotReleasable,
            format!("the label's releasable_to does not include {r}"),
        );
    }
    if let Some(onward) = t.onward
        && t.label.has(HandlingCode::H2)
        && r != onward.originator
        && !onward.forward_permitted.contains(r)
    {
        found.push(
            Some(r),
            ViolationCode::HandlingCodeH2,
            format!(
                "H2: {} has not permitted dissemination to {r}",
                onward.originator
            ),
        );
    }
}

/// Whether an agreement between the sender and `r` allows the message.
fn legal_basis_checks(policy: &Policy, t: &Transfer<'_>, r: &PartnerId, found: &mut Found) {
    let candidates: Vec<&Agreement> = policy.agreements_between(t.sender, r).collect();
    if candidates.is_empty() {
        found.push(
            Some(r),
            ViolationCode::NoLegalBasis,
            format!("no agreement covers transfers between {} and {r}", t.sender),
        );
        return;
    }
    // One agreement must allow the message on every point; when none
    // does, report the one that comes closest (first in file order
    // among equals), so the denial names something actionable.
    let best = candidates
        .iter()
        .map(|a| agreement_violations(a, t))
        .min_by_key(Vec::len)
        .unwrap_or_default();
    for (code, detail) in best {
        found.push(Some(r), code, detail);
    }
}

fn agreement_violations(a: &Agreement, t: &Transfer<'_>) -> Vec<(ViolationCode, String)> {
    let mut v = Vec::new();
    let level = t.label.classification;
    if level > a.max_classification {
        v.push((
            ViolationCode::ClassificationExceedsAgreement,
            format!(
                "{level} is above {} of \"{}\"",
                a.max_classification, a.reference
            ),
        ));
    }
    if !a.purposes.contains(&t.purpose) {
        v.push((
            ViolationCode::PurposeNotPermitted,
            format!(
                "purpose {} is not permitted by \"{}\"",
                t.purpose, a.reference
            ),
        ));
    }
    if t.personal_data.present() && !a.personal_data {
        v.push((
            ViolationCode::PersonalDataNotPermitted,
            format!("\"{}\" does not permit personal data", a.reference),
        ));
    }
    if !t.personal_data.special_categories.is_empty() && !a.special_categories {
        v.push((
            ViolationCode::SpecialCategoriesNotPermitted,
            format!(
                "\"{}\" does not permit special categories of personal data",
                a.reference
            ),
        ));
    }
    v
}

#[cfg(test)]
// A test reads top to bottom as one script: test code is exempt from the length limit.
#[allow(clippy::too_many_lines)]
mod tests {
    use std::path::Path;

    use time::macros::date;

    use super::*;
    use crate::domain::message::{DataSubject, SpecialCategory};
    use crate::policy::file::tests::{SAMPLE, sample};

    fn id(s: &str) -> PartnerId {
        PartnerId::parse(s).expect("partner id")
    }

    fn label(c: Classification) -> Label {
        Label {
            classification: c,
            handling_codes: [HandlingCode::H0].into(),
            h3_text: None,
            releasable_to: None,
            review_on: Some(date!(2029 - 01 - 01)),
        }
    }

    fn no_pd() -> PersonalData {
        PersonalData {
            subjects: BTreeSet::new(),
            special_categories: BTreeSet::new(),
            special_categories_basis: None,
            minors: false,
        }
    }

    struct Case {
        name: &'static str,
        policy: Policy,
        accreditation: Classification,
        suspended: Vec<&'static str>,
        sender: &'static str,
        recipients: Vec<&'static str>,
        label: Label,
        purpose: Purpose,
        pd: PersonalData,
        onward: Option<(&'static str, Vec<&'static str>)>,
        want: Vec<(Option<&'static str>, ViolationCode)>,
    }

    fn case(name: &'static str) -> Case {
        Case {
            name,
            policy: sample(),
            accreditation: Classification::EuConfidential,
            suspended: vec![],
            sender: "AL-CTD",
            recipients: vec!["RS-MOI"],
            label: label(Classification::EuRestricted),
            purpose: Purpose::Investigation,
            pd: no_pd(),
            onward: None,
            want: vec![],
        }
    }

    fn run(c: &Case) -> Vec<(Option<String>, ViolationCode)> {
        let recipients: BTreeSet<_> = c.recipients.iter().map(|r| id(r)).collect();
        let suspended: BTreeSet<_> = c.suspended.iter().map(|r| id(r)).collect();
        let sender = id(c.sender);
        let onward_parts = c
            .onward
            .as_ref()
            .map(|(o, p)| (id(o), p.iter().map(|x| id(x)).collect::<BTreeSet<_>>()));
        let t = Transfer {
            sender: &sender,
            recipients: &recipients,
            label: &c.label,
            purpose: c.purpose,
            personal_data: &c.pd,
            onward: onward_parts.as_ref().map(|(o, p)| Onward {
                originator: o,
                forward_permitted: p,
            }),
        };
        decide(&c.policy, c.accreditation, &suspended, &t)
            .violations()
            .iter()
            .map(|v| (v.recipient.as_ref().map(|r| r.to_string()), v.code))
            .collect()
    }

    #[test]
    fn table() {
        use Classification::*;
        use ViolationCode::*;
        let with_pd = |special: bool| PersonalData {
            subjects: [DataSubject::Suspect].into(),
            special_categories: if special {
                [SpecialCategory::Health].into()
            } else {
                BTreeSet::new()
            },
            special_categories_basis: special.then(|| "needed".to_owned()),
            minors: false,
        };
        let no_pd_policy = Policy::parse(
            &SAMPLE.replace("personal_data = true", "personal_data = false"),
            Path::new("p"),
        )
        .expect("policy");
        let mut cases = vec![
            case("allowed"),
            Case {
                recipients: vec!["RS-MOI", "EU-ECTC"],
                pd: with_pd(false),
                ..case("allowed to two with personal data")
            },
            Case {
                label: label(EuSecret),
                recipients: vec!["EU-ECTC"],
                want: vec![
                    (None, ClassificationExceedsAccreditation),
                    (None, SenderNotCleared),
                    (Some("EU-ECTC"), ClassificationExceedsAgreement),
                ],
                ..case("above accreditation, clearance and agreement")
            },
            Case {
                label: label(EuConfidential),
                sender: "EU-ECTC",
                recipients: vec!["AL-CTD"],
                want: vec![
                    (Some("AL-CTD"), RecipientNotCleared),
                    (Some("AL-CTD"), ClassificationExceedsAgreement),
                ],
                ..case("recipient not cleared")
            },
            Case {
                recipients: vec!["ZZ-NONE", "AL-CTD"],
                want: vec![
                    (Some("AL-CTD"), UnknownRecipient),
                    (Some("ZZ-NONE"), UnknownRecipient),
                ],
                ..case("unknown recipient and self")
            },
            Case {
                suspended: vec!["RS-MOI"],
                want: vec![(Some("RS-MOI"), RecipientSuspended)],
                ..case("suspended recipient")
            },
            Case {
                label: label(BasicProtection),
                recipients: vec!["XK-CTD"],
                want: vec![(Some("XK-CTD"), NoLegalBasis)],
                ..case("no agreement")
            },
            Case {
                purpose: Purpose::ExecutionOfPenalties,
                want: vec![(Some("RS-MOI"), PurposeNotPermitted)],
                ..case("purpose")
            },
            Case {
                policy: no_pd_policy,
                pd: with_pd(false),
                want: vec![(Some("RS-MOI"), PersonalDataNotPermitted)],
                ..case("personal data")
            },
            Case {
                pd: with_pd(true),
                want: vec![(Some("RS-MOI"), SpecialCategoriesNotPermitted)],
                ..case("special categories")
            },
            Case {
                label: Label {
                    releasable_to: Some([id("EU-ECTC")].into()),
                    ..label(EuRestricted)
                },
                recipients: vec!["RS-MOI", "EU-ECTC"],
                want: vec![(Some("RS-MOI"), NotReleasable)],
                ..case("releasability")
            },
            Case {
                sender: "RS-MOI",
                recipients: vec!["EU-ECTC", "AL-CTD"],
                label: Label {
                    handling_codes: [HandlingCode::H0, HandlingCode::H2].into(),
                    ..label(EuRestricted)
                },
                onward: Some(("AL-CTD", vec![])),
                want: vec![(Some("EU-ECTC"), HandlingCodeH2)],
                ..case("H2 forward without permission; back to the originator is fine")
            },
            Case {
                sender: "RS-MOI",
                recipients: vec!["EU-ECTC"],
                label: Label {
                    handling_codes: [HandlingCode::H0, HandlingCode::H2].into(),
                    ..label(EuRestricted)
                },
                onward: Some(("AL-CTD", vec!["EU-ECTC"])),
                ..case("H2 forward with permission")
            },
        ];
        // Several agreements: one allowing on every point is enough.
        let mut two = sample();
        let mut wide = two.agreements[0].clone();
        wide.purposes.insert(Purpose::ExecutionOfPenalties);
        wide.reference = "second".to_owned();
        two.agreements.push(wide);
        cases.push(Case {
            policy: two,
            purpose: Purpose::ExecutionOfPenalties,
            ..case("second agreement allows")
        });
        // Several agreements: none allows; the closest one's reasons are given.
        let mut closest = sample();
        let mut narrow = closest.agreements[0].clone();
        narrow.max_classification = BasicProtection;
        narrow.personal_data = false;
        closest.agreements.insert(0, narrow);
        cases.push(Case {
            policy: closest,
            purpose: Purpose::ExecutionOfPenalties,
            pd: with_pd(false),
            want: vec![(Some("RS-MOI"), PurposeNotPermitted)],
            ..case("closest agreement reported")
        });

        let mut covered = BTreeSet::new();
        for c in &cases {
            let got = run(c);
            let want: Vec<_> = c
                .want
                .iter()
                .map(|(r, code)| (r.map(str::to_owned), *code))
                .collect();
            assert_eq!(got, want, "case {:?}", c.name);
            covered.extend(want.iter().map(|(_, code)| *code));
        }
        // Every submit/forward code except H1 (judicial use) is exercised.
        let all: BTreeSet<_> = ViolationCode::ALL
            .iter()
            .copied()
            .filter(|c| *c != HandlingCodeH1)
            .collect();
        assert_eq!(covered, all);
    }

    #[test]
    fn details_name_no_content() {
        let c = Case {
            label: label(Classification::EuSecret),
            recipients: vec!["EU-ECTC", "ZZ-NONE"],
            ..case("details")
        };
        let sender = id(c.sender);
        let recipients: BTreeSet<_> = c.recipients.iter().map(|r| id(r)).collect();
        let t = Transfer {
            sender: &sender,
            recipients: &recipients,
            label: &c.label,
            purpose: c.purpose,
            personal_data: &c.pd,
            onward: None,
        };
        let d = decide(&c.policy, c.accreditation, &BTreeSet::new(), &t);
        let details: Vec<_> = d.violations().iter().map(|v| v.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "EU_SECRET is above the gateway's accredited maximum EU_CONFIDENTIAL",
                "EU_SECRET is above AL-CTD's clearance EU_RESTRICTED",
                "EU_SECRET is above EU_RESTRICTED of \"Operational agreements with Europol\"",
                "ZZ-NONE is not a partner in the policy",
            ]
        );
    }
}
