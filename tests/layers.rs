//! The house's dependency rules (issue 17), read from the source itself.
//!
//! Why a test: an import circle between top-level modules, or a ground
//! floor (`domain`, `crypto`, `policy`, `audit`, `config`) reaching up into
//! the store, the TLS layer or the HTTP layer, compiles without a word and
//! is only noticed when the next capability cannot be placed. This test
//! reads every `.rs` file under `src/` and fails, naming file and line, on
//! (a) any circle between top-level modules and (b) any ground-floor module
//! importing something its row in [`FLOORS`] does not allow.
//!
//! It is its own test crate and does not use the `brdo` library: it only
//! reads text, so it compiles in a moment.
//!
//! How the source is read (a small, documented approximation of Rust, not a
//! parser of it):
//! - Comments, string, raw-string, byte-string and char literals are blanked
//!   first, so `crate::api` in a doc comment or a message is no import.
//! - Items under `#[cfg(test)]` (a `mod tests { .. }`, a function, a `use`)
//!   are blanked, and a `#[cfg(test)] mod x;` takes the file `x.rs` (or
//!   `x/mod.rs`) out of the reading; so is a file starting `#![cfg(test)]`.
//!   Only the exact attribute `cfg(test)` is recognised, not `cfg(any(test,
//!   ..))`: such code counts as production code (the stricter reading).
//! - An import is any path starting `crate::`, `super::`, `self::` or
//!   `brdo::` (how a binary names the library), in a `use` or inline, with
//!   grouped forms (`use crate::{a::b, c}`) expanded. `super` is resolved
//!   against the file's module path and any inline `mod x { .. }` around it.
//! - `src/X.rs` and `src/X/**` belong to top-level module `X`; `src/lib.rs`
//!   and `src/main.rs` are the root and not counted; `src/bin/**` (binaries
//!   of their own) count as one module `bin`, which nothing imports. A path
//!   whose first segment is not a top-level module (a re-export at the
//!   root) is not counted.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The ground floors, as data: a module listed here may import only the
/// modules on its row (and itself). Modules not listed may import anything
/// that does not close a circle.
const FLOORS: &[(&str, &[&str])] = &[
    // The vocabulary (labels, partners, messages, untrusted-JSON parsing):
    // every layer speaks it, so it may speak of nothing else.
    ("domain", &[]),
    // Keys and envelopes: sealing needs the domain's ids, never the store
    // or the HTTP layer that call it.
    ("crypto", &["domain"]),
    // The audit record, its canonical form, chain and proofs: an auditor
    // verifies a log offline with it, with no gateway around it.
    ("audit", &["domain", "crypto"]),
    // The decision is a pure function of the policy and the message: the
    // gateway, the command line and the fuzzers call it alone.
    ("policy", &["domain"]),
    // Read before anything runs, so nothing it imports may need a running
    // gateway (no ops, app, api, store or tls). `pki` only for the PKI
    // directory's file names; pki itself imports no other top-level module.
    ("config", &["domain", "crypto", "pki"]),
    // What one gateway proves to another (receipts, the relayed document):
    // a peer's DPO verifies it offline, with no gateway around it.
    ("federation", &["domain", "crypto", "audit"]),
];

/// Where an import was seen: file, line and the path as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Site {
    file: String,
    line: usize,
    path: String,
}

/// Imports between top-level modules: from -> to -> where.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Site>>>;

// ---------------------------------------------------------------------------
// Reading the source
// ---------------------------------------------------------------------------

