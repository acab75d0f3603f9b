//! Free text that lands in the audit log (officer, justification, reason,
//! reference, case reference, subject, H3 text, the DPO's officer filter)
//! holds no invisible, bidi, control, private-use or unassigned code
//! points, and is stored in NFC: otherwise `insp.\u{202E}hoxha` shows on
//! the DPO page as another name and escapes the `officer=` filter.

use serde_json::{Value, json};

use crate::harness::*;

/// Code points every free-text field refuses; all can travel in an HTTP
/// header (no ASCII controls), so the same table serves headers and JSON.
const HOSTILE: &[(char, &str)] = &[
    ('\u{202E}', "right-to-left override"),
    ('\u{2066}', "left-to-right isolate"),
    ('\u{200E}', "left-to-right mark"),
    ('\u{200B}', "zero width space"),
    ('\u{FEFF}', "zero width no-break space"),
    ('\u{00AD}', "soft hyphen (Cf)"),
    ('\u{E0041}', "tag character (Cf)"),
    ('\u{0085}', "next line (Cc)"),
    ('\u{2028}', "line separator (Zl)"),
    ('\u{2029}', "paragraph separator (Zp)"),
    ('\u{E000}', "private use (Co)"),
    ('\u{0378}', "unassigned (Cn)"),
    ('\u{FFFF}', "noncharacter (Cn)"),
    ('\u{3164}', "Hangul filler"),
];

/// JSON can also carry ASCII controls, which a header cannot.
const HOSTILE_JSON_ONLY: &[(char, &str)] = &[('\u{0007}', "bell"), ('\u{001B}', "escape")];

#[derive(Clone, Copy, Debug)]
enum Field {
    OfficerHeader,
    JustificationHeader,
    Subject,
    CaseRef,
    H3Text,
    SpecialCategoriesBasis,
    ForwardJustification,
    JudicialReference,
    HoldReason,
    ReviewReason,
    SuspendReason,
    DpoOfficerFilter,
}

const FIELDS: &[Field] = &[
    Field::OfficerHeader,
    Field::JustificationHeader,
    Field::Subject,
    Field::CaseRef,
    Field::H3Text,
    Field::SpecialCategoriesBasis,
    Field::ForwardJustification,
    Field::JudicialReference,
    Field::HoldReason,
    Field::ReviewReason,
    Field::SuspendReason,
    Field::DpoOfficerFilter,
];

impl Field {
    fn is_header(self) -> bool {
        matches!(self, Field::OfficerHeader | Field::JustificationHeader)
    }

    /// The name the refusal must give: the header, or the field path.
    fn name(self) -> &'static str {
        match self {
            Field::OfficerHeader => "Brdo-Officer",
            Field::JustificationHeader => "Brdo-Justification",
            Field::Subject => "subject",
            Field::CaseRef => "case_ref",
            Field::H3Text => "label.h3_text",
            Field::SpecialCategoriesBasis => "personal_data.special_categories_basis",
            Field::ForwardJustification => "justification",
            Field::JudicialReference => "reference",
            Field::HoldReason | Field::ReviewReason | Field::SuspendReason => "reason",
            Field::DpoOfficerFilter => "officer",
        }
    }

    /// The code of the refusal.
    fn code(self) -> &'static str {
        match self {
            Field::OfficerHeader => "officer_required",
            Field::JustificationHeader => "justification_required",
            Field::DpoOfficerFilter => "invalid_request",
            _ => "invalid_message",
        }
    }

    /// Sends a request whose only fault is `text` in this field.
    async fn send(
        self,
        gw: &TestGateway,
        id: &str,
        text: &str,
    ) -> brdo_tools::client::ClientResponse {
        let officer = [("brdo-officer", text)];
        let msg_with = |f: &dyn Fn(&mut Value)| {
            let mut m = message();
            f(&mut m);
            m
        };
        match self {
            Field::OfficerHeader => gw
                .partner("AL-CTD")
                .post_json("/v1/messages", &officer, &message())
                .await
                .expect("submit"),
            Field::JustificationHeader => gw
                .partner("RS-MOI")
                .get(
                    &format!("/v1/messages/{id}"),
                    &[OFFICER, ("brdo-justification", text)],
                )
                .await
                .expect("read"),
            Field::Subject => {
                submit(gw, "AL-CTD", &msg_with(&|m| m["subject"] = json!(text))).await
            }
            Field::CaseRef => {
                submit(gw, "AL-CTD", &msg_with(&|m| m["case_ref"] = json!(text))).await
            }
            Field::H3Text => {
                submit(
                    gw,
                    "AL-CTD",
                    &msg_with(&|m| m["label"]["h3_text"] = json!(text)),
                )
                .await
            }
            Field::SpecialCategoriesBasis => {
                let m = msg_with(&|m| {
                    m["personal_data"]["special_categories"] = json!(["health"]);
                    m["personal_data"]["special_categories_basis"] = json!(text);
                });
                submit(gw, "AL-CTD", &m).await
            }
            Field::ForwardJustification => {
                post(
                    gw,
                    "RS-MOI",
                    &format!("/v1/messages/{id}/forward"),
                    &json!({"recipients": ["EU-ECTC"], "justification": text}),
                )
                .await
            }
            Field::JudicialReference => {
                post(
                    gw,
                    "RS-MOI",
                    &format!("/v1/messages/{id}/judicial-use"),
                    &json!({"reference": text}),
                )
                .await
            }
            Field::HoldReason => {
                post(
                    gw,
                    "AL-CTD",
                    &format!("/v1/messages/{id}/hold"),
                    &json!({"reason": text}),
                )
                .await
            }
            Field::ReviewReason => {
                post(
                    gw,
                    "AL-CTD",
                    &format!("/v1/messages/{id}/review"),
                    &json!({"decision": "keep", "reason": text, "extend_days": 1}),
                )
                .await
            }
            Field::SuspendReason => gw
                .client("operator-admin")
                .post_json(
                    "/v1/admin/partners/ME-MOI/suspend",
                    &[],
                    &json!({"reason": text}),
                )
                .await
                .expect("suspend"),
            Field::DpoOfficerFilter => {
                let q: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
                gw.client("dpo-gateway")
                    .get(&format!("/v1/audit?officer={q}"), &[])
                    .await
                    .expect("audit")
            }
        }
    }
}

