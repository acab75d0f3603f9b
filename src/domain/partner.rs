//! Partner identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A partner authority's identifier, e.g. `AL-CTD` or `EU-ECTC`.
///
/// A newtype so a partner id can only exist once it has been checked against
/// `^[A-Z0-9][A-Z0-9-]{1,31}$`: ids end up in certificate URIs, SQL
/// parameters, file names and audit records, and a single grammar for all of
/// them keeps lookalikes and injection out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PartnerId(String);

impl PartnerId {
    /// Parses an id, returning `None` if it does not match the grammar.
    pub fn parse(s: &str) -> Option<Self> {
        is_partner_id(s).then(|| Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The partner-id grammar, shared with certificate parsing.
pub fn is_partner_id(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=32).contains(&b.len())
        && (b[0].is_ascii_uppercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'-')
}

/// The OpenAPI schema of a partner id (SPEC §1).
impl utoipa::PartialSchema for PartnerId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Z0-9][A-Z0-9-]{1,31}$"))
            .examples(["AL-CTD", "RS-MOI", "EU-ECTC"])
            .into()
    }
}

impl utoipa::ToSchema for PartnerId {}

impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PartnerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a partner id (2 to 32 of A-Z, 0-9 and '-', starting with a letter or digit)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        for ok in ["AL-CTD", "EU-ECTC", "XK-CTD", "A1", "9-9", &"A".repeat(32)] {
            assert!(PartnerId::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "al-ctd",
            "-AL",
            "AL_CTD",
            "AL CTD",
            "ÄL-CTD",
            &"A".repeat(33),
        ] {
            assert!(PartnerId::parse(bad).is_none(), "{bad}");
        }
    }
}
