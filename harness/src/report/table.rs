//! The terminal format: the [`super::layout`] document as plain text at most [`WIDTH`] columns
//! wide. Tables are aligned grids (`comfy-table`, cells wrapped at spaces to fit, no column
//! narrower than its longest word as far as the width allows) showing the columns the layout
//! chose for the terminal, under their short headers; kernel ids drop their `op.backend.` prefix
//! (the workload and the device say both). The cells of its footnote columns (sources, offers,
//! reasons, row kinds) become numbered footnotes under the table, identical texts sharing one
//! number, and the row's `notes` cell names them. Paragraphs and lists are wrapped to the same
//! width. Markdown and HTML render every column in full.

use super::layout::{document, Block, Table};
use super::Report;
use comfy_table::{Cell, ColumnConstraint, Width};

/// Widest line of the terminal report.
pub const WIDTH: usize = 120;
/// The columns of the run summary's table (`cli::summary`), laid out by [`set_header_fitted`].
pub const SUMMARY_HEADER: [&str; 5] = [
    "kernel",
    "shape",
    "GFLOP/s [95% CI]",
    "% of ceiling",
    "vs best peer",
];
/// Longest word kept whole in a table cell (a kernel id is at most ~45 characters).
const MAX_UNBROKEN: usize = 48;
/// Narrowest column for text that wraps (so a device name takes two lines, not seven).
const MIN_TEXT_COLUMN: usize = 22;

/// An empty terminal table: no borders, a rule under the header, columns wrapped to fit `width`.
pub fn grid(width: u16) -> comfy_table::Table {
    use comfy_table::{presets, ContentArrangement, TableComponent};
    let mut t = comfy_table::Table::new();
    t.load_preset(presets::NOTHING)
        .set_style(TableComponent::HeaderLines, '─')
        .set_style(TableComponent::MiddleHeaderIntersections, '─')
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    t
}

/// Numbered footnotes, shared by the whole document (identical texts share a number).
#[derive(Default)]
struct Footnotes {
    texts: Vec<String>,
}

impl Footnotes {
    /// The number of `text` (1-based), and whether it is new.
    fn number(&mut self, text: &str) -> (usize, bool) {
        match self.texts.iter().position(|t| t == text) {
            Some(i) => (i + 1, false),
            None => {
                self.texts.push(text.to_string());
                (self.texts.len(), true)
            }
        }
    }
}

/// `matmul.cpu.packed.avx512f.f32-f32-f32` → `packed.avx512f.f32-f32-f32` (other text as is).
pub(crate) fn short_kernel(text: &str) -> String {
    for op in ["matmul.", "attention."] {
        for backend in ["cpu.", "gpu."] {
            if let Some(rest) = text.strip_prefix(op).and_then(|r| r.strip_prefix(backend)) {
                return rest.to_string();
            }
        }
    }
    text.to_string()
}

/// Whether a cell says nothing worth a footnote.
fn blank(s: &str) -> bool {
    matches!(s.trim(), "" | "—" | "-" | "n/a")
}

/// Words of `text` in lines of at most `width` characters, each after `first` / `rest`.
pub(crate) fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !empty && !fits {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
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
    out
}

