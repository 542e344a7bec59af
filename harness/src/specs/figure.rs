//! Figures (a value, or a range of conflicting published values with both sources) and dates
//! (`as_of`, ages).

use super::*;

/// The largest number a spec or price figure may hold (10⁹: no TFLOP/s, TB/s, GB, W or USD per
/// hour figure is within three orders of magnitude of it). Larger values are typos or hostile, and
/// would overflow the products normalization forms from them.
pub const MAX_FIGURE: f64 = 1e9;

/// A figure that is finite, > 0 and at most [`MAX_FIGURE`].
pub fn plausible(v: f64) -> bool {
    v.is_finite() && v > 0.0 && v <= MAX_FIGURE
}

/// A published number, or conflicting published numbers kept as a range with their sources.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Figure {
    Value(f64),
    Range(FigureRange),
}

/// Conflicting published values: never silently picked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureRange {
    pub min: f64,
    pub max: f64,
    pub sources: Vec<String>,
}

impl Figure {
    /// The value computations use: the upper end of a range.
    pub fn upper(&self) -> f64 {
        match self {
            Figure::Value(v) => *v,
            Figure::Range(r) => r.max,
        }
    }

    pub fn lower(&self) -> f64 {
        match self {
            Figure::Value(v) => *v,
            Figure::Range(r) => r.min,
        }
    }

    pub fn is_range(&self) -> bool {
        matches!(self, Figure::Range(_))
    }

    /// Multiply (a unit conversion): ranges keep their sources.
    pub fn scaled(&self, k: f64) -> Figure {
        match self {
            Figure::Value(v) => Figure::Value(v * k),
            Figure::Range(r) => Figure::Range(FigureRange {
                min: r.min * k,
                max: r.max * k,
                sources: r.sources.clone(),
            }),
        }
    }

    pub(crate) fn check(&self, field: &str, positive: bool) -> Result<(), FieldError> {
        let ok = |v: f64| {
            v.is_finite() && (if positive { v > 0.0 } else { v >= 0.0 }) && v <= MAX_FIGURE
        };
        match self {
            Figure::Value(v) if !ok(*v) => Err(FieldError::new(
                field,
                format!(
                    "{} is not a finite number > 0 and at most {MAX_FIGURE:e}",
                    crate::limits::show_number(*v)
                ),
            )),
            Figure::Range(r) => {
                if !ok(r.min) || !ok(r.max) {
                    return Err(FieldError::new(
                        field,
                        format!(
                            "range [{}, {}] must be finite, > 0 and at most {MAX_FIGURE:e}",
                            r.min, r.max
                        ),
                    ));
                }
                if r.min > r.max {
                    return Err(FieldError::new(
                        field,
                        format!("range min {} is above max {}", r.min, r.max),
                    ));
                }
                if r.sources.is_empty() || r.sources.iter().any(|s| s.trim().is_empty()) {
                    return Err(FieldError::new(
                        format!("{field}.sources"),
                        "a range names the source of each value",
                    ));
                }
                Ok(())
            }
            Figure::Value(_) => Ok(()),
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Value(v) => write!(f, "{}", fmt_num(*v)),
            Figure::Range(r) => write!(f, "{}–{}", fmt_num(r.min), fmt_num(r.max)),
        }
    }
}

/// A number without trailing zeros (`989`, `494.5`, `0.8048`).
pub fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl<'de> Deserialize<'de> for Figure {
    /// A number, or `{"min", "max", "sources"}` (anything else names what was expected).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_f64()
                .map(Figure::Value)
                .ok_or_else(|| D::Error::custom("number out of range")),
            v @ Value::Object(_) => serde_json::from_value::<FigureRange>(v)
                .map(Figure::Range)
                .map_err(|e| D::Error::custom(format!("range: {e}"))),
            other => Err(D::Error::custom(format!(
                "expected a number or {{\"min\", \"max\", \"sources\"}}, found {other}"
            ))),
        }
    }
}

/// An ISO date, `YYYY-MM-DD` or (month precision) `YYYY-MM`, taken as its first day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOf {
    pub text: String,
    pub date: Date,
}

impl AsOf {
    pub fn parse(s: &str) -> Result<AsOf, String> {
        let bad = || format!("{s:?} is not an ISO date (YYYY-MM-DD or YYYY-MM)");
        let parts: Vec<&str> = s.split('-').collect();
        let num = |p: &str, len: usize| -> Result<u32, String> {
            if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (y, m, d) = match parts.as_slice() {
            [y, m, d] => (num(y, 4)?, num(m, 2)?, num(d, 2)?),
            [y, m] => (num(y, 4)?, num(m, 2)?, 1),
            _ => return Err(bad()),
        };
        let month = time::Month::try_from(m as u8).map_err(|_| bad())?;
        let date = Date::from_calendar_date(y as i32, month, d as u8).map_err(|_| bad())?;
        Ok(AsOf {
            text: s.to_string(),
            date,
        })
    }

    /// Whole days from this date to `today` (negative: in the future).
    pub fn age_days(&self, today: Date) -> i64 {
        (today - self.date).whole_days()
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for AsOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for AsOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AsOf::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Today's date (UTC).
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// Parse a `--as-of` value (`YYYY-MM-DD`).
pub fn parse_date(s: &str) -> Result<Date, String> {
    let a = AsOf::parse(s)?;
    if a.text.len() != 10 {
        return Err(format!("{s:?}: give a full date, YYYY-MM-DD"));
    }
    Ok(a.date)
}
