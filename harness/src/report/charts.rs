//! SVG charts for the HTML report, drawn with plotters' SVG backend. Text is written as SVG
//! `<text>` elements (escaped by plotters) in the generic `sans-serif` family: no font files, no
//! system font dependency, nothing loaded from anywhere.
//!
//! - [`roofline`]: arithmetic intensity × GFLOP/s, log-log: each run's measured roof, the
//!   published roofs of matched devices, the projection targets' roofs, and one point per `ok`
//!   row, shaped by row kind (measured ●, peer ▲, imported ■, projected ✕).
//! - [`perf_per_dollar`]: GFLOP per $ bars of one workload (log scale, 95% CI whiskers), ranked
//!   rows and priced projections (at the ceiling, labelled as such).
//! - [`scaling`]: GFLOP/s over the size of sweep case families.

use super::{Report, WorkloadReport};
use crate::runfile::RowKind;
use crate::specs::{Database, SpecDType};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const W: u32 = 1240;
const FONT: &str = "sans-serif";

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of a row kind.
pub fn kind_color(k: RowKind) -> RGBColor {
    match k {
        RowKind::Measured => RGBColor(31, 119, 180),
        RowKind::Peer => RGBColor(255, 127, 14),
        RowKind::Imported => RGBColor(44, 160, 44),
        RowKind::Projected => RGBColor(120, 120, 120),
    }
}

