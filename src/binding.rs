//! Binding a message's security label to its content (in the spirit of
//! STANAG 4778 metadata binding).
//!
//! A label is only worth something if nobody can strip or change it on the
//! way: a relay that lowers `EU_RESTRICTED` to `UNCLASSIFIED`, widens the
//! recipients or swaps the body must be caught by the recipient, offline,
//! without trusting anything between it and the gateway. Every delivered
//! message therefore carries `binding`, a compact JWS by the gateway's
//! envelope key over the canonical (RFC 8785) JSON of [`payload`]: who,
//! to whom, the whole label, the evaluation, the purpose, when, and SHA-256
//! digests of subject, body and each attachment. [`verify`] checks a
//! message as received against it and names every field that differs.
//!
//! The payload is computed from the delivered message document itself, on
//! both sides, so the gateway and a recipient cannot disagree about what
//! was bound.

use serde_json::{Value, json};

use crate::audit::jcs;
use crate::crypto::jose::{JoseError, JwsKey, JwsKeys};

/// The JWS `typ` of label bindings.
pub(crate) const BINDING_TYPE: &str = "brdo-binding+jws";

/// Why a binding cannot be made or does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The JWS is malformed, of another type, or not signed by the given
    /// envelope key.
    #[error("the binding signature does not verify: {0}")]
    Signature(String),
    /// The message does not have the shape of a delivered message.
    #[error("the message is not a delivered Brdo message: {0}")]
    Malformed(String),
    /// The signature holds but the message differs from what was bound.
    #[error("the message differs from its binding: {}", .0.join("; "))]
    Differs(Vec<String>),
}

