//! Who a client certificate speaks for, and the naming rules that keep SAN URIs
//! and file names unambiguous.

use std::fmt;

use super::PkiError;

const SAN_PREFIX: &str = "urn:brdo:";

const ID_RULE: &str = "must be 2-32 characters of A-Z, 0-9 and '-', starting with A-Z or 0-9";
const DPO_RULE: &str =
    "must be 2-32 characters of A-Z, 0-9 and '-', starting with A-Z or 0-9, or exactly \"gateway\"";
const OPERATOR_RULE: &str =
    "must be 1-32 characters of a-z, 0-9, '.', '_' and '-', starting with a-z or 0-9";

/// The identity a client certificate carries.
///
/// Why: the gateway authorises requests by the SAN URI alone, so every
/// certificate must name exactly one of these roles in a canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A partner authority's system, e.g. `AL-CTD`.
    Partner(String),
    /// A data-protection officer: a partner's ID, or `gateway` for the gateway's own DPO.
    Dpo(String),
    /// A human operator of the gateway, e.g. `admin`.
    Operator(String),
    /// A gateway among gateways (federation), e.g. `AL-NCB`: the SAN URI of
    /// `gateway.crt` when `pki init --gateway-id` made it.
    Gateway(String),
}

impl Subject {
    /// The SAN URI the gateway matches on, so issuing and checking agree on one spelling.
    pub(crate) fn san_uri(&self) -> String {
        format!("{SAN_PREFIX}{}:{}", self.role(), self.name())
    }

    /// The stem of the `.crt`/`.key`/`.p12` files, so reissuing finds and replaces the same files.
    pub(crate) fn file_stem(&self) -> String {
        format!("{}-{}", self.role(), self.name())
    }

    /// The role word used in URIs and file names, so callers need not match on the variant.
    pub fn role(&self) -> &'static str {
        match self {
            Subject::Partner(_) => "partner",
            Subject::Dpo(_) => "dpo",
            Subject::Operator(_) => "operator",
            Subject::Gateway(_) => "gateway",
        }
    }

    /// The ID or name, which also becomes the certificate's common name.
    pub fn name(&self) -> &str {
        match self {
            Subject::Partner(s) | Subject::Dpo(s) | Subject::Operator(s) | Subject::Gateway(s) => s,
        }
    }

    /// Checks the naming rules, so no certificate is ever issued for an identity the gateway would reject.
    pub fn validate(&self) -> Result<(), PkiError> {
        let (ok, role, rule) = match self {
            Subject::Partner(id) => (is_authority_id(id), "partner ID", ID_RULE),
            Subject::Dpo(id) => (id == "gateway" || is_authority_id(id), "DPO ID", DPO_RULE),
            Subject::Operator(name) => (is_operator_name(name), "operator name", OPERATOR_RULE),
            Subject::Gateway(id) => (is_authority_id(id), "gateway ID", ID_RULE),
        };
        if ok {
            Ok(())
        } else {
            Err(PkiError::InvalidSubject {
                role,
                value: self.name().to_owned(),
                rule,
            })
        }
    }

    /// Parses and validates a SAN URI, so the gateway maps a peer certificate to a role
    /// with exactly the rules used when issuing it.
    pub(crate) fn from_san_uri(uri: &str) -> Result<Subject, PkiError> {
        let invalid = || PkiError::InvalidSubject {
            role: "SAN URI",
            value: uri.to_owned(),
            rule: "must be urn:brdo:partner:<ID>, urn:brdo:dpo:<ID>, urn:brdo:operator:<NAME> or urn:brdo:gateway:<ID>",
        };
        let rest = uri.strip_prefix(SAN_PREFIX).ok_or_else(invalid)?;
        let (role, name) = rest.split_once(':').ok_or_else(invalid)?;
        let subject = match role {
            "partner" => Subject::Partner(name.to_owned()),
            "dpo" => Subject::Dpo(name.to_owned()),
            "operator" => Subject::Operator(name.to_owned()),
            "gateway" => Subject::Gateway(name.to_owned()),
            _ => return Err(invalid()),
        };
        subject.validate()?;
        Ok(subject)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role(), self.name())
    }
}

