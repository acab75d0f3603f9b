//! What free text the gateway accepts from a peer, decided in one place.
//!
//! Officers' names, justifications, reasons, references and case numbers
//! end up in the permanent audit log and on the DPO's page. A text that
//! *looks* like another (`insp.hoxha` with a zero-width space, or a
//! right-to-left override that reverses what a reader sees) defeats the
//! DPO's `officer=` filter and spoofs names on screen, and the record can
//! never be corrected. So every free-text field is read through
//! [`free_text`]: it normalises to Unicode NFC (one spelling for one
//! visible text, so `Petrović` typed precomposed or decomposed is the same
//! officer) and refuses every code point that is invisible, reorders text
//! or has no meaning yet.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// How many characters of a client-chosen name (an unknown JSON key or
/// query parameter) a problem document echoes back; the audit log echoes
/// none (see `api::audit_safe`).
pub const ECHO_MAX: usize = 40;

/// Why a free text was refused. The wording never repeats the text: it
/// may be personal data, and the error lands in logs and problem documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty (after trimming, for headers).
    #[error("must not be empty")]
    Empty,
    /// Too short or too long, counted in characters after NFC.
    #[error("must be {min} to {max} characters long, not {len}")]
    Length {
        /// Least characters.
        min: usize,
        /// Most characters.
        max: usize,
        /// Characters given (after NFC).
        len: usize,
    },
    /// A code point that is invisible, a control, reorders text or is
    /// unassigned.
    #[error("must not contain {kind} (U+{code:04X} at character {at})")]
    Forbidden {
        /// What class the code point belongs to, in words.
        kind: &'static str,
        /// The code point.
        code: u32,
        /// Its 1-based position, so the sender can find it.
        at: usize,
    },
}

/// Code points that render as nothing although their general category is
/// not `Cf`/`Cc` (Unicode's `Default_Ignorable_Code_Point` outside those
/// categories, and the Hangul fillers that render blank): a name padded
/// with them looks like another name.
const INVISIBLE: &[(char, char)] = &[
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{115F}', '\u{1160}'),   // Hangul choseong/jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian variation selectors
    ('\u{2800}', '\u{2800}'),   // braille pattern blank
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{1D173}', '\u{1D17A}'), // musical symbol format marks
    ('\u{E0100}', '\u{E01EF}'), // variation selectors supplement
];

/// Explicit bidirectional formatting characters (all `Cf`, named apart
/// because they are the spoofing tool: they reorder what a reader sees).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The class of a code point free text may not hold, or `None` if it may.
/// `newlines` admits `\n`, `\r` and `\t` (multi-line fields such as a
/// justification).
pub(crate) fn forbidden_kind(c: char, newlines: bool) -> Option<&'static str> {
    if newlines && matches!(c, '\n' | '\r' | '\t') {
        return None;
    }
    if is_bidi_control(c) {
        return Some("bidirectional control characters");
    }
    if INVISIBLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) {
        return Some("invisible characters");
    }
    // A one-line text is a name someone filters by: a no-break, thin or
    // hair space looks like an ordinary space, or like nothing, and NFC
    // keeps it, so `insp.\u{A0}hoxha` would be a second officer that reads
    // as `insp. hoxha`.
    if !newlines && c != ' ' && c.general_category() == GeneralCategory::SpaceSeparator {
        return Some("space characters other than the ordinary space");
    }
    match c.general_category() {
        GeneralCategory::Control => Some("control characters"),
        GeneralCategory::Format => Some("invisible formatting characters"),
        GeneralCategory::Surrogate => Some("surrogate code points"),
        GeneralCategory::PrivateUse => Some("private-use characters"),
        GeneralCategory::Unassigned => Some("unassigned code points"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("line or paragraph separators")
        }
        _ => None,
    }
}