impl From<JoseError> for BindingError {
    fn from(e: JoseError) -> Self {
        BindingError::Signature(e.to_string())
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// A text field of a message document, or why not.
pub(crate) fn text_field<'a>(doc: &'a Value, field: &str) -> Result<&'a str, String> {
    doc.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{field}` is missing or not text"))
}

/// A list of ids of a message document (recipients), sorted: order is not
/// part of what a binding or a signature states.
pub(crate) fn sorted_ids(doc: &Value, field: &str) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = doc
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("`{field}` is missing"))?
        .iter()
        .map(|r| r.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`{field}` must be partner ids"))?;
    ids.sort();
    Ok(ids)
}

/// The SHA-256 digests of a message document's content: subject, body and
/// each attachment in the message's order (`digest_of` gives an
/// attachment's). Bindings and sender signatures state the same digests.
/// A missing `attachments` is an error when `attachments_required` (a
/// delivered message always lists them), otherwise none.
pub(crate) fn content_digests(
    doc: &Value,
    attachments_required: bool,
    digest_of: &dyn Fn(&str) -> String,
) -> Result<Value, String> {
    let attachments: Vec<Value> = match doc.get("attachments") {
        None | Some(Value::Null) if !attachments_required => Vec::new(),
        listed => listed
            .and_then(Value::as_array)
            .ok_or("`attachments` is missing or not a list")?
            .iter()
            .map(|a| {
                a.as_str()
                    .map(|id| json!({"id": id, "sha256": digest_of(id)}))
            })
            .collect::<Option<_>>()
            .ok_or("`attachments` must be ids")?,
    };
    Ok(json!({
        "subject": sha256_hex(text_field(doc, "subject")?.as_bytes()),
        "body": sha256_hex(text_field(doc, "body")?.as_bytes()),
        "attachments": attachments,
    }))
}

/// The bound statement about a delivered message `doc` (the JSON of
/// `GET /v1/messages/{id}`), with each attachment's SHA-256 looked up by
/// `digest_of` (the gateway knows them from upload; a verifier takes them
/// from the signed payload and checks files against them separately).
pub fn payload(doc: &Value, digest_of: impl Fn(&str) -> String) -> Result<Value, BindingError> {
    let sender = text_field(doc, "from").map_err(BindingError::Malformed)?;
    let originator = doc
        .get("originator")
        .and_then(Value::as_str)
        .unwrap_or(sender);
    Ok(json!({
        "v": 1,
        "id": text_field(doc, "id").map_err(BindingError::Malformed)?,
        "originator": originator,
        "sender": sender,
        "recipients": sorted_ids(doc, "recipients").map_err(BindingError::Malformed)?,
        "label": doc.get("label").cloned().unwrap_or(Value::Null),
        "evaluation": doc.get("evaluation").cloned().unwrap_or(Value::Null),
        "purpose": doc.get("purpose").cloned().unwrap_or(Value::Null),
        "accepted_at": text_field(doc, "accepted_at").map_err(BindingError::Malformed)?,
        "digests": content_digests(doc, true, &digest_of).map_err(BindingError::Malformed)?,
    }))
}

/// Signs the binding of a delivered message document.
pub fn sign(
    key: &JwsKey,
    doc: &Value,
    digest_of: impl Fn(&str) -> String,
) -> Result<String, BindingError> {
    let p = payload(doc, digest_of)?;
    Ok(key.sign(jcs::canonicalize(&p).as_bytes(), BINDING_TYPE)?)
}

/// An attachment's SHA-256 (hex) by its id, as [`sign`] takes it.
pub type DigestOf<'a> = &'a dyn Fn(&str) -> String;

/// Signs the bindings of several delivered message documents (one relay
/// batch's) with one signature over their Merkle root
/// (`federation::batch_sig`); one token each, in order.
pub fn sign_all(key: &JwsKey, docs: &[(Value, DigestOf<'_>)]) -> Result<Vec<String>, BindingError> {
    let payloads = docs
        .iter()
        .map(|(doc, digest_of)| {
            payload(doc, |id| digest_of(id)).map(|p| jcs::canonicalize(&p).into_bytes())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::federation::batch_sig::sign(
        key,
        &payloads,
        BINDING_TYPE,
    )?)
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The message id.
    pub id: String,
    /// Attachment ids whose files were checked against their digests.
    pub attachments_checked: Vec<String>,
    /// Attachment ids bound but not given, so not checked.
    pub attachments_unchecked: Vec<String>,
}

/// Checks a message as received (`doc`, with its `binding` or the one
/// given) against its binding, offline, with the envelope public key.
/// `files` are attachment contents by id; each is checked against its
/// bound digest. Every difference is named, fields first.
pub fn verify(
    doc: &Value,
    binding: Option<&str>,
    keys: &JwsKeys,
    files: &[(String, Vec<u8>)],
) -> Result<Verified, BindingError> {
    let digests: Vec<(String, String)> = files
        .iter()
        .map(|(id, bytes)| (id.clone(), sha256_hex(bytes)))
        .collect();
    verify_digests(doc, binding, keys, &digests)
}

/// [`verify`] with the attachments' SHA-256 digests (hex) instead of their
/// bytes: for a gateway that received the content as a streamed upload and
/// knows only its digest (SPEC §11, relayed attachments).
pub fn verify_digests(
    doc: &Value,
    binding: Option<&str>,
    keys: &JwsKeys,
    digests: &[(String, String)],
) -> Result<Verified, BindingError> {
    let jws = binding_of(doc, binding)?;
    let signed: Value = serde_json::from_slice(&crate::federation::batch_sig::verify(
        keys,
        &jws,
        BINDING_TYPE,
    )?)
    .map_err(|e| BindingError::Signature(format!("the payload is not JSON: {e}")))?;
    let actual = payload(doc, |id| bound_digest(&signed, id).unwrap_or_default())?;
    let mut differs = field_differences(&actual, &signed);
    let listed: Vec<String> = attachment_ids(&signed)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let checked = check_files(&signed, &listed, digests, &mut differs);
    if !differs.is_empty() {
        return Err(BindingError::Differs(differs));
    }
    let unchecked = listed
        .into_iter()
        .filter(|l| !checked.contains(l))
        .collect();
    Ok(Verified {
        id: actual["id"].as_str().unwrap_or_default().to_owned(),
        attachments_checked: checked,
        attachments_unchecked: unchecked,
    })
}

/// The binding to check: the one given, else the message's own `binding`.
fn binding_of(doc: &Value, binding: Option<&str>) -> Result<String, BindingError> {
    match binding {
        Some(b) => Ok(b.to_owned()),
        None => Ok(doc
            .get("binding")
            .and_then(Value::as_str)
            .ok_or_else(|| BindingError::Malformed("`binding` is missing".into()))?
            .to_owned()),
    }
}

/// The SHA-256 the signed payload states for attachment `id`, if it lists it.
fn bound_digest(signed: &Value, id: &str) -> Option<String> {
    signed["digests"]["attachments"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id)
        .and_then(|a| a["sha256"].as_str())
        .map(str::to_owned)
}

/// The attachment ids a payload lists, in its order.
fn attachment_ids(v: &Value) -> Vec<Value> {
    v["digests"]["attachments"]
        .as_array()
        .map(|a| a.iter().map(|x| x["id"].clone()).collect())
        .unwrap_or_default()
}

/// Every stated field, content digest and the attachment list where the
/// message as received (`actual`) differs from the bound payload, fields
/// first, each named.
fn field_differences(actual: &Value, signed: &Value) -> Vec<String> {
    let mut differs = Vec::new();
    for (field, what) in [
        ("id", "the message id"),
        ("originator", "the originator"),
        ("sender", "the sender (`from`)"),
        ("recipients", "the recipients"),
        ("label", "the label"),
        ("evaluation", "the evaluation"),
        ("purpose", "the purpose"),
        ("accepted_at", "accepted_at"),
    ] {
        if actual[field] != signed[field] {
            differs.push(format!("{field}: {what} differs from the bound one"));
        }
    }
    for (field, what) in [("subject", "the subject"), ("body", "the body")] {
        if actual["digests"][field] != signed["digests"][field] {
            differs.push(format!(
                "{field}: {what} differs from the bound one (SHA-256)"
            ));
        }
    }
    if attachment_ids(actual) != attachment_ids(signed) {
        differs.push("attachments: the attachment list differs from the bound one".into());
    }
    differs
}

/// Checks each given file's digest against its bound digest; returns the
/// ids that matched and adds to `differs` every file that does not or is
/// not bound.
fn check_files(
    signed: &Value,
    listed: &[String],
    digests: &[(String, String)],
    differs: &mut Vec<String>,
) -> Vec<String> {
    let mut checked = Vec::new();
    for (id, digest) in digests {
        match (
            listed.iter().position(|l| l == id),
            bound_digest(signed, id),
        ) {
            (Some(i), Some(d)) => {
                if *digest == d {
                    checked.push(id.clone());
                } else {
                    differs.push(format!(
                        "attachments[{i}] ({id}): the content differs from the bound one (SHA-256)"
                    ));
                }
            }
            _ => differs.push(format!("attachment {id}: not bound to this message")),
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, JwsKey, JwsKeys) {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        crate::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("init");
        let key = JwsKey::from_pem_file(&pki.join(crate::pki::ENVELOPE_KEY_FILE)).expect("key");
        let public =
            JwsKeys::from_public_pem_file(&pki.join(crate::pki::ENVELOPE_PUB_FILE)).expect("pub");
        (dir, key, public)
    }

    /// A change made to a delivered message on the way.
    type Change = Box<dyn Fn(&mut Value)>;

    const ATTACHMENT: &[u8] = b"%PDF-1.7 seized phone extract";

    fn doc() -> Value {
        json!({
            "id": "0193c3c4-1111-7000-8000-000000000001",
            "from": "AL-CTD",
            "recipients": ["RS-MOI", "EU-ECTC"],
            "subject": "Border alert",
            "body": "Vehicle crossing at Kapshticë.",
            "label": {"classification": "EU_RESTRICTED", "handling": ["H2"], "releasable_to": ["RS-MOI", "EU-ECTC"]},
            "evaluation": {"source": "B", "information": "2"},
            "purpose": "counter_terrorism",
            "attachments": ["0193c3c4-2222-7000-8000-000000000002"],
            "accepted_at": "2026-11-21T09:00:00.000Z",
        })
    }

    fn signed(key: &JwsKey) -> Value {
        let mut d = doc();
        let jws = sign(key, &d, |_| sha256_hex(ATTACHMENT)).expect("sign");
        d["binding"] = json!(jws);
        d
    }

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![(
            "0193c3c4-2222-7000-8000-000000000002".into(),
            ATTACHMENT.to_vec(),
        )]
    }

    #[test]
    fn a_delivered_message_verifies_offline() {
        let (_d, key, public) = keys();
        let d = signed(&key);
        let v = verify(&d, None, &public, &files()).expect("verifies");
        assert_eq!(v.attachments_checked.len(), 1);
        let v = verify(&d, None, &public, &[]).expect("verifies without files");
        assert_eq!(v.attachments_unchecked.len(), 1);
        // Recipient order is not part of the statement.
        let mut r = d.clone();
        r["recipients"] = json!(["EU-ECTC", "RS-MOI"]);
        verify(&r, None, &public, &[]).expect("order-free");
    }

    fn differs(d: &Value, public: &JwsKeys, files: &[(String, Vec<u8>)]) -> String {
        match verify(d, None, public, files) {
            Err(BindingError::Differs(v)) => v.join("; "),
            other => panic!("expected a difference, got {other:?}"),
        }
    }

    #[test]
    fn every_change_is_caught_and_named() {
        let (_d, key, public) = keys();
        let d = signed(&key);
        let cases: Vec<(&str, Change)> = vec![
            (
                "label",
                Box::new(|d| d["label"]["classification"] = json!("UNCLASSIFIED")),
            ),
            (
                "label",
                Box::new(|d| d["label"]["handling"] = json!(["H0"])),
            ),
            (
                "evaluation",
                Box::new(|d| d["evaluation"]["source"] = json!("A")),
            ),
            (
                "recipients",
                Box::new(|d| d["recipients"] = json!(["RS-MOI", "EU-ECTC", "BA-SIPA"])),
            ),
            (
                "body",
                Box::new(|d| d["body"] = json!("Vehicle crossing at Qafë Thanë.")),
            ),
            ("subject", Box::new(|d| d["subject"] = json!("Routine"))),
            ("sender", Box::new(|d| d["from"] = json!("XK-CTD"))),
            ("purpose", Box::new(|d| d["purpose"] = json!("crime"))),
            ("attachments", Box::new(|d| d["attachments"] = json!([]))),
        ];
        for (field, change) in cases {
            let mut t = d.clone();
            change(&mut t);
            let why = differs(&t, &public, &[]);
            assert!(why.contains(&format!("{field}:")), "{field}: {why}");
        }
        let mut bad = files();
        bad[0].1.push(b'!');
        let why = differs(&d, &public, &bad);
        assert!(why.starts_with("attachments[0] (0193c3c4-2222"), "{why}");
    }

    #[test]
    fn another_key_or_a_stripped_binding_fails() {
        let (_d, key, _) = keys();
        let (_d2, _, other_public) = keys();
        let d = signed(&key);
        assert!(matches!(
            verify(&d, None, &other_public, &[]),
            Err(BindingError::Signature(_))
        ));
        let mut stripped = d.clone();
        stripped.as_object_mut().expect("object").remove("binding");
        assert!(matches!(
            verify(&stripped, None, &other_public, &[]),
            Err(BindingError::Malformed(_))
        ));
        // A checkpoint-typed JWS by the same key is not a binding.
        let cp = key
            .sign(b"{}", crate::crypto::jose::CHECKPOINT_TYPE)
            .expect("sign");
        let own = key.verifier().expect("verifier");
        assert!(matches!(
            verify(&d, Some(&cp), &own, &[]),
            Err(BindingError::Signature(_))
        ));
    }
}
