//! `policy.toml`: partners, agreements and retention rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::domain::message::{DataSubject, Purpose};
use crate::domain::string_enum;
use crate::domain::text::line_col;
use crate::domain::{Classification, PartnerId};

string_enum! {
    /// Legal bases for a transfer between partners (LED Chapter V, Europol
    /// Regulation Art. 25).
    pub enum LegalBasis {
        /// An operational cooperation agreement with Europol.
        OperationalAgreement = "operational_agreement",
        /// A Commission adequacy decision (LED Art. 36).
        AdequacyDecision = "adequacy_decision",
        /// Appropriate safeguards (LED Art. 37).
        AppropriateSafeguards = "appropriate_safeguards",
        /// Derogations for specific situations (LED Art. 38).
        Derogation = "derogation",
        /// Union law binding both parties (exchange inside the Union).
        UnionLaw = "union_law",
    }
}

/// A partner authority as the policy knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Its identifier.
    pub id: PartnerId,
    /// Its full name, for people reading audit reports.
    pub name: String,
    /// ISO 3166 country code (or `EU` for Union bodies).
    pub country: String,
    /// Highest classification it may send or receive.
    pub clearance: Classification,
    /// Outside the EU: transfers need a recorded legal basis.
    pub third_country: bool,
    /// The peer gateway it lives behind (`via`), or `None` when it connects
    /// to this gateway itself. Messages to it travel through that peer, and
    /// only that peer may deliver messages it originated.
    pub via: Option<PartnerId>,
    /// The only CA allowed to vouch for its certificates (`ca`), resolved
    /// against the policy file's folder; `None`: any configured client CA.
    /// Binding an id to its authority's CA keeps one authority's CA from
    /// minting another's identity.
    pub ca: Option<PathBuf>,
}

/// A peer gateway this gateway exchanges with (`[[peer]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its gateway id (`urn:brdo:gateway:ID` in its certificate).
    pub id: PartnerId,
    /// Where its federation endpoints are served (`https://host:port`).
    pub url: String,
    /// The only trust anchor for its gateway certificate, resolved against
    /// the policy file's folder; it vouches for nothing but this peer's id.
    pub ca: PathBuf,
    /// Its envelope public key (PEM): verifies its label bindings and its
    /// receipts.
    pub envelope_key: PathBuf,
}

/// A legal agreement covering every pair among its parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The parties.
    pub parties: BTreeSet<PartnerId>,
    /// Its legal basis.
    pub basis: LegalBasis,
    /// The instrument's reference, quoted in denials and audit reports.
    pub reference: String,
    /// Highest classification it covers.
    pub max_classification: Classification,
    /// Purposes it permits.
    pub purposes: BTreeSet<Purpose>,
    /// Whether personal data may be exchanged.
    pub personal_data: bool,
    /// Whether special categories of personal data may be exchanged.
    pub special_categories: bool,
}

impl Agreement {
    /// Whether this agreement covers transfers between `a` and `b`.
    pub fn covers(&self, a: &PartnerId, b: &PartnerId) -> bool {
        a != b && self.parties.contains(a) && self.parties.contains(b)
    }
}

/// A retention rule keyed on categories of data subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    /// The rule applies when the message is about any of these.
    pub subjects: BTreeSet<DataSubject>,
    /// Days to keep such a message.
    pub days: u32,
}

/// Retention settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Erase after this unless a review keeps it.
    pub default_days: u32,
    /// `review_on` when the label names none.
    pub review_days: u32,
    /// Nothing is kept longer than this.
    pub max_days: u32,
    /// Rules for particular data subjects.
    pub rules: Vec<RetentionRule>,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Known partners by id.
    pub partners: BTreeMap<PartnerId, Partner>,
    /// Agreements, in file order.
    pub agreements: Vec<Agreement>,
    /// Retention settings.
    pub retention: RetentionPolicy,
    /// Peer gateways by id (federation); empty for a gateway on its own.
    pub peers: BTreeMap<PartnerId, Peer>,
}

impl Policy {
    /// Looks a peer gateway up.
    pub fn peer(&self, id: &PartnerId) -> Option<&Peer> {
        self.peers.get(id)
    }