/// `src` with comments and literals replaced by spaces; newlines are kept,
/// so a line number in the result is one in the source.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let end = literal_or_comment_end(&c, i);
        if end > i {
            out.extend(
                c[i..end]
                    .iter()
                    .map(|&ch| if ch == '\n' { '\n' } else { ' ' }),
            );
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// If a comment or literal starts at `i`, the index just after it; else `i`.
fn literal_or_comment_end(c: &[char], i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    match (at(i), at(i + 1)) {
        ('/', '/') => (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len()),
        ('/', '*') => block_comment_end(c, i),
        ('"', _) => string_end(c, i + 1),
        ('\'', _) => char_end(c, i),
        ('r', '"' | '#') if !ident_before => raw_string_end(c, i + 1).unwrap_or(i),
        ('b' | 'c', 'r') if !ident_before => raw_string_end(c, i + 2).unwrap_or(i),
        _ => i,
    }
}

/// After a (nested) block comment starting at `i`.
fn block_comment_end(c: &[char], i: usize) -> usize {
    let mut depth = 0;
    let mut k = i;
    while k + 1 < c.len() {
        match (c[k], c[k + 1]) {
            ('/', '*') => {
                depth += 1;
                k += 2;
            }
            ('*', '/') => {
                depth -= 1;
                k += 2;
                if depth == 0 {
                    return k;
                }
            }
            _ => k += 1,
        }
    }
    c.len()
}

/// After the closing quote of a string whose body starts at `k`.
fn string_end(c: &[char], mut k: usize) -> usize {
    while k < c.len() {
        match c[k] {
            '\\' => k += 2,
            '"' => return k + 1,
            _ => k += 1,
        }
    }
    c.len()
}

/// After a char literal at `i`, or `i` when it is a lifetime or label.
fn char_end(c: &[char], i: usize) -> usize {
    match (c.get(i + 1), c.get(i + 2)) {
        (Some('\\'), _) => (i + 3..c.len())
            .find(|&k| c[k] == '\'')
            .map_or(c.len(), |k| k + 1),
        (Some(_), Some('\'')) => i + 3,
        _ => i,
    }
}

/// After a raw string whose hashes (or quote) start at `k`; `None` when
/// this is no raw string (an identifier such as `r#type`).
fn raw_string_end(c: &[char], k: usize) -> Option<usize> {
    let hashes = c[k..].iter().take_while(|&&ch| ch == '#').count();
    if c.get(k + hashes) != Some(&'"') {
        return None;
    }
    let mut j = k + hashes + 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// Stripped code with every `#[cfg(test)]` item blanked, and the names of
/// modules declared `#[cfg(test)] mod x;` (their files are test code).
fn drop_cfg_test(code: &str) -> (String, Vec<String>) {
    let c: Vec<char> = code.chars().collect();
    let mut out = c.clone();
    let mut test_files = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let Some(after_attr) = cfg_test_attr_end(&c, i) else {
            i += 1;
            continue;
        };
        let item = skip_attrs(&c, after_attr);
        let end = item_end(&c, item);
        if let Some(name) = mod_declaration(&c[item..end]) {
            test_files.push(name);
        }
        for ch in &mut out[i..end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = end;
    }
    (out.into_iter().collect(), test_files)
}

/// Matches `tokens` at `i` skipping whitespace between them; the index after.
fn match_tokens(c: &[char], mut i: usize, tokens: &[&str]) -> Option<usize> {
    for t in tokens {
        while c.get(i).is_some_and(|ch| ch.is_whitespace()) {
            i += 1;
        }
        let t: Vec<char> = t.chars().collect();
        if c.get(i..i + t.len()) != Some(&t[..]) {
            return None;
        }
        i += t.len();
    }
    Some(i)
}

/// After `#[cfg(test)]` at `i`, if that is what stands there.
fn cfg_test_attr_end(c: &[char], i: usize) -> Option<usize> {
    if c[i] != '#' {
        return None;
    }
    match_tokens(c, i, &["#", "[", "cfg", "(", "test", ")", "]"])
}

/// The start of the item after any further outer attributes at `i`.
fn skip_attrs(c: &[char], mut i: usize) -> usize {
    loop {
        while c.get(i).is_some_and(|ch| ch.is_whitespace()) {
            i += 1;
        }
        if c.get(i) != Some(&'#') {
            return i;
        }
        let Some(open) = match_tokens(c, i, &["#", "["]) else {
            return i;
        };
        i = matching_close(c, open - 1, '[', ']');
    }
}

/// After the bracket closing the one opened at `open`.
fn matching_close(c: &[char], open: usize, o: char, cl: char) -> usize {
    let mut depth = 0usize;
    for (k, &ch) in c.iter().enumerate().skip(open) {
        if ch == o {
            depth += 1;
        } else if ch == cl {
            depth -= 1;
            if depth == 0 {
                return k + 1;
            }
        }
    }
    c.len()
}

/// After the item starting at `i`: its first `;` outside brackets, or the
/// brace closing its first `{`; for a field or match arm, its `,` or the
/// `}` closing what holds it (not included).
fn item_end(c: &[char], i: usize) -> usize {
    let mut depth = 0i32;
    for (k, &ch) in c.iter().enumerate().skip(i) {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ';' | ',' if depth == 0 => return k + 1,
            '}' if depth == 0 => return k,
            '{' => return matching_close(c, k, '{', '}'),
            _ => {}
        }
    }
    c.len()
}

/// `x` when the item is `[pub[(..)]] mod x;`.
fn mod_declaration(item: &[char]) -> Option<String> {
    let text: String = item.iter().collect();
    let words: Vec<&str> = text
        .split(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == ';'))
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == "mod")?;
    if !words[..at]
        .iter()
        .all(|w| matches!(*w, "pub" | "crate" | "super" | "self" | "in"))
    {
        return None;
    }
    let name = words.get(at + 1)?.strip_suffix(';')?;
    Some(name.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

/// Tokens of stripped code, each with its line.
fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
            continue;
        }
        let tok = match ch {
            '\n' => {
                line += 1;
                None
            }
            ':' if c.get(i + 1) == Some(&':') => {
                i += 1;
                Some(Tok::PathSep)
            }
            '{' => Some(Tok::Open),
            '}' => Some(Tok::Close),
            ',' => Some(Tok::Comma),
            '*' => Some(Tok::Star),
            ch if ch.is_whitespace() => None,
            _ => Some(Tok::Other),
        };
        out.extend(tok.map(|t| (t, line)));
        i += 1;
    }
    out
}

