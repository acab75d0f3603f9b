//! Lifecycle notices: the originator's decisions travelling to every peer
//! gateway that holds a copy of the family (SPEC §11).
//!
//! A notice is plain JSON sent over the peers' mutually authenticated
//! link; the holder answers each with a signed receipt. It carries the
//! decision, never content, so the outbox that queues it holds nothing
//! an erasure must reach.

use serde_json::{Value, json};
use time::Date;

use crate::domain::fields::{FieldErrors, Obj, as_str, text};
use crate::domain::{Label, PartnerId, string_enum};

string_enum! {
    /// What a permission that travels allows (SPEC §3, §4).
    pub enum NoticeScope {
        /// Onward transmission under H2.
        Forward = "forward",
        /// Use in judicial proceedings under H1.
        JudicialUse = "judicial_use",
    }
}

/// One decision of the originator about a family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Erase every copy (review `erase`, or the sweeper at `retain_until`).
    Erase {
        /// The family's original message.
        message_id: String,
        /// Why, as the originator recorded it.
        reason: String,
    },
    /// Set a legal hold.
    Hold {
        /// The family's original message.
        message_id: String,
        /// The hold's reason.
        reason: String,
    },
    /// Lift a legal hold.
    LiftHold {
        /// The family's original message.
        message_id: String,
    },
    /// Replace the label with a raised one.
    Label {
        /// The family's original message.
        message_id: String,
        /// The raised label.
        label: Label,
    },
    /// Grant a partner a permission.
    Grant {
        /// The family's original message.
        message_id: String,
        /// Who may now act.
        partner: PartnerId,
        /// What it may do.
        scope: NoticeScope,
    },
}

impl Notice {
    /// The family the notice concerns.
    pub fn message_id(&self) -> &str {
        match self {
            Notice::Erase { message_id, .. }
            | Notice::Hold { message_id, .. }
            | Notice::LiftHold { message_id }
            | Notice::Label { message_id, .. }
            | Notice::Grant { message_id, .. } => message_id,
        }
    }

    /// The same decision about another message: the origin sends one
    /// notice per copy a peer holds, each naming the message that peer
    /// stored (for a forward relayed on its own, the forward's id, which
    /// the holder keeps as its family's original).
    #[must_use]
    pub fn for_message(&self, id: &str) -> Notice {
        let mut n = self.clone();
        match &mut n {
            Notice::Erase { message_id, .. }
            | Notice::Hold { message_id, .. }
            | Notice::LiftHold { message_id }
            | Notice::Label { message_id, .. }
            | Notice::Grant { message_id, .. } => id.clone_into(message_id),
        }
        n
    }