/// Axis labels of log scales: `0.1`, `1`, `10`, `1k`, `10M`, `1G`.
fn axis_num(v: f64) -> String {
    let a = v.abs();
    let (d, suffix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    let s = if x == x.round() {
        format!("{x:.0}")
    } else if a >= 0.01 {
        let t = format!("{x:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.0e}")
    };
    format!("{s}{suffix}")
}

/// Move a colour toward white by `f` in [0, 1].
fn lighten(c: RGBColor, f: f64) -> RGBColor {
    let l = |v: u8| (v as f64 + (255.0 - v as f64) * f).round() as u8;
    RGBColor(l(c.0), l(c.1), l(c.2))
}

fn decade_floor(v: f64) -> f64 {
    10f64.powf(v.log10().floor())
}

fn decade_ceil(v: f64) -> f64 {
    10f64.powf(v.log10().ceil())
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// One roof line of the roofline chart.
struct RoofLine {
    label: String,
    peak: f64,
    bw: f64,
    color: RGBColor,
    width: u32,
}

/// The roofline chart (always drawn; an empty report has an empty chart).
pub fn roofline(rep: &Report, db: &Database) -> String {
    draw_roofline(rep, db).unwrap_or_else(|e| error_svg(&format!("roofline: {e}")))
}

fn main_dtype(rep: &Report) -> SpecDType {
    let mut counts = std::collections::BTreeMap::new();
    for w in &rep.workloads {
        *counts.entry(w.dtype).or_insert(0usize) += 1;
    }
    if counts.contains_key(&SpecDType::Bf16) {
        SpecDType::Bf16
    } else {
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(d, _)| d)
            .unwrap_or(SpecDType::Bf16)
    }
}

fn draw_roofline(rep: &Report, db: &Database) -> DrawResult<String> {
    let mut roofs: Vec<RoofLine> = Vec::new();
    for r in &rep.runs {
        let c = &r.measured_ceilings;
        if let (Some((isa, peak)), Some(bw)) = (
            c.cpu_fma_gflops.iter().max_by(|a, b| a.1.total_cmp(b.1)),
            c.read_ceiling_gbs(),
        ) {
            roofs.push(RoofLine {
                label: format!("{}: measured ({isa} FMA, read bandwidth)", r.label),
                peak: *peak,
                bw,
                color: PALETTE[roofs.len() % PALETTE.len()],
                width: 3,
            });
        }
    }
    // GPU probes: the FMA (f32) roof and, where measured, the cooperative-matrix roof.
    for r in &rep.runs {
        for g in &r.measured_ceilings.gpu {
            let Some(bw) = g.copy_gbs else { continue };
            for (what, peak) in [
                ("FMA f32", g.fma_gflops),
                ("cooperative matrix", g.coop_gflops),
            ] {
                if let Some(peak) = peak {
                    roofs.push(RoofLine {
                        label: format!(
                            "{}: GPU {} measured ({what}, copy bandwidth)",
                            r.label, g.index
                        ),
                        peak,
                        bw,
                        color: PALETTE[roofs.len() % PALETTE.len()],
                        width: 3,
                    });
                }
            }
        }
    }
    // Published roofs of matched devices, one per (device, dtype) seen.
    let mut seen = Vec::new();
    for row in &rep.rows {
        if let (Some(p), Some(bw)) = (
            &row.published,
            row.published.as_ref().and_then(|p| p.bw_gbs),
        ) {
            let key = format!(
                "{} {}",
                row.spec.as_ref().map(|s| s.id.as_str()).unwrap_or(""),
                row.dtype.name()
            );
            if !seen.contains(&key) {
                seen.push(key.clone());
                roofs.push(RoofLine {
                    label: format!("{key} published"),
                    peak: p.peak_gflops,
                    bw,
                    color: PALETTE[roofs.len() % PALETTE.len()],
                    width: 2,
                });
            }
        }
    }
    let dt = main_dtype(rep);
    for t in &rep.targets {
        if let Some(a) = db.accelerator(&t.chip) {
            if let (Some(peak), Some(bw)) = (a.peak_gflops(dt), a.bw_gbs()) {
                roofs.push(RoofLine {
                    label: format!("{} {} (projected target, published)", a.name, dt.name()),
                    peak,
                    bw,
                    color: lighten(PALETTE[roofs.len() % PALETTE.len()], 0.45),
                    width: 1,
                });
            }
        }
    }
    let points: Vec<(f64, f64, RowKind)> = rep
        .rows
        .iter()
        .filter_map(|r| r.gflops.map(|g| (r.intensity, g.median, r.kind)))
        .filter(|p| p.0 > 0.0 && p.1 > 0.0)
        .collect();
    let projected: Vec<(f64, f64)> = rep
        .workloads
        .iter()
        .flat_map(|w| w.projections.iter().filter_map(|p| p.projection.as_ref()))
        .map(|p| (p.intensity, p.ceiling_gflops))
        .filter(|p| p.0 > 0.0 && p.1 > 0.0)
        .collect();
    let xs: Vec<f64> = points
        .iter()
        .map(|p| p.0)
        .chain(projected.iter().map(|p| p.0))
        .chain(roofs.iter().map(|r| r.peak / r.bw))
        .collect();
    let ys: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .chain(projected.iter().map(|p| p.1))
        .chain(roofs.iter().map(|r| r.peak))
        .collect();
    let x0 = decade_floor(xs.iter().copied().fold(f64::INFINITY, f64::min).min(0.1));
    let x1 = decade_ceil(xs.iter().copied().fold(0.0, f64::max).max(1000.0));
    let y0 = decade_floor(ys.iter().copied().fold(f64::INFINITY, f64::min).min(1.0));
    let y1 = decade_ceil(ys.iter().copied().fold(0.0, f64::max).max(10.0) * 1.5);
    let legend_rows = roofs.len() + 4;
    let h = 520 + 18 * legend_rows as u32;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_vertically(520);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!(
                    "Roofline: GFLOP/s vs arithmetic intensity (log-log); target roofs for {}",
                    dt.name()
                ),
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("arithmetic intensity (useful FLOP / minimal byte)")
            .y_desc("GFLOP/s")
            .x_label_formatter(&|v| axis_num(*v))
            .y_label_formatter(&|v| axis_num(*v))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for r in &roofs {
            let ridge = r.peak / r.bw;
            let start = (y0 / r.bw).max(x0);
            let mut line = vec![(start, r.bw * start)];
            if ridge > start && ridge < x1 {
                line.push((ridge, r.peak));
            }
            line.push((x1, r.peak.min(r.bw * x1)));
            chart.draw_series(LineSeries::new(line, r.color.stroke_width(r.width)))?;
        }
        chart.draw_series(projected.iter().map(|&(x, y)| {
            Cross::new((x, y), 3, kind_color(RowKind::Projected).stroke_width(1))
        }))?;
        for &(x, y, k) in &points {
            let c = kind_color(k);
            match k {
                RowKind::Peer => {
                    chart.draw_series(std::iter::once(TriangleMarker::new(
                        (x, y),
                        6,
                        c.filled(),
                    )))?;
                }
                RowKind::Imported => {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x / 1.06, y / 1.06), (x * 1.06, y * 1.06)],
                        c.filled(),
                    )))?;
                }
                _ => {
                    chart.draw_series(std::iter::once(Circle::new((x, y), 4, c.filled())))?;
                }
            }
        }
        // Legend below the plot: kinds, then roofs.
        let style = TextStyle::from((FONT, 13).into_font()).color(&BLACK);
        let mut y = 6;
        let kinds = [
            (RowKind::Measured, "measured row"),
            (RowKind::Peer, "peer row"),
            (RowKind::Imported, "imported row"),
            (
                RowKind::Projected,
                "projected: ceiling of each workload on each target",
            ),
        ];
        for (i, (k, s)) in kinds.iter().enumerate() {
            let x = 20 + 260 * i as i32;
            let c = kind_color(*k);
            match k {
                RowKind::Peer => legend.draw(&TriangleMarker::new((x, y + 8), 6, c.filled()))?,
                RowKind::Imported => legend.draw(&Rectangle::new(
                    [(x - 4, y + 4), (x + 4, y + 12)],
                    c.filled(),
                ))?,
                RowKind::Projected => legend.draw(&Cross::new((x, y + 8), 4, c.stroke_width(2)))?,
                RowKind::Measured => legend.draw(&Circle::new((x, y + 8), 5, c.filled()))?,
            }
            legend.draw(&Text::new(s.to_string(), (x + 10, y), style.clone()))?;
        }
        y += 22;
        for r in &roofs {
            legend.draw(&PathElement::new(
                vec![(20, y + 8), (50, y + 8)],
                r.color.stroke_width(r.width.max(2)),
            ))?;
            legend.draw(&Text::new(
                format!(
                    "{}: {} GFLOP/s, {} GB/s",
                    r.label,
                    super::num(r.peak),
                    super::num(r.bw)
                ),
                (58, y),
                style.clone(),
            ))?;
            y += 18;
        }
        root.present()?;
    }
    Ok(buf)
}

