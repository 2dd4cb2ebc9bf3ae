//! Problems found in a recipe, with the place they were found.
//!
//! Every problem carries a stable code (tests and `--json` rely on it), a byte
//! span into the recipe's text, what was expected, and a suggestion where one
//! exists. Rendering uses `miette`, so an admin or maintainer sees the line
//! with the mistake underlined; `line_col` gives the `file:line:col` form.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, SourceCode};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one recipe file.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip)]
    pub span: Range<usize>,
    /// Short text under the underlined span.
    pub label: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn error(code: &'static str, span: Range<usize>, message: impl Into<String>) -> Self {
        Problem {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }

    pub fn warning(code: &'static str, span: Range<usize>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, span, message)
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// "did you mean ...?" for a misspelt name among the known ones.
pub fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

/// The text of a recipe file, shared by all its problems.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl Source {
    pub fn new(path: &Path, text: impl Into<Arc<str>>) -> Self {
        Source {
            path: path.to_path_buf(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A problem bound to its file, ready to render or serialise.
#[derive(Debug, thiserror::Error)]
#[error("{}", problem.message)]
pub struct Located {
    pub problem: Problem,
    pub file: Source,
}

impl Located {
    pub fn line_col(&self) -> (usize, usize) {
        self.file.line_col(self.problem.span.start)
    }

    /// `path:line:col: severity[code]: message` — the one-line form.
    pub fn short(&self) -> String {
        let (line, col) = self.line_col();
        let sev = match self.problem.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{}:{line}:{col}: {sev}[{}]: {}",
            self.file.path.display(),
            self.problem.code,
            self.problem.message
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        let (line, col) = self.line_col();
        serde_json::json!({
            "file": self.file.path.display().to_string(),
            "line": line,
            "column": col,
            "code": self.problem.code,
            "severity": self.problem.severity,
            "message": self.problem.message,
            "label": self.problem.label,
            "help": self.problem.help,
        })
    }

    /// The whole problem drawn with the source line underlined.
    pub fn render(&self) -> String {
        let handler = miette::GraphicalReportHandler::new_themed(if colour_wanted() {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        });
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = self.short();
        }
        out
    }
}

/// NO_COLOR (https://no-color.org) and non-terminals get plain text.
pub fn colour_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && crate::output::out::stderr_is_terminal()
}

impl Diagnostic for Located {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!("hoist::{}", self.problem.code)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.problem.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = &self.problem.span;
        let len = span.end.saturating_sub(span.start).max(1);
        let label = (!self.problem.label.is_empty()).then(|| self.problem.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new(
            label, span.start, len,
        ))))
    }
}

impl SourceCode for Located {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        // A zero-length or end-of-file span is still drawn: clamp to the text.
        let len = self.file.text.len();
        let start = span.offset().min(len);
        let size = span.len().min(len - start);
        let clamped = miette::SourceSpan::new(start.into(), size);
        let text: &'a str = &self.file.text;
        let contents = text.read_span(&clamped, before, after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.path.display().to_string(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}
