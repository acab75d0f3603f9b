//! Source and information evaluation codes.
//!
//! Codes are kept in the scheme the provider used and never converted: an
//! `EU-4x4` "B2" and a `NATO-6x6` "B2" do not mean the same thing, and a
//! conversion would put words in the provider's mouth.

use serde::Serialize;
use serde_json::Value;

use super::fields::{FieldErrors, Obj};
use super::string_enum;

string_enum! {
    /// Evaluation schemes the gateway accepts.
    pub enum Scheme {
        /// The EU 4x4 system (sources A, B, C, X; information 1-4).
        Eu4x4 = "EU-4x4",
        /// The NATO Admiralty code (sources A-F; information 1-6).
        Nato6x6 = "NATO-6x6",
    }
}

impl Scheme {
    /// The source reliability codes the scheme defines.
    pub fn sources(self) -> &'static [&'static str] {
        match self {
            Self::Eu4x4 => &["A", "B", "C", "X"],
            Self::Nato6x6 => &["A", "B", "C", "D", "E", "F"],
        }
    }

    /// The information credibility codes the scheme defines.
    pub fn information(self) -> &'static [&'static str] {
        match self {
            Self::Eu4x4 => &["1", "2", "3", "4"],
            Self::Nato6x6 => &["1", "2", "3", "4", "5", "6"],
        }
    }
}

/// A validated evaluation of source and information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The scheme the codes belong to.
    pub scheme: Scheme,
    /// Source reliability code.
    pub source: String,
    /// Information credibility code.
    pub information: String,
}

impl Evaluation {
    /// Parses an evaluation object; codes are checked against their own scheme.
    pub fn parse(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<Self> {
        let mut o = Obj::new(value, path, errs)?;
        let before = errs.as_slice().len();
        let scheme = o.required_str("scheme", errs).and_then(|s| {
            Scheme::parse(s).or_else(|| {
                errs.push(
                    o.path_of("scheme"),
                    format!("must be one of {}", Scheme::allowed()),
                );
                None
            })
        });
        let source = o.required_str("source", errs);
        let information = o.required_str("information", errs);
        if let Some(scheme) = scheme {
            check_code(source, scheme.sources(), scheme, &o.path_of("source"), errs);
            check_code(
                information,
                scheme.information(),
                scheme,
                &o.path_of("information"),
                errs,
            );
        }
        o.finish(errs);
        if errs.as_slice().len() != before {
            return None;
        }
        Some(Evaluation {
            scheme: scheme?,
            source: source?.to_owned(),
            information: information?.to_owned(),
        })
    }
}

fn check_code(
    code: Option<&str>,
    allowed: &[&str],
    scheme: Scheme,
    path: &str,
    errs: &mut FieldErrors,
) {
    if let Some(code) = code
        && !allowed.contains(&code)
    {
        errs.push(
            path,
            format!(
                "{code:?} is not a code of {scheme}; expected one of {}",
                allowed.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Evaluation, Vec<String>> {
        let mut errs = FieldErrors::default();
        Evaluation::parse(&v, "evaluation", &mut errs)
            .ok_or_else(|| errs.into_vec().into_iter().map(|e| e.field).collect())
    }

    #[test]
    fn codes_belong_to_their_scheme() {
        assert!(parse(json!({"scheme": "EU-4x4", "source": "X", "information": "4"})).is_ok());
        assert!(parse(json!({"scheme": "NATO-6x6", "source": "F", "information": "6"})).is_ok());
        assert_eq!(
            parse(json!({"scheme": "EU-4x4", "source": "D", "information": "5"})).unwrap_err(),
            ["evaluation.source", "evaluation.information"]
        );
        assert_eq!(
            parse(json!({"scheme": "NATO-6x6", "source": "X", "information": "1"})).unwrap_err(),
            ["evaluation.source"]
        );
        assert_eq!(
            parse(json!({"scheme": "eu-4x4", "source": "A", "information": "1"})).unwrap_err(),
            ["evaluation.scheme"]
        );
        assert_eq!(
            parse(json!({"scheme": "EU-4x4"})).unwrap_err(),
            ["evaluation.source", "evaluation.information"]
        );
    }
}