fn render_table(t: &Table, notes: &mut Footnotes, out: &mut String) {
    let cols = t.headers.len();
    let shown: Vec<(usize, Option<String>)> = if t.terminal.show.is_empty() {
        (0..cols)
            .filter(|c| !t.terminal.footnotes.contains(c))
            .map(|c| (c, None))
            .collect()
    } else {
        t.terminal.show.clone()
    };
    let mut header: Vec<String> = shown
        .iter()
        .map(|(c, short)| short.clone().unwrap_or_else(|| t.headers[*c].clone()))
        .collect();
    let with_notes = !t.terminal.footnotes.is_empty();
    if with_notes {
        header.push("notes".into());
    }
    // The cells as shown: kernel ids shortened, footnote references in `notes`.
    let mut new_notes: Vec<usize> = Vec::new();
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = shown
                .iter()
                .map(|(c, _)| {
                    let text = r.get(*c).map(String::as_str).unwrap_or("");
                    if t.headers[*c].contains("kernel") {
                        short_kernel(text)
                    } else {
                        text.to_string()
                    }
                })
                .collect();
            if with_notes {
                let refs: Vec<String> = t
                    .terminal
                    .footnotes
                    .iter()
                    .filter_map(|&c| {
                        let text = r.get(c)?;
                        if blank(text) {
                            return None;
                        }
                        let (n, new) = notes.number(&format!("{}: {text}", t.headers[c]));
                        if new {
                            new_notes.push(n);
                        }
                        Some(format!("[{n}]"))
                    })
                    .collect();
                cells.push(refs.join(" "));
            }
            cells
        })
        .collect();
    // The notes column keeps room for three references a line.
    let notes_col = with_notes.then(|| header.len() - 1);
    let mut grid = grid(WIDTH as u16);
    set_header_fitted(&mut grid, &header, &rows, notes_col.map(|c| (c, 12)));
    for r in rows {
        grid.add_row(r.into_iter().map(Cell::new).collect::<Vec<_>>());
    }
    out.push_str(&grid.to_string());
    out.push('\n');
    for n in new_notes {
        let text = &notes.texts[n - 1];
        let tag = format!("  [{n}] ");
        out.push_str(&wrap(text, WIDTH, &tag, &" ".repeat(tag.len())));
    }
}

/// Set `grid`'s header and fix its columns' widths ([`column_widths`] of the header and the cells
/// `rows` will hold) so the table fits [`WIDTH`] with words — kernel ids above all — kept whole
/// where the width allows. `at_least`: a column and the fewest characters it keeps.
pub(crate) fn set_header_fitted(
    grid: &mut comfy_table::Table,
    header: &[String],
    rows: &[Vec<String>],
    at_least: Option<(usize, usize)>,
) {
    grid.set_header(header.to_vec());
    for (k, w) in column_widths(header, rows, at_least).iter().enumerate() {
        if let Some(col) = grid.column_mut(k) {
            // comfy-table's widths include the two characters of padding.
            col.set_constraint(ColumnConstraint::Absolute(Width::Fixed(*w as u16 + 2)));
        }
    }
}

/// Content widths of the columns so the table fits [`WIDTH`]: each column at least its longest
/// word (never broken, as far as the width allows) and a few words' room for wrapped text (a
/// device name on two lines, not seven); what is left goes to the columns that lack most.
fn column_widths(
    header: &[String],
    rows: &[Vec<String>],
    at_least: Option<(usize, usize)>,
) -> Vec<usize> {
    let words = |s: &str| {
        s.split_whitespace()
            .map(|w| w.chars().count())
            .max()
            .unwrap_or(0)
    };
    let len = |s: &str| s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut word: Vec<usize> = header.iter().map(|h| words(h).min(12)).collect();
    let mut room = word.clone();
    let mut full: Vec<usize> = header.iter().map(|h| len(h)).collect();
    for r in rows {
        for (k, text) in r.iter().enumerate() {
            word[k] = word[k].max(words(text).min(MAX_UNBROKEN));
            room[k] = room[k].max(len(text).min(MIN_TEXT_COLUMN));
            full[k] = full[k].max(len(text));
        }
    }
    if let Some((k, min)) = at_least {
        word[k] = word[k].max(min.min(full[k]));
    }
    let mut width: Vec<usize> = word.iter().zip(&room).map(|(w, r)| *w.max(r)).collect();
    // Per column two characters of padding and one of (blank) border, one more at the end.
    let budget = WIDTH.saturating_sub(3 * width.len() + 1);
    while width.iter().sum::<usize>() > budget {
        // Give up wrapping room first, then (only if it must) whole words.
        let slack = (0..width.len())
            .filter(|&k| width[k] > word[k])
            .max_by_key(|&k| width[k]);
        let k = slack.unwrap_or_else(|| {
            (0..width.len())
                .max_by_key(|&k| width[k])
                .expect("a column")
        });
        width[k] -= 1;
    }
    while width.iter().sum::<usize>() < budget {
        match (0..width.len())
            .filter(|&k| full[k] > width[k])
            .max_by_key(|&k| full[k] - width[k])
        {
            Some(k) => width[k] += 1,
            None => break,
        }
    }
    width
}

