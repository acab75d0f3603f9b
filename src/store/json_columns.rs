//! Label, evaluation and personal data as the JSON text their columns
//! hold: written here and nowhere else, so the stored spelling of a domain
//! value has one definition (and a label the writer compares, see
//! `expected`, is spelt as it was stored).

use crate::domain::{Evaluation, Label, PersonalData};

/// A label as stored in `messages.label`.
pub(crate) fn label_text(label: &Label) -> String {
    to_text(label)
}

/// An evaluation as stored in `messages.evaluation`.
pub(crate) fn evaluation_text(evaluation: &Evaluation) -> String {
    to_text(evaluation)
}

/// Personal-data facts as stored in `messages.personal_data`: without the
/// basis for special categories, which is sealed with the content.
pub(crate) fn personal_data_text(pd: &PersonalData) -> String {
    serde_json::json!({
        "subjects": pd.subjects,
        "special_categories": pd.special_categories,
        "minors": pd.minors,
    })
    .to_string()
}

/// A value's JSON text. The domain types serialise infallibly (no maps
/// with non-string keys, no failing `Serialize`); `null` is never reached.
fn to_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}