/// One bar.
struct Bar {
    label: String,
    value: f64,
    lo: f64,
    hi: f64,
    color: RGBColor,
    light: bool,
}

/// GFLOP per $ bars of a workload; `None` when nothing in it has a price.
pub fn perf_per_dollar(rep: &Report, w: &WorkloadReport) -> Option<String> {
    let mut bars = Vec::new();
    for rk in &w.ranking {
        let r = &rep.rows[rk.row];
        if let Some(p) = &r.price {
            let g = p.perf.gflop_per_usd;
            bars.push(Bar {
                label: format!("#{} {} [{}]", rk.rank, rk.device, r.kind.name()),
                value: g.median,
                lo: g.lo,
                hi: g.hi,
                color: kind_color(r.kind),
                light: false,
            });
        }
    }
    for p in &w.projections {
        if let Some(c) = &p.ceiling_perf {
            bars.push(Bar {
                label: format!("{} [projected ceiling, upper bound]", p.chip_name),
                value: c.gflop_per_usd.median,
                lo: c.gflop_per_usd.median,
                hi: c.gflop_per_usd.median,
                color: kind_color(RowKind::Projected),
                light: true,
            });
        }
        if let Some(c) = &p.realistic_perf {
            bars.push(Bar {
                label: format!("{} [projected realistic]", p.chip_name),
                value: c.gflop_per_usd.median,
                lo: c.gflop_per_usd.median,
                hi: c.gflop_per_usd.median,
                color: kind_color(RowKind::Projected),
                light: false,
            });
        }
    }
    if bars.is_empty() {
        return None;
    }
    Some(
        draw_bars(&format!("GFLOP per $ — {}", w.key), &bars)
            .unwrap_or_else(|e| error_svg(&format!("perf per dollar: {e}"))),
    )
}

