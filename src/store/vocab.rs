//! The closed sets of words the store keeps as text: a delivery's status,
//! a permission's scope, a sender signature's role. Callers compare enum
//! values, never string literals; the stored text is exactly the wire name
//! each had before (no migration). Text outside the set can only come from
//! a database someone edited by hand: it reads as [`StoreError::Corrupt`].

use super::error::StoreError;
use crate::domain::string_enum;

string_enum! {
    /// Where a recipient's delivery of a message stands.
    pub enum DeliveryStatus {
        /// Stored, not yet read by the recipient.
        Queued = "queued",
        /// Read at least once.
        Delivered = "delivered",
        /// Acknowledged by the recipient (final).
        Acknowledged = "acknowledged",
        /// Handed to the peer gateway the recipient lives behind, which
        /// accepted it (SPEC §11).
        Relayed = "relayed",
        /// The peer gateway's policy refused it for the recipient (final).
        Refused = "refused",
        /// The peer could not be reached within `give_up_after_hours`
        /// (final).
        Undeliverable = "undeliverable",
        /// The peer gateway confirmed it erased its copy (an `erased`
        /// receipt, SPEC §11; final).
        Erased = "erased",
    }
}

impl DeliveryStatus {
    /// How far along a delivery is, so a late receipt never moves a
    /// status backward: queued < relayed < delivered < acknowledged; the
    /// final refusals rank above all.
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Relayed => 1,
            Self::Delivered => 2,
            Self::Acknowledged => 3,
            Self::Refused | Self::Undeliverable | Self::Erased => 4,
        }
    }
}

string_enum! {
    /// What an outbox row carries to a peer gateway.
    pub enum OutboxKind {
        /// A message (the relay opens it when it sends).
        Message = "message",
        /// A lifecycle notice (its JSON in the row).
        Notice = "notice",
        /// A receipt the holder sends later (its JWS in the row).
        Receipt = "receipt",
    }
}

string_enum! {
    /// What an originator's grant on its information permits.
    pub enum PermissionScope {
        /// Forwarding a copy to a third partner.
        Forward = "forward",
        /// Use in judicial proceedings (handling code H1).
        JudicialUse = "judicial_use",
    }
}

string_enum! {
    /// Whose signature a stored sender signature is.
    pub enum SignatureRole {
        /// The partner who first provided the information.
        Originator = "originator",
        /// A partner who forwarded it.
        Forwarder = "forwarder",
    }
}

/// Reads a stored word of one of the sets above: from text the writer
/// read (`TryFrom<String>`) and from a column of the read pool (sqlx's
/// `Decode`, whose error `StoreError`'s `From<sqlx::Error>` recognises).
macro_rules! stored_word {
    ($($name:ident),+) => {$(
        impl TryFrom<String> for $name {
            type Error = StoreError;

            fn try_from(s: String) -> Result<Self, StoreError> {
                Self::parse(&s).ok_or_else(|| unknown(stringify!($name), &s, &Self::allowed()))
            }
        }

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                Ok(Self::try_from(s)?)
            }
        }
    )+};
}

/// The error for a stored word outside its set.
fn unknown(set: &str, word: &str, allowed: &str) -> StoreError {
    StoreError::Corrupt(format!("stored {set} {word:?} is none of {allowed}"))
}

stored_word!(DeliveryStatus, PermissionScope, SignatureRole, OutboxKind);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_words_round_trip_and_unknown_ones_are_corrupt() {
        for s in DeliveryStatus::ALL {
            assert_eq!(
                DeliveryStatus::try_from(s.as_str().to_owned()).ok(),
                Some(*s)
            );
        }
        assert_eq!(PermissionScope::Forward.as_str(), "forward");
        assert_eq!(SignatureRole::Forwarder.as_str(), "forwarder");
        let r = DeliveryStatus::try_from("Queued".to_owned());
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    }
}