/// The one rule for free text from a peer: refuses any code point
/// [`forbidden_kind`] names, normalises to NFC, and checks the length in
/// characters of the normalised text against `min..=max`. Returns the NFC
/// text, which is what the gateway stores and audits.
pub fn free_text(s: &str, min: usize, max: usize, newlines: bool) -> Result<String, TextError> {
    // Checked before normalising so the position points into what was
    // sent; NFC never creates a forbidden code point from allowed ones.
    // A text far over the limit is refused before it is normalised.
    if let Some((i, c, kind)) = s
        .chars()
        .enumerate()
        .find_map(|(i, c)| forbidden_kind(c, newlines).map(|k| (i, c, k)))
    {
        return Err(TextError::Forbidden {
            kind,
            code: u32::from(c),
            at: i + 1,
        });
    }
    let raw_len = s.chars().count();
    if raw_len > max.saturating_mul(4) {
        return Err(TextError::Length {
            min,
            max,
            len: raw_len,
        });
    }
    let mut nfc: String = s.nfc().collect();
    if !newlines && nfc.contains("  ") {
        // A web page shows a run of spaces as one, so `insp.  hoxha` on
        // the DPO's page reads as `insp. hoxha` yet escapes a filter for
        // it: a one-line text keeps one space where several were sent.
        let mut out = String::with_capacity(nfc.len());
        for c in nfc.chars() {
            if !(c == ' ' && out.ends_with(' ')) {
                out.push(c);
            }
        }
        nfc = out;
    }
    let len = nfc.chars().count();
    if len == 0 && min > 0 {
        return Err(TextError::Empty);
    }
    if len < min || len > max {
        return Err(TextError::Length { min, max, len });
    }
    Ok(nfc)
}

/// A client-chosen name (an unknown key, a parameter the endpoint does not
/// have) as a problem document may echo it: at most [`ECHO_MAX`]
/// characters, every character free text may not hold replaced by `?`, and
/// `…` when cut. The audit log never gets even this.
pub fn echo(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(ECHO_MAX)
        .map(|c| {
            if forbidden_kind(c, false).is_some() {
                '?'
            } else {
                c
            }
        })
        .collect();
    if name.chars().nth(ECHO_MAX).is_some() {
        out.push('…');
    }
    out
}