    /// The notice's kind as the wire spells it (and receipts name it).
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Erase { .. } => "erase",
            Notice::Hold { .. } => "hold",
            Notice::LiftHold { .. } => "lift_hold",
            Notice::Label { .. } => "label",
            Notice::Grant { .. } => "grant",
        }
    }

    /// The JSON the origin sends.
    pub fn to_json(&self) -> Value {
        let mut doc = json!({"v": 1, "kind": self.kind(), "message_id": self.message_id()});
        let extra = match self {
            Notice::Erase { reason, .. } | Notice::Hold { reason, .. } => {
                json!({"reason": reason})
            }
            Notice::LiftHold { .. } => json!({}),
            Notice::Label { label, .. } => json!({"label": label}),
            Notice::Grant { partner, scope, .. } => {
                json!({"partner": partner, "scope": scope.as_str()})
            }
        };
        if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
            d.extend(e);
        }
        doc
    }

    /// Reads a notice strictly: unknown members, a member its kind does
    /// not take, or a bad value are errors naming the field.
    pub fn parse(value: &Value, today: Date) -> Result<Notice, FieldErrors> {
        let mut errs = FieldErrors::default();
        let notice = Self::read(value, today, &mut errs);
        match notice {
            Some(n) if errs.is_empty() => Ok(n),
            _ => {
                if errs.is_empty() {
                    errs.push("(body)", "is not a notice");
                }
                Err(errs)
            }
        }
    }

    fn read(value: &Value, today: Date, errs: &mut FieldErrors) -> Option<Notice> {
        let mut obj = Obj::new(value, "", errs)?;
        let v = obj.required("v", errs);
        if v.is_some_and(|v| v.as_u64() != Some(1)) {
            errs.push("v", "must be 1");
        }
        let kind = obj.required_str("kind", errs);
        let message_id = obj.required_str("message_id", errs).and_then(|s| {
            let ok = uuid::Uuid::parse_str(s).is_ok() && s.len() == 36;
            if !ok {
                errs.push("message_id", "must be a message id (UUID)");
            }
            ok.then(|| s.to_ascii_lowercase())
        });
        let reason = |obj: &mut Obj<'_>, errs: &mut FieldErrors| {
            let s = obj.required_str("reason", errs)?;
            text(s, "reason", 1, 1000, true, errs)
        };
        let notice = match kind {
            Some("erase") => reason(&mut obj, errs).and_then(|reason| {
                Some(Notice::Erase {
                    message_id: message_id.clone()?,
                    reason,
                })
            }),
            Some("hold") => reason(&mut obj, errs).and_then(|reason| {
                Some(Notice::Hold {
                    message_id: message_id.clone()?,
                    reason,
                })
            }),
            Some("lift_hold") => Some(Notice::LiftHold {
                message_id: message_id.clone()?,
            }),
            Some("label") => {
                let raw = obj.required("label", errs)?;
                Label::parse(raw, "label", today, errs).and_then(|label| {
                    Some(Notice::Label {
                        message_id: message_id.clone()?,
                        label,
                    })
                })
            }
            Some("grant") => {
                let partner = obj.required("partner", errs).and_then(|p| {
                    let s = as_str(p, "partner", errs)?;
                    let id = PartnerId::parse(s);
                    if id.is_none() {
                        errs.push("partner", "is not a partner id");
                    }
                    id
                });
                let scope = obj.required("scope", errs).and_then(|s| {
                    let s = as_str(s, "scope", errs)?;
                    let scope = NoticeScope::parse(s);
                    if scope.is_none() {
                        errs.push("scope", "must be forward or judicial_use");
                    }
                    scope
                });
                Some(Notice::Grant {
                    message_id: message_id.clone()?,
                    partner: partner?,
                    scope: scope?,
                })
            }
            Some(_) => {
                // Only the kind is wrong: the members another kind takes
                // are not reported as unknown on top of it.
                for key in ["reason", "label", "partner", "scope"] {
                    obj.optional(key);
                }
                errs.push("kind", "must be erase, hold, lift_hold, label or grant");
                None
            }
            None => None,
        };
        obj.finish(errs);
        notice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190f000-0000-7000-8000-000000000001";

    fn today() -> Date {
        time::macros::date!(2026 - 12 - 07)
    }

    fn fields(v: Value) -> Vec<String> {
        Notice::parse(&v, today())
            .expect_err("refused")
            .into_vec()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn every_kind_round_trips() {
        let label = json!({"classification": "EU_RESTRICTED", "handling_codes": ["H2"]});
        for doc in [
            json!({"v": 1, "kind": "erase", "message_id": ID, "reason": "review"}),
            json!({"v": 1, "kind": "hold", "message_id": ID, "reason": "court order"}),
            json!({"v": 1, "kind": "lift_hold", "message_id": ID}),
            json!({"v": 1, "kind": "label", "message_id": ID, "label": label}),
            json!({"v": 1, "kind": "grant", "message_id": ID, "partner": "RS-MOI", "scope": "forward"}),
        ] {
            let n = Notice::parse(&doc, today()).expect("notice");
            assert_eq!(n.message_id(), ID);
            assert_eq!(Notice::parse(&n.to_json(), today()).expect("again"), n);
        }
    }

    #[test]
    fn hostile_notices_name_the_field() {
        let base = json!({"v": 1, "kind": "erase", "message_id": ID, "reason": "r"});
        let with = |k: &str, v: Value| {
            let mut d = base.clone();
            d[k] = v;
            d
        };
        assert_eq!(fields(with("v", json!(2))), ["v"]);
        assert_eq!(fields(with("kind", json!("delete"))), ["kind"]);
        assert_eq!(fields(with("message_id", json!("../x"))), ["message_id"]);
        assert_eq!(fields(with("message_id", json!(7))), ["message_id"]);
        assert_eq!(fields(with("reason", json!("a\u{202e}b"))), ["reason"]);
        assert_eq!(fields(with("reason", json!("x".repeat(1001)))), ["reason"]);
        assert_eq!(fields(with("colour", json!("blue"))), ["colour"]);
        // A member the kind does not take is unknown, not ignored.
        assert_eq!(fields(with("partner", json!("RS-MOI"))), ["partner"]);
        assert_eq!(
            fields(
                json!({"v": 1, "kind": "grant", "message_id": ID, "partner": "rs", "scope": "all"})
            ),
            ["partner", "scope"]
        );
        assert!(Notice::parse(&json!([1]), today()).is_err());
        assert!(Notice::parse(&json!(null), today()).is_err());
    }
}