/// Render blocks as text.
pub fn render_blocks(blocks: &[Block]) -> String {
    let mut out = String::new();
    let mut notes = Footnotes::default();
    for b in blocks {
        match b {
            Block::Heading(1, s) => {
                out.push_str(&format!("{s}\n{}\n", "=".repeat(s.chars().count())));
            }
            Block::Heading(_, s) => {
                out.push_str(&format!("\n{s}\n{}\n", "-".repeat(s.chars().count())));
            }
            Block::Para(s) => out.push_str(&wrap(s, WIDTH, "", "")),
            Block::List(items) => {
                for i in items {
                    out.push_str(&wrap(i, WIDTH, "  * ", "    "));
                }
            }
            Block::Table(t) => render_table(t, &mut notes, &mut out),
            Block::Chart(_) => {}
        }
    }
    out
}

/// The terminal report.
pub fn render(rep: &Report) -> String {
    render_blocks(&document(rep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_width_and_words() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        let w = wrap(text, 20, "  * ", "    ");
        assert!(w.lines().all(|l| l.chars().count() <= 20), "{w}");
        let words: Vec<&str> = w
            .split_whitespace()
            .filter(|&x| x != "*")
            .collect::<Vec<_>>();
        assert_eq!(words.join(" "), text);
        // A word longer than the width stands alone on its line.
        let long = wrap("a verylongwordthatdoesnotfit b", 10, "", "");
        assert_eq!(long, "a\nverylongwordthatdoesnotfit\nb\n");
    }

    /// The run summary's table: with a long shape in it, kernel ids (what `--kernel` takes) stay
    /// whole on one line and the shape wraps at its spaces, within [`WIDTH`].
    #[test]
    fn fitted_columns_keep_kernel_ids_whole() {
        let header = SUMMARY_HEADER.map(String::from);
        let ids = [
            "attention.cpu.flash.avx512bf16.bf16-f32-bf16",
            "matmul.cpu.packed.avx512f.f32-f32-f32",
        ];
        let rows: Vec<Vec<String>> = ids
            .iter()
            .map(|id| {
                [
                    id,
                    "h8/2 q256 kv256 d64 causal",
                    "74.58 [72.74, 75.21]",
                    "62% compute",
                    "0.81×",
                ]
                .map(String::from)
                .to_vec()
            })
            .collect();
        let mut t = grid(WIDTH as u16);
        set_header_fitted(&mut t, &header, &rows, None);
        for r in rows {
            t.add_row(r);
        }
        let text = t.to_string();
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        for id in ids {
            assert!(text.lines().any(|l| l.contains(id)), "{id} broken:\n{text}");
        }
        assert!(
            text.contains("h8/2 q256") && text.contains("causal"),
            "{text}"
        );
    }

    #[test]
    fn footnote_columns_become_shared_numbered_notes() {
        let t = Table {
            headers: vec!["id".into(), "source".into()],
            rows: vec![
                vec!["a".into(), "https://example.org/a".into()],
                vec!["b".into(), "https://example.org/a".into()],
                vec!["c".into(), "—".into()],
            ],
            terminal: super::super::layout::Terminal {
                show: vec![(0, Some("ID".into()))],
                footnotes: vec![1],
            },
        };
        let text = render_blocks(&[Block::Table(t)]);
        assert_eq!(text.matches("[1]").count(), 3, "{text}");
        assert!(!text.contains("[2]"), "{text}");
        assert!(text.contains("[1] source: https://example.org/a"), "{text}");
        assert!(text.contains(" ID ") && !text.contains("source "), "{text}");
    }
}
