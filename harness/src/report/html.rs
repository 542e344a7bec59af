//! The HTML format: one self-contained file. Inline CSS, inline SVG charts (plotters), no
//! script, and nothing loaded from anywhere (no `src`/`href` to http(s), no `url(`, no
//! `@import`). Every string — including the static text — goes through [`escape`], which also
//! encodes `@` and `(`, so nothing that came from a run, spec or price file can form markup, an
//! attribute, an `@import` or a `url(...)`. Chart SVGs get the same two characters encoded (as
//! character references, which attribute values decode back).

use super::charts;
use super::layout::{document, Block, Chart};
use super::Report;
use crate::specs::Database;

/// HTML-escape text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '@' => o.push_str("&#64;"),
            '(' => o.push_str("&#40;"),
            _ => o.push(c),
        }
    }
    o
}

/// An SVG from plotters, made inert: `@` and `(` as character references (plotters already
/// escapes `<`, `>`, `&` and quotes in text).
fn inert_svg(svg: &str) -> String {
    svg.replace('@', "&#64;").replace('(', "&#40;")
}

const CSS: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto;
  max-width: 1360px; padding: 0 16px; color: #1b1b1b; background: #fff; line-height: 1.4; }
h1 { font-size: 1.7em; margin-bottom: 4px; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; padding-bottom: 3px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 12.5px; display: block;
  overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #d4d4d4; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f1f3f5; }
tr:nth-child(even) td { background: #fafafa; }
ul { font-size: 13px; }
figure.chart { margin: 10px 0 18px; }
figure.chart svg { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
.kind-measured { color: #1f77b4; font-weight: 600; }
.kind-peer { color: #d2691e; font-weight: 600; }
.kind-imported { color: #2c8a2c; font-weight: 600; }
.kind-projected { color: #6b6b6b; font-weight: 600; font-style: italic; }
p.note { color: #555; font-size: 13px; }
";

fn cell(s: &str) -> String {
    let e = escape(s);
    match s {
        "measured" | "peer" | "imported" | "projected" => {
            format!("<span class=\"kind-{s}\">{e}</span>")
        }
        _ => e,
    }
}

/// The HTML report. `db` supplies the targets' roofs for the roofline chart.
pub fn render(rep: &Report, db: &Database) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str(&format!(
        "<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&format!("perfledger report (as of {})", rep.as_of))
    ));
    for b in document(rep) {
        match b {
            Block::Heading(level, s) => {
                let l = level.clamp(1, 4);
                o.push_str(&format!("<h{l}>{}</h{l}>\n", escape(&s)));
            }
            Block::Para(s) => o.push_str(&format!("<p>{}</p>\n", escape(&s))),
            Block::List(items) => {
                o.push_str("<ul>\n");
                for i in items {
                    o.push_str(&format!("<li>{}</li>\n", escape(&i)));
                }
                o.push_str("</ul>\n");
            }
            Block::Table(t) => {
                o.push_str("<table>\n<thead><tr>");
                for h in &t.headers {
                    o.push_str(&format!("<th>{}</th>", escape(h)));
                }
                o.push_str("</tr></thead>\n<tbody>\n");
                for r in &t.rows {
                    o.push_str("<tr>");
                    for c in r {
                        o.push_str(&format!("<td>{}</td>", cell(c)));
                    }
                    o.push_str("</tr>\n");
                }
                o.push_str("</tbody>\n</table>\n");
            }
            Block::Chart(c) => {
                let svg = match c {
                    Chart::Roofline => Some(charts::roofline(rep, db)),
                    Chart::PerfPerDollar(i) => charts::perf_per_dollar(rep, &rep.workloads[i]),
                    Chart::Scaling => charts::scaling(rep),
                };
                match svg {
                    Some(svg) => {
                        o.push_str("<figure class=\"chart\">\n");
                        o.push_str(&inert_svg(&svg));
                        o.push_str("\n</figure>\n");
                    }
                    None => {
                        if let Chart::PerfPerDollar(_) = c {
                            o.push_str(&format!(
                                "<p class=\"note\">{}</p>\n",
                                escape(
                                    "No perf-per-dollar chart: nothing in this workload has a \
                                     price."
                                )
                            ));
                        }
                    }
                }
            }
        }
    }
    o.push_str("</body>\n</html>\n");
    o
}

/// How many SVG charts a report's HTML has (for tests and the closing line of `report`).
pub fn chart_count(html: &str) -> usize {
    html.matches("<svg").count()
}