/// What a refused request must not have changed.
async fn stored(gw: &TestGateway) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "messages",
        "deliveries",
        "judicial_uses",
        "messages WHERE hold_reason IS NOT NULL",
        "partner_state",
    ] {
        out.push(gw.count(table).await);
    }
    out
}

#[tokio::test]
async fn every_hostile_code_point_in_every_free_text_field_is_refused_and_audited() {
    let gw = TestGateway::start().await;
    let id = submit_ok(&gw).await;
    let before = stored(&gw).await;
    let audit_before = gw.audit_size().await;
    let mut probes = 0u64;
    for field in FIELDS {
        let table = HOSTILE
            .iter()
            .chain(HOSTILE_JSON_ONLY.iter().filter(|_| !field.is_header()));
        for (c, what) in table {
            let text = format!("insp.{c}hoxha");
            let resp = field.send(&gw, &id, &text).await;
            let case = format!("{field:?} with U+{:04X} ({what})", u32::from(*c));
            let p = assert_problem(&resp, 400, field.code());
            if field.is_header() {
                let detail = p["detail"].as_str().unwrap_or_default().to_lowercase();
                assert!(detail.contains(&field.name().to_lowercase()), "{case}: {p}");
            } else {
                let named = p["errors"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["field"] == field.name()));
                assert!(named, "{case}: {p}");
            }
            assert!(!text_of(&p).contains(*c), "{case}: the problem echoes it");
            let rec = gw.audit_of(&resp).await;
            assert_eq!(rec["code"], field.code(), "{case}: {rec}");
            assert!(
                !rec.to_string().contains(*c),
                "{case}: audited verbatim: {rec}"
            );
            probes += 1;
        }
    }
    assert_eq!(
        stored(&gw).await,
        before,
        "a refused request stored something"
    );
    assert_eq!(gw.audit_size().await, audit_before + probes);
    gw.stop().await;
}

fn text_of(v: &Value) -> String {
    v.to_string()
}

/// Decomposed input (`c` + combining acute) is stored and audited as the
/// precomposed `ć`, so the DPO's filter finds the officer however either
/// side typed the name.
#[tokio::test]
async fn decomposed_text_is_stored_and_audited_in_nfc() {
    let gw = TestGateway::start().await;
    let nfd_officer = "insp.Petrovic\u{0301}";
    let nfc_officer = "insp.Petrovi\u{0107}";
    let mut m = message();
    m["subject"] = json!("Sastanak u Nis\u{030C}u");
    m["case_ref"] = json!("AL-2026-C\u{0301}");
    let resp = gw
        .partner("AL-CTD")
        .post_json("/v1/messages", &[("brdo-officer", nfd_officer)], &m)
        .await
        .expect("submit");
    assert_eq!(resp.status, 201, "{}", text(&resp.body));
    let id = resp.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(gw.audit_of(&resp).await["actor"]["officer"], nfc_officer);

    let got = read(&gw, "RS-MOI", &id).await;
    assert_eq!(got.status, 200, "{}", text(&got.body));
    assert_eq!(got.json()["subject"], "Sastanak u Ni\u{0161}u");
    assert_eq!(got.json()["case_ref"], "AL-2026-\u{0106}");

    let hold = post(
        &gw,
        "AL-CTD",
        &format!("/v1/messages/{id}/hold"),
        &json!({"reason": "Sud u Nis\u{030C}u"}),
    )
    .await;
    assert_eq!(hold.status, 200, "{}", text(&hold.body));
    assert_eq!(hold.json()["reason"], "Sud u Ni\u{0161}u");
    assert_eq!(
        gw.audit_of(&hold).await["justification"],
        "Sud u Ni\u{0161}u"
    );

    // The filter, given either form, finds the submission's record.
    let dpo = gw.client("dpo-gateway");
    for form in [nfd_officer, nfc_officer] {
        let q: String = form_urlencoded::byte_serialize(form.as_bytes()).collect();
        let resp = dpo
            .get(&format!("/v1/audit?officer={q}&action=collect"), &[])
            .await
            .expect("audit");
        assert_eq!(resp.status, 200, "{}", text(&resp.body));
        let records = resp.json()["records"].clone();
        assert_eq!(
            records.as_array().map(Vec::len),
            Some(1),
            "{form}: {records}"
        );
        assert_eq!(records[0]["message_id"], id.as_str());
    }
    gw.stop().await;
}
