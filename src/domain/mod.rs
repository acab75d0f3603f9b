//! The gateway's vocabulary: partners, labels, evaluations, messages.
//!
//! Everything here is pure (no I/O, no clock: callers pass `today`), so the
//! rules a partner's message must obey can be tested as plain functions and
//! fuzzed. Untrusted JSON is parsed into these types once, at the edge
//! ("parse, don't validate"); past that point a `Label` is always a valid
//! label.

pub mod evaluation;
pub mod fields;
pub mod label;
pub mod message;
pub mod partner;
pub mod text;
pub mod time;

pub use evaluation::Evaluation;
pub use fields::{FieldError, FieldErrors};
pub use label::{Classification, HandlingCode, Label};
pub use message::{DataSubject, NewMessage, PersonalData, Purpose, SpecialCategory};
pub use partner::PartnerId;

/// Defines a closed set of wire names as a Rust enum with parsing, printing
/// and serde support, so every enum in the contract is spelt in one place.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        $vis enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant ),+ ];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $wire ),+ }
            }

            /// Parses a wire name exactly (case-sensitive).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $wire => Some(Self::$variant), )+ _ => None }
            }

            /// The allowed wire names, for error messages.
            pub fn allowed() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// The OpenAPI schema: a string enumerating every wire name, so
        /// the API description lists exactly what the parser accepts.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown value {s:?}, expected one of {}",
                        Self::allowed()
                    ))
                })
            }
        }
    };
}
pub(crate) use string_enum;