/// The paths of a (possibly grouped) path starting at `i`, each as its
/// segments from the root keyword; returns the index after it.
fn use_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                prefix.push(s.clone());
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Tok::PathSep) {
                    i += 1;
                    continue;
                }
                out.push(prefix);
                return i;
            }
            Some(Tok::Open) => return use_group(toks, i + 1, &prefix, out),
            Some(Tok::Star) => {
                out.push(prefix);
                return i + 1;
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
    }
}

/// The members of `{ a::b, c as d, self }` after `prefix`; `i` is after `{`.
fn use_group(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: &[String],
    out: &mut Vec<Vec<String>>,
) -> usize {
    while let Some((t, _)) = toks.get(i) {
        match t {
            Tok::Close => return i + 1,
            Tok::Ident(s) if s == "as" => i += 2,
            Tok::Ident(_) | Tok::Open | Tok::Star => {
                i = use_tree(toks, i, prefix.to_vec(), out).max(i + 1);
            }
            _ => i += 1,
        }
    }
    i
}

/// The absolute module path (from the crate root) a path names, given the
/// module it is written in; `None` for `super` above the root.
fn resolve(path: &[String], here: &[String]) -> Option<Vec<String>> {
    let (mut base, rest) = match path.first().map(String::as_str) {
        Some("crate" | "brdo") => (Vec::new(), &path[1..]),
        Some("self") => (here.to_vec(), &path[1..]),
        Some("super") => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            let mut base = here.to_vec();
            for _ in 0..supers {
                base.pop()?;
            }
            (base, &path[supers..])
        }
        _ => return None,
    };
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// Every import of one file: (line, absolute path, path as written).
/// `module` is the file's module path (`["store", "writer"]`).
fn imports(code: &str, module: &[String]) -> Vec<(usize, Vec<String>, String)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(s) if s == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
            }
            Tok::Ident(s)
                if matches!(s.as_str(), "crate" | "super" | "self" | "brdo")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep)
                    && (i == 0 || toks[i - 1].0 != Tok::PathSep) =>
            {
                let here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(n, _)| n.clone()))
                    .collect();
                let mut paths = Vec::new();
                let next = use_tree(&toks, i, Vec::new(), &mut paths);
                for p in paths {
                    if let Some(abs) = resolve(&p, &here) {
                        out.push((toks[i].1, abs, p.join("::")));
                    }
                }
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// The tree
// ---------------------------------------------------------------------------