/// Cuts a string to at most `max` characters (marking the cut with `…`):
/// a bound on anything written to the permanent audit log.
pub(crate) fn cap(s: &str, max: usize) -> String {
    if s.chars().nth(max).is_none() {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// 1-based line and column (in characters) of a byte offset: where a
/// configuration or policy file's parse error points, as an editor counts.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every class the brief names, one or more code points each.
    const HOSTILE: &[(char, &str)] = &[
        ('\u{202E}', "bidirectional"),
        ('\u{202A}', "bidirectional"),
        ('\u{2066}', "bidirectional"),
        ('\u{200F}', "bidirectional"),
        ('\u{061C}', "bidirectional"),
        ('\u{200B}', "formatting"),
        ('\u{200D}', "formatting"),
        ('\u{FEFF}', "formatting"),
        ('\u{00AD}', "formatting"),
        ('\u{2060}', "formatting"),
        ('\u{E0041}', "formatting"),
        ('\u{0000}', "control"),
        ('\u{0007}', "control"),
        ('\u{0085}', "control"),
        ('\u{007F}', "control"),
        ('\u{2028}', "separator"),
        ('\u{2029}', "separator"),
        ('\u{E000}', "private-use"),
        ('\u{F0000}', "private-use"),
        ('\u{0378}', "unassigned"),
        ('\u{FFFF}', "unassigned"),
        ('\u{FDD0}', "unassigned"),
        ('\u{3164}', "invisible"),
        ('\u{115F}', "invisible"),
        ('\u{FE0F}', "invisible"),
        ('\u{034F}', "invisible"),
    ];

    #[test]
    fn one_line_texts_hold_only_the_ordinary_space() {
        // No-break, narrow no-break, thin, hair, ideographic, Ogham and
        // medium mathematical spaces: each makes a name that reads as
        // another (or as the same name without a space).
        for c in [
            '\u{00A0}', '\u{202F}', '\u{2009}', '\u{200A}', '\u{2000}', '\u{3000}', '\u{1680}',
            '\u{205F}',
        ] {
            let s = format!("insp.ho{c}xha");
            match free_text(&s, 1, 128, false) {
                Err(TextError::Forbidden { code, at, .. }) => {
                    assert_eq!((code, at), (u32::from(c), 8), "U+{:04X}", u32::from(c));
                }
                other => panic!("U+{:04X}: {other:?}", u32::from(c)),
            }
            assert_eq!(echo(&s), "insp.ho?xha");
        }
        assert_eq!(
            free_text("insp. hoxha", 1, 128, false).as_deref(),
            Ok("insp. hoxha")
        );
        // A run of ordinary spaces, shown as one on a web page, is kept
        // as one, so it names the same officer.
        assert_eq!(
            free_text("insp.   hoxha", 1, 128, false).as_deref(),
            Ok("insp. hoxha")
        );
        assert_eq!(
            free_text("a  b", 1, 128, true).as_deref(),
            Ok("a  b"),
            "prose keeps its spacing"
        );
        // Multi-line prose (a justification) keeps typographic spaces.
        assert!(free_text("Art. 6\u{00A0}§\u{202F}1", 1, 128, true).is_ok());
    }

    #[test]
    fn every_hostile_code_point_is_refused_at_its_position() {
        for (c, kind) in HOSTILE {
            let s = format!("insp.{c}hoxha");
            match free_text(&s, 1, 128, true) {
                Err(TextError::Forbidden { kind: k, code, at }) => {
                    assert!(k.contains(kind), "U+{:04X}: {k}", u32::from(*c));
                    assert_eq!(code, u32::from(*c));
                    assert_eq!(at, 6);
                }
                other => panic!("U+{:04X} accepted: {other:?}", u32::from(*c)),
            }
        }
    }

    #[test]
    fn newlines_only_where_admitted() {
        assert_eq!(
            free_text("a\nb\tc\r", 1, 10, true).as_deref(),
            Ok("a\nb\tc\r")
        );
        assert!(matches!(
            free_text("a\nb", 1, 10, false),
            Err(TextError::Forbidden { code: 0x0A, .. })
        ));
    }

    #[test]
    fn nfd_becomes_nfc_and_length_counts_the_nfc_form() {
        let nfd = "insp.Petrovic\u{0301}";
        let nfc = free_text(nfd, 1, 128, false).expect("accepted");
        assert_eq!(nfc, "insp.Petrovi\u{0107}");
        // Fourteen characters as sent, thirteen in NFC: the limit is NFC's.
        assert_eq!(free_text(nfd, 1, 13, false).as_deref(), Ok(nfc.as_str()));
    }

    #[test]
    fn letters_of_every_script_pass() {
        for s in [
            "insp.Hoxha",
            "Петровић",
            "Ђурђевић",
            "Çelik Ömer",
            "محمد",
            "山田 太郎",
            "ΑΒΓ",
        ] {
            assert_eq!(free_text(s, 1, 128, false).as_deref(), Ok(s));
        }
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(free_text("", 1, 3, false), Err(TextError::Empty));
        assert_eq!(
            free_text("abcd", 1, 3, false),
            Err(TextError::Length {
                min: 1,
                max: 3,
                len: 4
            })
        );
        assert_eq!(free_text("", 0, 3, false).as_deref(), Ok(""));
    }

    #[test]
    fn echo_is_bounded_and_sanitised() {
        let long = "Ahmet-Rexhepi-born-1987-".repeat(400);
        let e = echo(&long);
        assert_eq!(e.chars().count(), ECHO_MAX + 1);
        assert!(e.ends_with('…'));
        assert_eq!(echo("a\u{202E}b"), "a?b");
        assert_eq!(echo("colour"), "colour");
    }

    #[test]
    fn cap_bounds_characters() {
        assert_eq!(cap("abc", 3), "abc");
        assert_eq!(cap("abcd", 3), "ab…");
        assert_eq!(cap(&"ž".repeat(10_000), 100).chars().count(), 100);
    }
}
