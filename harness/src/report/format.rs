//! Number formatting shared by the renderers.

use super::*;

/// `123.4`, `12.35`, `1.235`, `0.1235`; `285,867` from 10⁴; `2.062e9` from 10⁹.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 1e9 {
        format!("{v:.3e}")
    } else if a >= 1e4 {
        let digits = format!("{:.0}", a);
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if v < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.3e}")
    }
}

/// `median [lo, hi]`.
pub fn interval(i: &Interval) -> String {
    if i.lo == i.hi {
        num(i.median)
    } else {
        format!("{} [{}, {}]", num(i.median), num(i.lo), num(i.hi))
    }
}

/// `n/a` for `None`.
pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "n/a".into())
}

/// A percentage.
pub fn pct(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}%")
    } else {
        format!("{v:.1}%")
    }
}

/// `$1.23/h` etc.
pub fn usd(v: f64) -> String {
    if v >= 100.0 {
        format!("${v:.0}")
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.4}")
    }
}

/// The GFLOP/s cell of a row: the median with its CI for `ok` rows, else `—` (a row that is not
/// `ok` shows no speed). The terminal, Markdown, HTML and the run summary all print this.
pub fn gflops_cell(r: &RowReport) -> String {
    match (&r.gflops, r.status) {
        (Some(g), Status::Ok) => interval(g),
        _ => "—".into(),
    }
}

/// The % of the measured ceiling, or, for a row above [`crate::ceiling::ABOVE_CEILING`] of its
/// probe, that the probe is not its ceiling (the notes name both). Every text format and the run
/// summary print this; CSV and JSON carry the number (`pct_of_attainable`) and the warning
/// (`probe_wrong`).
pub fn pct_measured(m: &Normalized) -> String {
    match (m.pct_of_attainable, &m.probe_wrong) {
        (Some(v), _) => pct(v),
        (None, Some(_)) => "above probe (see notes)".into(),
        (None, None) => "n/a".into(),
    }
}

/// A measured row's ratio to the best peer of its workload: `1.04×` (the CI and the peer are in
/// the report's other columns and formats).
pub fn peer_ratio_cell(v: &super::PeerRatio) -> String {
    format!("{:.2}×", v.ratio)
}