/// The module path of a file relative to `src/`, and its top-level module;
/// `None` for the crate roots.
fn module_of(rel: &Path) -> Option<(Vec<String>, String)> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?.to_owned();
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if parts.first().is_some_and(|p| p == "bin") {
        return Some((Vec::new(), "bin".to_owned()));
    }
    if stem != "mod" {
        parts.push(stem);
    }
    let top = parts.first()?.clone();
    Some((parts, top))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
}

/// The files declared by `#[cfg(test)] mod x;` in `file` (relative to src).
fn test_children(rel: &Path, names: &[String]) -> Vec<PathBuf> {
    let dir = match rel.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => {
            rel.parent().map(Path::to_path_buf).unwrap_or_default()
        }
        _ => rel.with_extension(""),
    };
    names
        .iter()
        .flat_map(|n| [dir.join(format!("{n}.rs")), dir.join(n).join("mod.rs")])
        .collect()
}

/// The import graph between top-level modules of `sources` (path relative
/// to `src/`, text), with the set of top-level modules.
fn graph(sources: &[(PathBuf, String)]) -> (Graph, BTreeSet<String>) {
    let tops: BTreeSet<String> = sources
        .iter()
        .filter_map(|(p, _)| module_of(p).map(|m| m.1))
        .collect();
    let mut cleaned = Vec::new();
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    for (rel, text) in sources {
        let stripped = strip(text);
        if match_tokens(
            &stripped.chars().collect::<Vec<_>>(),
            0,
            &["#", "!", "[", "cfg", "(", "test", ")", "]"],
        )
        .is_some()
        {
            test_only.insert(rel.clone());
            continue;
        }
        let (code, tests) = drop_cfg_test(&stripped);
        test_only.extend(test_children(rel, &tests));
        cleaned.push((rel, code));
    }
    let mut g = Graph::new();
    for (rel, code) in cleaned {
        let Some((module, top)) = module_of(rel) else {
            continue;
        };
        if test_only
            .iter()
            .any(|t| rel.starts_with(t.with_extension("")) || rel == t)
        {
            continue;
        }
        for (line, abs, written) in imports(&code, &module) {
            let Some(to) = abs.first().filter(|t| tops.contains(*t) && **t != top) else {
                continue;
            };
            let site = Site {
                file: format!("src/{}", rel.display()),
                line,
                path: written,
            };
            g.entry(top.clone())
                .or_default()
                .entry(to.clone())
                .or_default()
                .push(site);
        }
    }
    (g, tops)
}

// ---------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------

/// The strongly connected components with more than one module (Tarjan).
fn circles(g: &Graph) -> Vec<BTreeSet<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = BTreeSet::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// A shortest cycle through the first module of `scc`, inside it.
fn one_cycle(g: &Graph, scc: &BTreeSet<String>) -> Vec<String> {
    let Some(start) = scc.iter().next() else {
        return Vec::new();
    };
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for w in g
            .get(v)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|w| scc.contains(*w))
        {
            if w == start {
                let mut cycle = vec![v.to_owned()];
                let mut at = v;
                while let Some(p) = prev.get(at) {
                    cycle.push((*p).to_owned());
                    at = p;
                }
                cycle.reverse();
                cycle.push(start.clone());
                return cycle;
            }
            if !prev.contains_key(w.as_str()) && w != start {
                prev.insert(w.as_str(), v);
                queue.push_back(w.as_str());
            }
        }
    }
    Vec::new()
}

