//! The Markdown format: the [`super::layout`] document as GitHub-flavoured Markdown (charts are
//! in the HTML format only; the Markdown says so where they would be).

use super::layout::{document, Block, Chart};
use super::Report;

/// A table cell: pipes escaped, line breaks flattened.
pub fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Text outside tables: characters that would start Markdown or HTML markup escaped.
fn text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '*' | '_' | '`' | '[' | ']' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            _ => o.push(c),
        }
    }
    o
}

/// The Markdown report.
pub fn render(rep: &Report) -> String {
    let mut out = String::new();
    for b in document(rep) {
        match b {
            Block::Heading(level, s) => {
                out.push_str(&format!(
                    "\n{} {}\n\n",
                    "#".repeat(level as usize),
                    text(&s)
                ));
            }
            Block::Para(s) => {
                out.push_str(&text(&s));
                out.push_str("\n\n");
            }
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {}\n", text(&i)));
                }
                out.push('\n');
            }
            Block::Table(t) => {
                let cells = |r: &[String]| -> String {
                    format!(
                        "| {} |\n",
                        r.iter()
                            .map(|c| cell(c).replace('<', "&lt;"))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                };
                out.push_str(&cells(&t.headers));
                out.push_str(&format!(
                    "|{}\n",
                    t.headers.iter().map(|_| "---|").collect::<String>()
                ));
                for r in &t.rows {
                    out.push_str(&cells(r));
                }
                out.push('\n');
            }
            Block::Chart(Chart::Roofline) => {
                out.push_str("_(Roofline chart: see the HTML format.)_\n\n");
            }
            Block::Chart(_) => {}
        }
    }
    out.trim_start().to_string()
}
