//! The actor's role in an audit record.

use serde::{Deserialize, Serialize};

/// Who acted, by kind. Written as today's words (`partner`, `dpo`,
/// `operator`, `system`, `unidentified`). A record read back from an older
/// or foreign log may name a role this gateway does not know: it is kept
/// word for word as [`Role::Other`], so its hash still verifies, rather
/// than refused or rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// A partner authority's system.
    Partner,
    /// A data-protection officer (a partner's or the gateway's).
    Dpo,
    /// An operator.
    Operator,
    /// The gateway's own task (retention sweeper, checkpointer, start).
    System,
    /// A certificate that names no Brdo identity.
    Unidentified,
    /// A peer gateway (federation).
    Gateway,
    /// A word none of the above spell, as read back.
    Other(String),
}

impl Role {
    /// The word of every known role, in declaration order.
    #[cfg(test)]
    pub(crate) const KNOWN: &[Role] = &[
        Role::Partner,
        Role::Dpo,
        Role::Operator,
        Role::System,
        Role::Unidentified,
        Role::Gateway,
    ];

    /// The word written in records.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Partner => "partner",
            Role::Dpo => "dpo",
            Role::Operator => "operator",
            Role::System => "system",
            Role::Unidentified => "unidentified",
            Role::Gateway => "gateway",
            Role::Other(s) => s,
        }
    }

    /// Reads a role word exactly (case-sensitive); any other word is kept
    /// as [`Role::Other`].
    pub(crate) fn from_word(word: String) -> Self {
        match word.as_str() {
            "partner" => Role::Partner,
            "dpo" => Role::Dpo,
            "operator" => Role::Operator,
            "system" => Role::System,
            "unidentified" => Role::Unidentified,
            "gateway" => Role::Gateway,
            _ => Role::Other(word),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Role {
    fn from(word: String) -> Self {
        Role::from_word(word)
    }
}

impl From<&str> for Role {
    fn from(word: &str) -> Self {
        Role::from_word(word.to_owned())
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Role::from_word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_written_as_before() {
        let words: Vec<&str> = Role::KNOWN.iter().map(Role::as_str).collect();
        assert_eq!(
            words,
            [
                "partner",
                "dpo",
                "operator",
                "system",
                "unidentified",
                "gateway"
            ]
        );
        for r in Role::KNOWN {
            assert_eq!(serde_json::to_value(r).ok(), Some(r.as_str().into()));
            assert_eq!(&Role::from(r.as_str()), r);
        }
    }

    #[test]
    fn unknown_words_read_back_word_for_word() {
        for word in ["auditor", "Partner", "", " dpo", "é😂"] {
            let r = Role::from(word);
            assert_eq!(r, Role::Other(word.to_owned()));
            assert_eq!(r.as_str(), word);
            let json = serde_json::to_string(&r).expect("json");
            assert_eq!(serde_json::from_str::<Role>(&json).ok(), Some(r));
        }
    }
}
