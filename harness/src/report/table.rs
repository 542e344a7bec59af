//! The terminal format: the [`super::layout`] document as plain text. Narrow tables are aligned
//! grids; wide ones print one record per line (`header: value · ...`) so nothing is cut.

use super::layout::{document, Block, Table};
use super::Report;

/// Widest grid printed as columns; wider tables print as records.
const MAX_GRID_WIDTH: usize = 160;

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize) -> String {
    let n = width(s);
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

fn render_table(t: &Table, out: &mut String) {
    let cols = t.headers.len();
    let mut widths: Vec<usize> = t.headers.iter().map(|h| width(h)).collect();
    for r in &t.rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(width(c));
        }
    }
    let total: usize = widths.iter().sum::<usize>() + 2 * cols;
    if total <= MAX_GRID_WIDTH {
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| pad(c, widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        out.push_str(&line(&t.headers));
        out.push('\n');
        out.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
        for r in &t.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
    } else {
        for r in &t.rows {
            let fields: Vec<String> = t
                .headers
                .iter()
                .zip(r)
                .filter(|(_, v)| !v.is_empty())
                .map(|(h, v)| format!("{h}: {v}"))
                .collect();
            out.push_str("  - ");
            out.push_str(&fields.join(" · "));
            out.push('\n');
        }
    }
}

/// Render blocks as text.
pub fn render_blocks(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(1, s) => {
                out.push_str(&format!("{s}\n{}\n", "=".repeat(width(s))));
            }
            Block::Heading(_, s) => {
                out.push_str(&format!("\n{s}\n{}\n", "-".repeat(width(s))));
            }
            Block::Para(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Block::List(items) => {
                for i in items {
                    out.push_str("  * ");
                    out.push_str(i);
                    out.push('\n');
                }
            }
            Block::Table(t) => render_table(t, &mut out),
            Block::Chart(_) => {}
        }
    }
    out
}

/// The terminal report.
pub fn render(rep: &Report) -> String {
    render_blocks(&document(rep))
}
