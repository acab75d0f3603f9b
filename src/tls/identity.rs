//! The Brdo identity a client certificate carries (SPEC §1).

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::domain::PartnerId;
use crate::pki::{Subject, serial_hex};

/// A caller's role and the entity it speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// A partner authority's system.
    Partner(PartnerId),
    /// A partner's data-protection officer.
    PartnerDpo(PartnerId),
    /// The gateway's own data-protection officer.
    GatewayDpo,
    /// An operator, by name.
    Operator(String),
    /// A peer gateway (federation), by its gateway id; it may call only the
    /// federation endpoints.
    Gateway(PartnerId),
}

impl Identity {
    /// The SAN URI that names this identity in certificates.
    pub fn uri(&self) -> String {
        match self {
            Identity::Partner(p) => format!("urn:brdo:partner:{p}"),
            Identity::PartnerDpo(p) => format!("urn:brdo:dpo:{p}"),
            Identity::GatewayDpo => "urn:brdo:dpo:gateway".to_owned(),
            Identity::Operator(n) => format!("urn:brdo:operator:{n}"),
            Identity::Gateway(g) => format!("urn:brdo:gateway:{g}"),
        }
    }

    /// The role word used in audit records.
    pub fn role(&self) -> &'static str {
        match self {
            Identity::Partner(_) => "partner",
            Identity::PartnerDpo(_) | Identity::GatewayDpo => "dpo",
            Identity::Operator(_) => "operator",
            Identity::Gateway(_) => "gateway",
        }
    }

    /// The id recorded as actor: partner id, `gateway`, or operator name.
    pub fn id(&self) -> &str {
        match self {
            Identity::Partner(p) | Identity::PartnerDpo(p) => p.as_str(),
            Identity::GatewayDpo => "gateway",
            Identity::Operator(n) => n,
            Identity::Gateway(g) => g.as_str(),
        }
    }

    /// The partner this identity belongs to, if any.
    pub fn partner(&self) -> Option<&PartnerId> {
        match self {
            Identity::Partner(p) | Identity::PartnerDpo(p) => Some(p),
            _ => None,
        }
    }
}

/// The role an identity acts in, as audit records name it (the audit log
/// knows no certificates, so the mapping lives here).
impl From<&Identity> for crate::audit::Role {
    fn from(identity: &Identity) -> Self {
        match identity {
            Identity::Partner(_) => Self::Partner,
            Identity::PartnerDpo(_) | Identity::GatewayDpo => Self::Dpo,
            Identity::Operator(_) => Self::Operator,
            Identity::Gateway(_) => Self::Gateway,
        }
    }
}

/// Why a certificate does not name a usable identity; all of these answer
/// `403 no_identity`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// No `urn:brdo:` SAN URI.
    #[error("the certificate carries no urn:brdo: identity")]
    Missing,
    /// More than one `urn:brdo:` SAN URI.
    #[error("the certificate carries {0} urn:brdo: identities; exactly one is allowed")]
    Several(usize),
    /// A `urn:brdo:` URI that does not follow the grammar.
    #[error("the certificate's identity {0:?} is not valid")]
    Malformed(String),
    /// The certificate could not be parsed (should not pass the verifier).
    #[error("the certificate cannot be parsed")]
    Unparseable,
}

/// What the gateway knows about the peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// Serial, lowercase hex (checked against revocations on every request).
    pub serial: String,
    /// The identity, or why there is none.
    pub identity: Result<Identity, IdentityError>,
    /// The subject DN, for audit records of unidentified callers.
    pub subject: String,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The accepted CA that issued it, as the handshake found it; `None`
    /// outside a connection or when none did (every request is then
    /// refused: fail closed).
    pub anchor: Option<crate::tls::AnchorId>,
}

impl PeerCert {
    /// The key the gateway shares limits by (request rate, connection
    /// slots, refusal counts): the identity URI, so all of a partner's
    /// certificates share one budget, or `serial:` and the serial for a
    /// certificate without a usable identity, so no unusable certificate
    /// borrows another's.
    pub(crate) fn limit_key(&self) -> String {
        match &self.identity {
            Ok(i) => i.uri(),
            Err(_) => format!("serial:{}", self.serial),
        }
    }

    /// Reads a verified leaf certificate.
    pub fn from_der(der: &[u8]) -> Self {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return Self {
                serial: String::new(),
                identity: Err(IdentityError::Unparseable),
                subject: String::new(),
                not_after: 0,
                anchor: None,
            };
        };
        let uris: Vec<&str> = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::URI(u) => Some(*u),
                        _ => None,
                    })
                    .filter(|u| u.starts_with("urn:brdo:"))
                    .collect()
            })
            .unwrap_or_default();
        let identity = match uris.as_slice() {
            [] => Err(IdentityError::Missing),
            [one] => parse_identity(one),
            many => Err(IdentityError::Several(many.len())),
        };
        Self {
            serial: serial_hex(cert.raw_serial()),
            identity,
            subject: cert.subject().to_string(),
            not_after: cert.validity().not_after.timestamp(),
            anchor: None,
        }
    }
}

/// Parses one `urn:brdo:` URI with the same rules the PKI issues by.
pub fn parse_identity(uri: &str) -> Result<Identity, IdentityError> {
    let malformed = || IdentityError::Malformed(uri.chars().take(100).collect());
    match Subject::from_san_uri(uri).map_err(|_| malformed())? {
        Subject::Partner(id) => PartnerId::parse(&id)
            .map(Identity::Partner)
            .ok_or_else(malformed),
        Subject::Dpo(id) if id == "gateway" => Ok(Identity::GatewayDpo),
        Subject::Dpo(id) => PartnerId::parse(&id)
            .map(Identity::PartnerDpo)
            .ok_or_else(malformed),
        Subject::Operator(name) => Ok(Identity::Operator(name)),
        Subject::Gateway(id) => PartnerId::parse(&id)
            .map(Identity::Gateway)
            .ok_or_else(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let p = |s| parse_identity(s);
        assert_eq!(
            p("urn:brdo:partner:AL-CTD"),
            Ok(Identity::Partner(PartnerId::parse("AL-CTD").expect("id")))
        );
        assert_eq!(p("urn:brdo:dpo:gateway"), Ok(Identity::GatewayDpo));
        assert_eq!(p("urn:brdo:dpo:RS-MOI").map(|i| i.role()), Ok("dpo"));
        assert_eq!(
            p("urn:brdo:operator:admin"),
            Ok(Identity::Operator("admin".into()))
        );
        for bad in [
            "urn:brdo:partner:al-ctd",
            "urn:brdo:partner:",
            "urn:brdo:admin:x",
            "urn:brdo:partner:AL-CTD:extra",
            "urn:brdo:operator:Admin",
            "urn:brdo:partner:gateway",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audit_roles_are_the_role_words() {
        let p = PartnerId::parse("AL-CTD").expect("id");
        for identity in [
            Identity::Partner(p.clone()),
            Identity::PartnerDpo(p),
            Identity::GatewayDpo,
            Identity::Operator("admin".into()),
        ] {
            assert_eq!(
                crate::audit::Role::from(&identity).as_str(),
                identity.role()
            );
        }
    }
}