fn draw_bars(title: &str, bars: &[Bar]) -> DrawResult<String> {
    let n = bars.len();
    let h = 90 + 26 * n as u32;
    let vmin = bars
        .iter()
        .map(|b| b.lo.min(b.value))
        .fold(f64::INFINITY, f64::min);
    let vmax = bars.iter().map(|b| b.hi.max(b.value)).fold(0.0, f64::max);
    let x0 = decade_floor(vmin) / 10.0;
    let x1 = decade_ceil(vmax * 1.01);
    let label_w = 520;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(label_w)
            .build_cartesian_2d((x0..x1).log_scale(), 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_desc("GFLOP per $ (log scale; whiskers: 95% CI from the timing)")
            .x_label_formatter(&|v| axis_num(*v))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()?;
        let label_style = TextStyle::from((FONT, 12).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (i, b) in bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let style = if b.light {
                b.color.mix(0.35).filled()
            } else {
                b.color.filled()
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, y + 0.18), (b.value, y + 0.82)],
                style,
            )))?;
            if b.hi > b.lo {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(b.lo, y + 0.5), (b.hi, y + 0.5)],
                    BLACK.stroke_width(1),
                )))?;
            }
            let (px, py) = chart.backend_coord(&(x0, y + 0.5));
            root.draw(&Text::new(
                truncate(&b.label, 80),
                (px - 8, py),
                label_style.clone(),
            ))?;
            let (vx, vy) = chart.backend_coord(&(b.value, y + 0.5));
            root.draw(&Text::new(
                super::num(b.value),
                (vx + 4, vy - 6),
                TextStyle::from((FONT, 11).into_font()).color(&BLACK),
            ))?;
        }
        root.present()?;
    }
    Ok(buf)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Scaling curves of sweep families; `None` without sweeps.
pub fn scaling(rep: &Report) -> Option<String> {
    if rep.sweeps.is_empty() {
        return None;
    }
    Some(draw_scaling(rep).unwrap_or_else(|e| error_svg(&format!("scaling: {e}"))))
}

fn draw_scaling(rep: &Report) -> DrawResult<String> {
    let xs: Vec<f64> = rep
        .sweeps
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0 as f64))
        .collect();
    let ymax = rep
        .sweeps
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.3.max(p.1)))
        .fold(0.0, f64::max);
    let x0 = xs.iter().copied().fold(f64::INFINITY, f64::min).max(1.0) / 1.2;
    let x1 = xs.iter().copied().fold(0.0, f64::max) * 1.2;
    let h = 480 + 18 * rep.sweeps.len() as u32;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_vertically(470);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                "Scaling: GFLOP/s over size (sweep case families)",
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), 0f64..ymax * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("size (the case name's number: n of square-n, tokens, context)")
            .x_label_formatter(&|v| axis_num(*v))
            .y_desc("GFLOP/s (median; bars: 95% CI)")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()?;
        let style = TextStyle::from((FONT, 12).into_font()).color(&BLACK);
        for (i, s) in rep.sweeps.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            chart.draw_series(LineSeries::new(
                s.points.iter().map(|p| (p.0 as f64, p.1)),
                c.stroke_width(2),
            ))?;
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((p.0 as f64, p.1), 3, c.filled())),
            )?;
            chart.draw_series(s.points.iter().map(|p| {
                PathElement::new(
                    vec![(p.0 as f64, p.2), (p.0 as f64, p.3)],
                    c.stroke_width(1),
                )
            }))?;
            let y = 4 + 18 * i as i32;
            legend.draw(&PathElement::new(
                vec![(20, y + 7), (50, y + 7)],
                c.stroke_width(2),
            ))?;
            legend.draw(&Text::new(
                format!("{}: {} {} on {}", s.family, s.kernel, s.precision, s.device),
                (58, y),
                style.clone(),
            ))?;
        }
        root.present()?;
    }
    Ok(buf)
}

/// A small SVG saying a chart could not be drawn (never a panic in a report).
fn error_svg(msg: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"10\" \
         y=\"25\" font-family=\"sans-serif\">chart not drawn: {}</text></svg>",
        super::html::escape(msg)
    )
}