    /// Checks that the policy fits this gateway's federation id: peers
    /// need an id (`[federation] id`, which receipts and the relay name),
    /// and no peer may carry this gateway's own id.
    pub fn check_federation(&self, own: Option<&PartnerId>) -> Result<(), String> {
        match own {
            None if !self.peers.is_empty() => {
                return Err(
                    "the policy lists [[peer]] gateways, but [federation] id is not set".to_owned(),
                );
            }
            Some(id) if self.peers.contains_key(id) => {
                return Err(format!(
                    "[[peer]] {id} carries this gateway's own [federation] id"
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The peer a partner lives behind, if it is remote.
    pub fn via(&self, partner: &PartnerId) -> Option<&Peer> {
        self.partners
            .get(partner)
            .and_then(|p| p.via.as_ref())
            .and_then(|v| self.peers.get(v))
    }

    /// Looks a partner up.
    pub fn partner(&self, id: &PartnerId) -> Option<&Partner> {
        self.partners.get(id)
    }

    /// The agreements covering a pair, in file order.
    pub(crate) fn agreements_between<'a>(
        &'a self,
        a: &'a PartnerId,
        b: &'a PartnerId,
    ) -> impl Iterator<Item = &'a Agreement> + 'a {
        self.agreements.iter().filter(move |ag| ag.covers(a, b))
    }

    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot be read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates policy text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PolicyError> {
        let at = |span: Option<Range<usize>>, message: String| {
            PolicyError::at(path, text, span, message)
        };
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("")).to_owned();
        raw.validate(&base)
            .map_err(|(span, msg)| at(Some(span), msg))
    }
}

/// A policy that cannot be used, with the place in the file that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column (0 when the file could not be read).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl PolicyError {
    fn at(file: &Path, text: &str, span: Option<Range<usize>>, message: String) -> Self {
        let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
        Self {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "policy file {} {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "policy file {} line {} column {}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message.trim_end()
            )
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    partner: Vec<RawPartner>,
    #[serde(default)]
    agreement: Vec<RawAgreement>,
    retention: Spanned<RawRetention>,
    #[serde(default)]
    peer: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    id: Spanned<PartnerId>,
    url: Spanned<String>,
    ca: Spanned<PathBuf>,
    envelope_key: Spanned<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    id: Spanned<PartnerId>,
    name: Spanned<String>,
    country: Spanned<String>,
    clearance: Classification,
    third_country: bool,
    #[serde(default)]
    via: Option<Spanned<PartnerId>>,
    #[serde(default)]
    ca: Option<Spanned<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgreement {
    parties: Spanned<Vec<Spanned<PartnerId>>>,
    basis: Spanned<LegalBasis>,
    reference: Spanned<String>,
    max_classification: Classification,
    purposes: Spanned<Vec<Purpose>>,
    personal_data: bool,
    special_categories: Spanned<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    default_days: Spanned<u32>,
    review_days: Spanned<u32>,
    max_days: Spanned<u32>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    subjects: Spanned<Vec<DataSubject>>,
    days: Spanned<u32>,
}

type Invalid = (Range<usize>, String);

fn nonzero(v: &Spanned<u32>, what: &str) -> Result<u32, Invalid> {
    match *v.get_ref() {
        0 => Err((v.span(), format!("{what} must be at least 1"))),
        n => Ok(n),
    }
}

impl RawPolicy {
    /// Checks what the types alone cannot: every rule below fails on the
    /// first problem, with the span that names it.
    fn validate(self, base: &Path) -> Result<Policy, Invalid> {
        let peers = validate_peers(self.peer, base)?;
        let partners = validate_partners(self.partner, &peers, base)?;
        let agreements = self
            .agreement
            .into_iter()
            .map(|a| a.validate(&partners))
            .collect::<Result<_, _>>()?;
        let retention = self.retention.into_inner().validate()?;
        Ok(Policy {
            partners,
            agreements,
            retention,
            peers,
        })
    }
}

/// A path from the policy file, relative to the file's folder.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// The peers by id: each once, with an `https://` URL and both files named.
fn validate_peers(raw: Vec<RawPeer>, base: &Path) -> Result<BTreeMap<PartnerId, Peer>, Invalid> {
    let mut peers = BTreeMap::new();
    for p in raw {
        let id = p.id.get_ref().clone();
        let url = p.url.get_ref().trim_end_matches('/');
        let rest = url.strip_prefix("https://").unwrap_or("");
        if rest.is_empty()
            || rest.contains(['/', '?', '#', '@'])
            || rest.chars().any(char::is_whitespace)
        {
            return Err((
                p.url.span(),
                format!("url of peer {id} must be https://HOST:PORT (no path)"),
            ));
        }
        for (what, f) in [("ca", &p.ca), ("envelope_key", &p.envelope_key)] {
            if f.get_ref().as_os_str().is_empty() {
                return Err((f.span(), format!("{what} of peer {id} names no file")));
            }
        }
        let peer = Peer {
            id: id.clone(),
            url: url.to_owned(),
            ca: resolve(base, p.ca.get_ref()),
            envelope_key: resolve(base, p.envelope_key.get_ref()),
        };
        if peers.insert(id.clone(), peer).is_some() {
            return Err((p.id.span(), format!("peer {id} is defined twice")));
        }
    }
    Ok(peers)
}

/// The partners by id: each named, with a two-letter country, once; at
/// least one.
fn validate_partners(
    raw: Vec<RawPartner>,
    peers: &BTreeMap<PartnerId, Peer>,
    base: &Path,
) -> Result<BTreeMap<PartnerId, Partner>, Invalid> {
    let mut partners = BTreeMap::new();
    for p in raw {
        let id = p.id.get_ref().clone();
        if p.name.get_ref().trim().is_empty() {
            return Err((p.name.span(), format!("partner {id} needs a name")));
        }
        let c = p.country.get_ref();
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err((
                p.country.span(),
                format!("country of {id} must be two capital letters, e.g. AL or EU"),
            ));
        }
        if let Some(via) = &p.via
            && !peers.contains_key(via.get_ref())
        {
            return Err((
                via.span(),
                format!(
                    "partner {id} is via {}, which is no [[peer]]",
                    via.get_ref()
                ),
            ));
        }
        let partner = Partner {
            id: id.clone(),
            name: p.name.into_inner(),
            country: p.country.into_inner(),
            clearance: p.clearance,
            third_country: p.third_country,
            via: p.via.map(Spanned::into_inner),
            ca: p.ca.map(|c| resolve(base, c.get_ref())),
        };
        if partners.insert(id.clone(), partner).is_some() {
            return Err((p.id.span(), format!("partner {id} is defined twice")));
        }
    }
    if partners.is_empty() {
        return Err((0..0, "the policy defines no [[partner]]".to_owned()));
    }
    Ok(partners)
}

impl RawAgreement {
    /// An agreement among known, distinct parties (union law only inside
    /// the Union), with a reference, a purpose, and special categories only
    /// where personal data is allowed.
    fn validate(self, partners: &BTreeMap<PartnerId, Partner>) -> Result<Agreement, Invalid> {
        let parties = self.known_parties(partners)?;
        if self.reference.get_ref().trim().is_empty() {
            return Err((
                self.reference.span(),
                "an agreement needs a reference".to_owned(),
            ));
        }
        let purposes: BTreeSet<Purpose> = self.purposes.get_ref().iter().copied().collect();
        if purposes.is_empty() {
            return Err((
                self.purposes.span(),
                "an agreement must permit at least one purpose".to_owned(),
            ));
        }
        if *self.special_categories.get_ref() && !self.personal_data {
            return Err((
                self.special_categories.span(),
                "special_categories = true needs personal_data = true".to_owned(),
            ));
        }
        Ok(Agreement {
            parties,
            basis: self.basis.into_inner(),
            reference: self.reference.into_inner(),
            max_classification: self.max_classification,
            purposes,
            personal_data: self.personal_data,
            special_categories: self.special_categories.into_inner(),
        })
    }

    /// The parties: known partners, each once, at least two.
    fn known_parties(
        &self,
        partners: &BTreeMap<PartnerId, Partner>,
    ) -> Result<BTreeSet<PartnerId>, Invalid> {
        let mut parties = BTreeSet::new();
        for p in self.parties.get_ref() {
            let partner = partners.get(p.get_ref()).ok_or_else(|| {
                (
                    p.span(),
                    format!("agreement names unknown partner {}", p.get_ref()),
                )
            })?;
            if *self.basis.get_ref() == LegalBasis::UnionLaw && partner.third_country {
                return Err((
                    p.span(),
                    format!(
                        "basis union_law cannot cover {}, a third-country partner; use operational_agreement, adequacy_decision, appropriate_safeguards or derogation",
                        partner.id
                    ),
                ));
            }
            if !parties.insert(p.get_ref().clone()) {
                return Err((p.span(), format!("agreement lists {} twice", p.get_ref())));
            }
        }
        if parties.len() < 2 {
            return Err((
                self.parties.span(),
                "an agreement needs at least two parties".to_owned(),
            ));
        }
        Ok(parties)
    }
}

impl RawRetention {
    /// Periods of at least a day, none above `max_days`; each rule names a
    /// subject.
    fn validate(self) -> Result<RetentionPolicy, Invalid> {
        let default_days = nonzero(&self.default_days, "default_days")?;
        let review_days = nonzero(&self.review_days, "review_days")?;
        let max_days = nonzero(&self.max_days, "max_days")?;
        if default_days > max_days {
            return Err((
                self.default_days.span(),
                format!("default_days ({default_days}) exceeds max_days ({max_days})"),
            ));
        }
        let mut rules = Vec::new();
        for rule in self.rule {
            let days = nonzero(&rule.days, "days")?;
            if days > max_days {
                return Err((
                    rule.days.span(),
                    format!("days ({days}) exceeds max_days ({max_days})"),
                ));
            }
            let subjects: BTreeSet<DataSubject> = rule.subjects.get_ref().iter().copied().collect();
            if subjects.is_empty() {
                return Err((
                    rule.subjects.span(),
                    "a retention rule needs at least one subject".to_owned(),
                ));
            }
            rules.push(RetentionRule { subjects, days });
        }
        Ok(RetentionPolicy {
            default_days,
            review_days,
            max_days,
            rules,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small policy used across the policy tests.
    pub(crate) const SAMPLE: &str = r#"
[[partner]]
id = "AL-CTD"
name = "Albania, Directorate for Counter-Terrorism"
country = "AL"
clearance = "EU_RESTRICTED"
third_country = true

[[partner]]
id = "RS-MOI"
name = "Serbia, Ministry of Interior"
country = "RS"
clearance = "EU_RESTRICTED"
third_country = true

[[partner]]
id = "EU-ECTC"
name = "Europol, European Counter Terrorism Centre"
country = "EU"
clearance = "EU_SECRET"
third_country = false

[[partner]]
id = "XK-CTD"
name = "Kosovo, Counter-Terrorism Directorate"
country = "XK"
clearance = "BASIC_PROTECTION"
third_country = true

[[agreement]]
parties = ["AL-CTD", "EU-ECTC", "RS-MOI"]
basis = "operational_agreement"
reference = "Operational agreements with Europol"
max_classification = "EU_RESTRICTED"
purposes = ["prevention", "investigation", "detection", "prosecution"]
personal_data = true
special_categories = false

[retention]
default_days = 1095
review_days = 1095
max_days = 1825
[[retention.rule]]
subjects = ["victim", "witness", "informant"]
days = 365
"#;

    pub(crate) fn sample() -> Policy {
        Policy::parse(SAMPLE, Path::new("policy.toml")).expect("sample policy")
    }

    fn err(text: &str) -> PolicyError {
        Policy::parse(text, Path::new("p.toml")).expect_err("must be rejected")
    }

    #[test]
    fn sample_loads() {
        let p = sample();
        assert_eq!(p.partners.len(), 4);
        assert_eq!(p.agreements.len(), 1);
        assert_eq!(p.retention.rules[0].days, 365);
        let al = PartnerId::parse("AL-CTD").expect("id");
        let rs = PartnerId::parse("RS-MOI").expect("id");
        assert_eq!(p.agreements_between(&al, &rs).count(), 1);
        assert_eq!(p.agreements_between(&al, &al).count(), 0);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = err("[[partner]]\nid = \"AL-CTD\"\nname = \n");
        assert_eq!((e.line, e.column), (3, 8));
        assert!(
            e.to_string()
                .starts_with("policy file p.toml line 3 column 8: "),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_enums_are_located() {
        let text = SAMPLE.replace(
            "third_country = false",
            "third_country = false\ncolour = \"blue\"",
        );
        let e = err(&text);
        assert!(e.message.contains("colour"), "{e}");
        let line = text
            .lines()
            .position(|l| l.starts_with("colour"))
            .expect("line")
            + 1;
        assert_eq!(e.line, line);

        let e = err(&SAMPLE.replace("clearance = \"EU_SECRET\"", "clearance = \"TOP\""));
        assert!(e.message.contains("EU_RESTRICTED"), "{e}");
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let text = SAMPLE.replace(
            "parties = [\"AL-CTD\", \"EU-ECTC\", \"RS-MOI\"]",
            "parties = [\"AL-CTD\", \"ZZ-NONE\"]",
        );
        let e = err(&text);
        assert_eq!(e.message, "agreement names unknown partner ZZ-NONE");
        let line = text
            .lines()
            .position(|l| l.starts_with("parties"))
            .expect("line")
            + 1;
        assert_eq!((e.line, e.column), (line, 22));

        let e = err(&SAMPLE.replace("id = \"RS-MOI\"", "id = \"AL-CTD\""));
        assert_eq!(e.message, "partner AL-CTD is defined twice");

        let e = err(&SAMPLE.replace("basis = \"operational_agreement\"", "basis = \"union_law\""));
        assert!(e.message.contains("third-country"), "{e}");

        let e = err(&SAMPLE.replace("days = 365", "days = 4000"));
        assert_eq!(e.message, "days (4000) exceeds max_days (1825)");

        let e = err(&SAMPLE.replace("default_days = 1095", "default_days = 0"));
        assert_eq!(e.message, "default_days must be at least 1");

        let e = err(&SAMPLE.replace("id = \"XK-CTD\"", "id = \"xk\""));
        assert!(e.message.contains("not a partner id"), "{e}");
    }

    #[test]
    fn peers_and_partners_behind_them() {
        let text = format!(
            "{}\n[[peer]]\nid = \"RS-NCB\"\nurl = \"https://127.0.0.1:9443/\"\nca = \"peers/rs-ca.crt\"\nenvelope_key = \"/etc/rs.pub\"\n",
            SAMPLE.replace(
                "id = \"RS-MOI\"",
                "id = \"RS-MOI\"\nvia = \"RS-NCB\"\nca = \"cas/rs.crt\""
            )
        );
        let p = Policy::parse(&text, Path::new("conf/policy.toml")).expect("policy");
        let rs = PartnerId::parse("RS-MOI").expect("id");
        let peer = p.via(&rs).expect("behind a peer");
        assert_eq!(peer.url, "https://127.0.0.1:9443");
        assert_eq!(peer.ca, Path::new("conf/peers/rs-ca.crt"));
        assert_eq!(peer.envelope_key, Path::new("/etc/rs.pub"));
        assert_eq!(
            p.partners[&rs].ca.as_deref(),
            Some(Path::new("conf/cas/rs.crt"))
        );
        assert!(p.via(&PartnerId::parse("AL-CTD").expect("id")).is_none());

        let e = err(&text.replace("via = \"RS-NCB\"", "via = \"XX-NCB\""));
        assert_eq!(
            e.message,
            "partner RS-MOI is via XX-NCB, which is no [[peer]]"
        );
        for url in [
            "http://127.0.0.1:9443",
            "https://",
            "https://h:1/path",
            "https://u@h:1",
        ] {
            let e = err(&text.replace("https://127.0.0.1:9443/", url));
            assert!(e.message.contains("https://HOST:PORT"), "{url}: {e}");
        }
    }

    #[test]
    fn peers_need_this_gateways_own_id_and_may_not_carry_it() {
        let text = format!(
            "{SAMPLE}\n[[peer]]\nid = \"RS-NCB\"\nurl = \"https://h:1\"\nca = \"c\"\nenvelope_key = \"k\"\n"
        );
        let p = Policy::parse(&text, Path::new("p.toml")).expect("policy");
        let id = |s| PartnerId::parse(s).expect("id");
        assert!(p.check_federation(None).is_err());
        assert!(p.check_federation(Some(&id("RS-NCB"))).is_err());
        assert!(p.check_federation(Some(&id("AL-NCB"))).is_ok());
        assert!(sample().check_federation(None).is_ok());
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncđe", 6), (2, 3));
        assert_eq!(line_col("", 0), (1, 1));
        assert_eq!(line_col("abc", 99), (1, 4));
    }
}