/// `^[A-Z0-9][A-Z0-9-]{1,31}$`
fn is_authority_id(s: &str) -> bool {
    match s.as_bytes() {
        [first, rest @ ..] => {
            matches!(first, b'A'..=b'Z' | b'0'..=b'9')
                && (1..=31).contains(&rest.len())
                && rest
                    .iter()
                    .all(|c| matches!(c, b'A'..=b'Z' | b'0'..=b'9' | b'-'))
        }
        [] => false,
    }
}

/// `^[a-z0-9][a-z0-9._-]{0,31}$`
fn is_operator_name(s: &str) -> bool {
    match s.as_bytes() {
        [first, rest @ ..] => {
            matches!(first, b'a'..=b'z' | b'0'..=b'9')
                && rest.len() <= 31
                && rest
                    .iter()
                    .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
        }
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: Subject) -> bool {
        s.validate().is_ok()
    }

    #[test]
    fn uris_and_stems() {
        let p = Subject::Partner("AL-CTD".into());
        assert_eq!(p.san_uri(), "urn:brdo:partner:AL-CTD");
        assert_eq!(p.file_stem(), "partner-AL-CTD");
        let d = Subject::Dpo("gateway".into());
        assert_eq!(d.san_uri(), "urn:brdo:dpo:gateway");
        assert_eq!(d.file_stem(), "dpo-gateway");
        let o = Subject::Operator("admin".into());
        assert_eq!(o.san_uri(), "urn:brdo:operator:admin");
        assert_eq!(o.file_stem(), "operator-admin");
    }

    #[test]
    fn partner_and_dpo_ids() {
        assert!(ok(Subject::Partner("AL-CTD".into())));
        assert!(ok(Subject::Partner("EU-ECTC".into())));
        assert!(ok(Subject::Dpo("EU-ECTC".into())));
        assert!(ok(Subject::Dpo("gateway".into())));
        assert!(
            !ok(Subject::Partner("gateway".into())),
            "gateway is DPO-only"
        );
        assert!(!ok(Subject::Partner("al-ctd".into())), "lowercase");
        assert!(!ok(Subject::Partner("A".into())), "1 char");
        assert!(ok(Subject::Partner("AB".into())), "2 chars");
        assert!(ok(Subject::Partner("A".repeat(32))), "32 chars");
        assert!(!ok(Subject::Partner("A".repeat(33))), "33 chars");
        assert!(!ok(Subject::Partner("-AB".into())), "leading dash");
        assert!(!ok(Subject::Partner("".into())), "empty");
        assert!(!ok(Subject::Partner("AL CTD".into())), "space");
        assert!(!ok(Subject::Partner("ÄL-CTD".into())), "non-ASCII");
        assert!(!ok(Subject::Dpo("Gateway".into())));
    }

    #[test]
    fn operator_names() {
        assert!(ok(Subject::Operator("admin".into())));
        assert!(ok(Subject::Operator("a".into())));
        assert!(ok(Subject::Operator("j.doe_2-x".into())));
        assert!(ok(Subject::Operator("a".repeat(32))));
        assert!(!ok(Subject::Operator("a".repeat(33))));
        assert!(!ok(Subject::Operator("".into())), "empty");
        assert!(!ok(Subject::Operator("Admin".into())));
        assert!(!ok(Subject::Operator(".admin".into())));
        assert!(!ok(Subject::Operator("ad min".into())));
    }

    #[test]
    fn error_names_value_and_rule() {
        let e = Subject::Partner("al".into()).validate().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid partner ID \"al\": must be"),
            "{e}"
        );
    }

    #[test]
    fn parses_san_uris() {
        assert_eq!(
            Subject::from_san_uri("urn:brdo:partner:AL-CTD").unwrap(),
            Subject::Partner("AL-CTD".into())
        );
        assert_eq!(
            Subject::from_san_uri("urn:brdo:dpo:gateway").unwrap(),
            Subject::Dpo("gateway".into())
        );
        assert!(Subject::from_san_uri("urn:brdo:partner:al").is_err());
        assert!(Subject::from_san_uri("urn:brdo:admin:x").is_err());
        assert!(Subject::from_san_uri("urn:other:partner:AL-CTD").is_err());
        assert!(Subject::from_san_uri("urn:brdo:operator:a:b").is_err());
    }
}