/// `from -> to: file:line path` for the first few sites of an arrow.
fn describe(g: &Graph, from: &str, to: &str) -> String {
    // One site per line: `use crate::x::{A, B}` is one import to read.
    let mut sites: Vec<&Site> = g[from][to].iter().collect();
    sites.dedup_by(|a, b| a.file == b.file && a.line == b.line);
    let mut s = format!("  {from} -> {to}:");
    for site in sites.iter().take(3) {
        let path = site.path.strip_suffix("::self").unwrap_or(&site.path);
        let _ = write!(s, " {}:{} `{path}`;", site.file, site.line);
    }
    if sites.len() > 3 {
        let _ = write!(s, " and {} more", sites.len() - 3);
    }
    s
}

/// Every broken rule of `g`, one readable paragraph each; empty when the
/// house keeps its rules.
fn problems(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for scc in circles(g) {
        let cycle = one_cycle(g, &scc);
        let mut s = format!(
            "import circle between top-level modules: {}\n",
            cycle.join(" -> ")
        );
        s.push_str("  arrows inside it (every one is part of some circle):\n");
        for from in &scc {
            for to in g
                .get(from)
                .into_iter()
                .flat_map(|m| m.keys())
                .filter(|t| scc.contains(*t))
            {
                let _ = writeln!(s, "  {}", describe(g, from, to));
            }
        }
        out.push(s);
    }
    for (module, allowed) in FLOORS {
        for to in g.get(*module).into_iter().flat_map(|m| m.keys()) {
            if !allowed.contains(&to.as_str()) {
                out.push(format!(
                    "`{module}` may import only {allowed:?} (FLOORS in tests/layers.rs), but imports `{to}`:\n{}\n",
                    describe(g, module, to)
                ));
            }
        }
    }
    out
}

/// The sources under `src/`, relative paths and text.
fn read_src() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (
                p.strip_prefix(&src).map(Path::to_path_buf).unwrap_or(p),
                text,
            )
        })
        .collect()
}

