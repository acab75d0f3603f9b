//! The request bodies of the lifecycle endpoints, each parsed in one place
//! into the typed input of its operation. Every field error is collected,
//! so a partner learns all that is wrong with a body at once.

use std::collections::BTreeSet;

use serde_json::Value;
use time::OffsetDateTime;

use super::problem::ApiError;
use crate::app::ops::grant::Scope;
use crate::app::ops::review::Decision;
use crate::domain::PartnerId;
use crate::domain::fields::{FieldErrors, Obj, as_int_in, text};
use crate::domain::label::{Label, parse_partner_set};
use crate::policy::Policy;

fn invalid(errs: FieldErrors) -> ApiError {
    ApiError::InvalidMessage(errs.into_vec())
}

/// `{"recipients": [...], "justification": "..."}` of a forward.
pub fn forward(doc: &Value) -> Result<(BTreeSet<PartnerId>, String), ApiError> {
    let mut errs = FieldErrors::default();
    let mut recipients = None;
    let mut justification = None;
    if let Some(mut o) = Obj::new(doc, "", &mut errs) {
        recipients = o
            .required("recipients", &mut errs)
            .and_then(|v| parse_partner_set(v, "recipients", 1, 64, &mut errs));
        justification = o
            .required_str("justification", &mut errs)
            .and_then(|s| text(s, "justification", 1, 1000, true, &mut errs));
        o.finish(&mut errs);
    }
    match (recipients, justification) {
        (Some(r), Some(j)) if errs.is_empty() => Ok((r, j)),
        _ => Err(invalid(errs)),
    }
}

/// `{"partner": "...", "scope": "forward" | "judicial_use"}` of a grant;
/// the partner must be one the policy knows.
pub fn grant(doc: &Value, policy: &Policy) -> Result<(PartnerId, Scope), ApiError> {
    let mut errs = FieldErrors::default();
    let (mut partner, mut scope) = (None, None);
    if let Some(mut o) = Obj::new(doc, "", &mut errs) {
        partner = o.required_str("partner", &mut errs).and_then(|s| {
            let p = PartnerId::parse(s).filter(|p| policy.partner(p).is_some());
            if p.is_none() {
                errs.push("partner", "must be a partner in the policy");
            }
            p
        });
        scope = o.required_str("scope", &mut errs).and_then(|s| {
            let parsed = Scope::parse(s);
            if parsed.is_none() {
                errs.push("scope", "must be forward or judicial_use");
            }
            parsed
        });
        o.finish(&mut errs);
    }
    match (partner, scope) {
        (Some(p), Some(s)) if errs.is_empty() => Ok((p, s)),
        _ => Err(invalid(errs)),
    }
}

/// `{"reference": "..."}` (optional) of a judicial use.
pub fn judicial_use(doc: &Value) -> Result<Option<String>, ApiError> {
    let mut errs = FieldErrors::default();
    let mut reference = None;
    if let Some(mut o) = Obj::new(doc, "", &mut errs) {
        reference = o
            .optional_str("reference", &mut errs)
            .and_then(|s| text(s, "reference", 1, 200, false, &mut errs));
        o.finish(&mut errs);
    }
    if errs.is_empty() {
        Ok(reference)
    } else {
        Err(invalid(errs))
    }
}

/// `{"reason": "..."}` of a hold.
pub fn hold(doc: &Value) -> Result<String, ApiError> {
    let mut errs = FieldErrors::default();
    let mut reason = None;
    if let Some(mut o) = Obj::new(doc, "", &mut errs) {
        reason = o
            .required_str("reason", &mut errs)
            .and_then(|s| text(s, "reason", 1, 1000, true, &mut errs));
        o.finish(&mut errs);
    }
    match reason {
        Some(r) if errs.is_empty() => Ok(r),
        _ => Err(invalid(errs)),
    }
}

/// `{"decision": "keep" | "erase", "reason": "...", "extend_days": n}` of
/// a review (`extend_days` only with `keep`).
pub fn review(doc: &Value) -> Result<(Decision, String), ApiError> {
    let mut errs = FieldErrors::default();
    let (mut decision, mut reason, mut extend) = (None, None, None);
    if let Some(mut o) = Obj::new(doc, "", &mut errs) {
        decision = o.required_str("decision", &mut errs).and_then(|s| {
            let ok = matches!(s, "keep" | "erase");
            if !ok {
                errs.push("decision", "must be keep or erase");
            }
            ok.then(|| s.to_owned())
        });
        reason = o
            .required_str("reason", &mut errs)
            .and_then(|s| text(s, "reason", 1, 1000, true, &mut errs));
        extend = o
            .optional("extend_days")
            .and_then(|v| as_int_in(v, "extend_days", 1, 36_500, &mut errs));
        if decision.as_deref() == Some("erase") && extend.is_some() {
            errs.push("extend_days", "is only allowed with decision keep");
        }
        o.finish(&mut errs);
    }
    let (Some(decision), Some(reason)) = (decision, reason) else {
        return Err(invalid(errs));
    };
    if !errs.is_empty() {
        return Err(invalid(errs));
    }
    let decision = if decision == "erase" {
        Decision::Erase
    } else {
        Decision::Keep {
            extend_days: extend,
        }
    };
    Ok((decision, reason))
}

/// The new label of a raise.
pub fn label(doc: &Value) -> Result<Label, ApiError> {
    let mut errs = FieldErrors::default();
    let parsed = Label::parse(doc, "", OffsetDateTime::now_utc().date(), &mut errs);
    parsed
        .filter(|_| errs.is_empty())
        .ok_or_else(|| invalid(errs))
}
