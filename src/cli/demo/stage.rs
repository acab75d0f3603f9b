//! How a demo scenario is printed: numbered steps, each one block that says
//! what is done, by whom, what the gateway answered and what that proves.
//!
//! Each block is written to stdout in one call while the console log is
//! quiet, so no log line lands inside it; a test relies on that.

use std::io::Write;

use brdo_tools::client::ClientResponse;

/// Lines are wrapped to this width, so the output reads in an ordinary
/// terminal.
const WIDTH: usize = 96;
/// The column where a step's texts start, after `by`, `answer`, `proves`.
const LABEL: usize = 10;
/// The column where an answer field's value starts.
const FIELD: usize = 14;

/// The gateway's answer to a step: its status and the fields worth reading.
#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    fields: Vec<(&'static str, String)>,
}

impl Answer {
    /// The status of `resp`, with its `Brdo-Request-Id` (the key to the
    /// step's audit record) as the last field.
    pub fn of(resp: &ClientResponse) -> Self {
        Self {
            status: resp.status,
            fields: Vec::new(),
        }
        .request_id(resp)
    }

    fn request_id(mut self, resp: &ClientResponse) -> Self {
        if let Some(id) = resp.header("brdo-request-id") {
            self.fields.push(("request id", id.to_owned()));
        }
        self
    }

    /// Adds a field, shown before the request id.
    #[must_use]
    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let at = self
            .fields
            .iter()
            .position(|(n, _)| *n == "request id")
            .unwrap_or(self.fields.len());
        self.fields.insert(at, (name, value.into()));
        self
    }
}

/// One step of a scenario.
#[derive(Debug, Clone)]
pub struct Step {
    /// What is done, as a sentence starting with the actor.
    pub does: String,
    /// Who does it: the certificate and officer presented.
    pub by: String,
    /// What the gateway answered.
    pub answer: Answer,
    /// What the answer shows about the gateway.
    pub proves: String,
}

/// Prints a scenario's steps and notes to stdout, numbering the steps.
#[derive(Debug, Default)]
pub struct Stage {
    done: usize,
}

impl Stage {
    /// A stage whose first step is number 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prints a paragraph, wrapped, followed by a blank line.
    pub fn say(&self, text: &str) {
        let mut out = String::new();
        wrap_into(&mut out, "", "", text);
        out.push('\n');
        emit(&out);
    }

    /// Prints `text` as it is (commands to paste must not be wrapped).
    pub fn verbatim(&self, text: &str) {
        emit(text);
    }

    /// Prints the next step as one block.
    pub fn step(&mut self, step: &Step) {
        self.done += 1;
        emit(&render(self.done, step));
    }
}

/// The block of step `n`: header, `by`, `answer` with its fields, `proves`,
/// then a blank line.
pub fn render(n: usize, step: &Step) -> String {
    let mut out = String::new();
    let head = format!("{n}. ");
    wrap_into(&mut out, &head, &" ".repeat(head.len()), &step.does);
    let label = |l: &str| format!("   {l:<w$}", w = LABEL - 3);
    let pad = " ".repeat(LABEL);
    wrap_into(&mut out, &label("by"), &pad, &step.by);
    let status = hyper::StatusCode::from_u16(step.answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    wrap_into(
        &mut out,
        &label("answer"),
        &pad,
        &format!("→ {} {status}", step.answer.status),
    );
    let field_pad = " ".repeat(LABEL + FIELD);
    for (name, value) in &step.answer.fields {
        let first = format!("{pad}{name:<w$}", w = FIELD - 1);
        let first = format!("{first} ");
        wrap_into(&mut out, &first, &field_pad, value);
    }
    wrap_into(&mut out, &label("proves"), &pad, &step.proves);
    out.push('\n');
    out
}

/// Appends `text` wrapped at [`WIDTH`] on word boundaries, the first line
/// after `first`, the others after `rest`.
fn wrap_into(out: &mut String, first: &str, rest: &str, text: &str) {
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Writes `text` to stdout in one call and flushes, so a block reaches the
/// terminal (or the pipe) whole.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    // Nowhere to report a closed stdout to; the gateway goes on serving.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_one_indented_block_ending_with_what_it_proves() {
        let step = Step {
            does: "AL-CTD sends a message".into(),
            by: "partner certificate partner-AL-CTD, officer insp.hoxha".into(),
            answer: Answer {
                status: 201,
                fields: vec![("request id", "r-1".into())],
            }
            .field("id", "m-1")
            .field("recipients", "RS-MOI queued"),
            proves: "word ".repeat(40),
        };
        let block = render(3, &step);
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines[0], "3. AL-CTD sends a message");
        assert_eq!(
            lines[1],
            "   by     partner certificate partner-AL-CTD, officer insp.hoxha"
        );
        assert_eq!(lines[2], "   answer → 201 Created");
        assert_eq!(lines[3], "          id            m-1");
        assert_eq!(lines[4], "          recipients    RS-MOI queued");
        assert_eq!(lines[5], "          request id    r-1");
        assert!(lines[6].starts_with("   proves word word"), "{block}");
        assert!(lines[7].starts_with("          word"), "wrapped: {block}");
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{block}");
        let body = &lines[1..lines.len() - 1];
        assert!(body.iter().all(|l| l.starts_with("   ")), "{block}");
        assert_eq!(lines[lines.len() - 1], "", "a blank line ends the block");
        assert!(block.ends_with("\n\n"));
    }
}