#[test]
fn the_house_keeps_its_dependency_rules() {
    let (g, tops) = graph(&read_src());
    for (module, allowed) in FLOORS {
        assert!(
            tops.contains(*module),
            "FLOORS names `{module}`, which is no top-level module under src/"
        );
        for a in *allowed {
            assert!(
                tops.contains(*a),
                "FLOORS lets `{module}` import `{a}`, which is no top-level module"
            );
        }
    }
    let found = problems(&g);
    assert!(
        found.is_empty(),
        "the dependency rules of the house are broken:\n\n{}",
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The reader and the rules on small synthetic trees, so this test can fail
// ---------------------------------------------------------------------------

/// The graph of synthetic files.
fn graph_of(files: &[(&str, &str)]) -> Graph {
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    graph(&sources).0
}

/// The arrows of a graph as `from->to` strings.
fn arrows(g: &Graph) -> Vec<String> {
    g.iter()
        .flat_map(|(f, m)| m.keys().map(move |t| format!("{f}->{t}")))
        .collect()
}

#[test]
fn grouped_use_names_every_module() {
    let g = graph_of(&[
        (
            "ops.rs",
            "use crate::{api::AppState, store, config::{Config, self}};\nuse std::{fmt, io};",
        ),
        ("api/mod.rs", ""),
        ("store/mod.rs", ""),
        ("config.rs", ""),
    ]);
    assert_eq!(arrows(&g), ["ops->api", "ops->config", "ops->store"]);
    assert_eq!(g["ops"]["api"][0].line, 1);
    assert_eq!(g["ops"]["api"][0].path, "crate::api::AppState");
}

#[test]
fn super_resolves_against_the_file_and_inline_modules() {
    let g = graph_of(&[
        (
            "store/writer.rs",
            "use super::rows::Row;\nuse super::super::config::Config;",
        ),
        (
            "store/deep/inner.rs",
            "use super::super::reads; fn f() { super::super::super::api::x(); }",
        ),
        (
            "ops.rs",
            "mod inner {\n    mod deeper { use super::super::super::policy::decide; }\n}\nuse self::inner::x;",
        ),
        ("config.rs", ""),
        ("api.rs", ""),
        ("policy.rs", ""),
    ]);
    assert_eq!(arrows(&g), ["ops->policy", "store->api", "store->config"]);
    assert_eq!(g["ops"]["policy"][0].line, 2);
}

#[test]
fn comments_and_literals_are_no_imports() {
    let text = r####"
//! Module docs naming crate::api::AppState.
/// See [`crate::api`].
/* block /* nested crate::api */ crate::api */
fn f<'a>(x: &'a str) -> char {
    let _ = "crate::api::x";
    let _ = r#"a "quoted" crate::api"#;
    let _ = b"crate::api";
    let _ = '"';
    let _ = '\'';
    let _ = 'c';
    crate::store::open();
    'x'
}
"####;
    let g = graph_of(&[("ops.rs", text), ("api.rs", ""), ("store.rs", "")]);
    assert_eq!(arrows(&g), ["ops->store"]);
    assert_eq!(g["ops"]["store"][0].line, 12);
}

#[test]
fn test_code_is_not_read() {
    let g = graph_of(&[
        (
            "config.rs",
            "use crate::domain::X;\n#[cfg(test)]\n#[allow(clippy::too_many_lines)]\nmod tests { use crate::api::Y; fn f() { let a = [0u8; 4]; } }\n#[cfg(test)]\nfn helper() -> [u8; 2] { crate::store::z() }\n#[cfg(test)]\nuse crate::tls::T;\nuse crate::policy::P;",
        ),
        ("store/mod.rs", "#[cfg(test)]\nmod tests;\npub mod test_db;"),
        ("store/tests.rs", "use crate::api::Z;"),
        ("store/test_db.rs", "use crate::policy::Q;"),
        ("tls/mod.rs", "#![cfg(test)]\nuse crate::api::W;"),
        ("api.rs", ""),
        ("domain.rs", ""),
        ("policy.rs", ""),
    ]);
    assert_eq!(
        arrows(&g),
        ["config->domain", "config->policy", "store->policy"]
    );
}

#[test]
fn a_circle_is_found_and_printed() {
    let g = graph_of(&[
        ("api/mod.rs", "use crate::ops::run;"),
        ("ops.rs", "use crate::retention::sweep;"),
        (
            "retention.rs",
            "use crate::api::AppState; use crate::domain::Label;",
        ),
        ("domain/mod.rs", ""),
    ]);
    let found = problems(&g);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("api -> ops -> retention -> api"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("src/retention.rs:1 `crate::api::AppState`"),
        "{}",
        found[0]
    );
    assert!(!found[0].contains("domain"), "{}", found[0]);
}

#[test]
fn a_floor_importing_upwards_is_refused() {
    let g = graph_of(&[
        ("domain/mod.rs", "pub mod label;"),
        ("domain/label.rs", "use crate::store::Row;"),
        ("policy/mod.rs", "use crate::domain::Label;"),
        (
            "config.rs",
            "use crate::ops::default_pki_dir; use crate::pki::FILE;",
        ),
        ("store/mod.rs", ""),
        ("ops.rs", ""),
        ("pki/mod.rs", ""),
    ]);
    let found = problems(&g);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains(
            "`domain` may import only [] (FLOORS in tests/layers.rs), but imports `store`"
        ),
        "{}",
        found[0]
    );
    assert!(found[0].contains("src/domain/label.rs:1"), "{}", found[0]);
    assert!(
        found[1].contains("`config` may import only"),
        "{}",
        found[1]
    );
    assert!(found[1].contains("imports `ops`"), "{}", found[1]);
}

#[test]
fn an_acyclic_house_has_no_problems() {
    let g = graph_of(&[
        ("api.rs", "use crate::{app, domain};"),
        ("app.rs", "use crate::{store, policy, audit};"),
        ("store.rs", "use brdo::domain::X;"),
        ("audit.rs", "use crate::{domain, crypto};"),
        ("crypto.rs", "use crate::domain;"),
        ("policy.rs", "use crate::domain;"),
        ("domain.rs", ""),
        ("config.rs", "use crate::{pki, crypto};"),
        ("pki.rs", ""),
    ]);
    assert_eq!(problems(&g), Vec::<String>::new());
}
