//! The accelerator, CPU and price database (DESIGN.md, "Normalization and perf per dollar").
//!
//! Two JSON documents are compiled into the binary: `data/specs.json` (`perfledger.specs/1`:
//! accelerators per chip, CPUs per core) and `data/prices.json` (`perfledger.prices/1`: one row
//! per instance or marketplace offer). They were curated from the research notes in
//! `../shared/specs/`; `README.md` next to this file records every curation decision. User files
//! in the same formats (`--specs FILE`, `--prices FILE`) add entries or override entries with the
//! same id.
//!
//! Every entry carries a `source` and an ISO `as_of` date (`YYYY-MM-DD`, or `YYYY-MM` where only
//! the month is known) plus a free-text `as_of_note`. Peaks are **dense** only: a peak is written
//! `{"dense": ...}`, so a sparse figure cannot be entered as one, and where the sparse figure is
//! known too (`sparse_tflops`) the dense one must be below it. Conflicting published values are
//! kept as `{"min", "max", "sources"}` ([`Figure::Range`]); computations use the upper value
//! (a ceiling stays an upper bound, a % of peak is not overstated) and print the range.
//!
//! Loading validates everything and names the file and the JSON path of a bad field.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use time::Date;

pub mod matching;
pub mod sky_catalog;

mod database;
mod error;
mod figure;
mod types;
mod validate;

pub use database::*;
pub use error::*;
pub use figure::*;
pub use types::*;
pub use validate::*;

/// The embedded spec document.
pub const SPECS_JSON: &str = include_str!("data/specs.json");
/// The embedded price document.
pub const PRICES_JSON: &str = include_str!("data/prices.json");
/// Schema string of spec documents.
pub const SPECS_SCHEMA: &str = "perfledger.specs/1";
/// Schema string of price documents.
pub const PRICES_SCHEMA: &str = "perfledger.prices/1";
/// How the embedded documents are named in errors and reports.
pub const EMBEDDED_SPECS: &str = "embedded specs (harness/src/specs/data/specs.json)";
pub const EMBEDDED_PRICES: &str = "embedded prices (harness/src/specs/data/prices.json)";
/// Prices older than this (counted from the report's `--as-of` date) are flagged.
pub const DEFAULT_MAX_PRICE_AGE_DAYS: i64 = 365;

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions {
            as_of: parse_date("2026-11-26").unwrap(),
            max_price_age_days: 365,
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            AsOf::parse("2026-01-21").unwrap().date.to_string(),
            "2026-01-21"
        );
        assert_eq!(
            AsOf::parse("2024-12").unwrap().date.to_string(),
            "2024-12-01"
        );
        for bad in [
            "2024",
            "2024-13",
            "2024-02-30",
            "24-01-01",
            "~2024-12",
            "2024-1-1",
            "",
        ] {
            assert!(AsOf::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_date("2024-12").is_err());
        let a = AsOf::parse("2026-01-21").unwrap();
        assert_eq!(a.age_days(parse_date("2026-01-31").unwrap()), 10);
    }

    #[test]
    fn figure_forms() {
        let f: Figure = serde_json::from_str("4.9").unwrap();
        assert_eq!(f.upper(), 4.9);
        let r: Figure =
            serde_json::from_str(r#"{"min": 4.7, "max": 4.9, "sources": ["a", "b"]}"#).unwrap();
        assert_eq!((r.lower(), r.upper()), (4.7, 4.9));
        assert_eq!(r.to_string(), "4.7–4.9");
        assert!(serde_json::from_str::<Figure>(r#""4.9""#).is_err());
        assert!(serde_json::from_str::<Figure>(r#"{"min": 1, "max": 2}"#).is_err());
        assert_eq!(fmt_num(989.0), "989");
        assert_eq!(fmt_num(0.8048), "0.8048");
    }

    #[test]
    fn embedded_loads() {
        let db = Database::embedded(&opts()).unwrap();
        assert!(db.accelerators.len() >= 20);
        assert!(db.cpus.len() >= 10);
        assert!(db.offers.len() >= 40);
        assert_eq!(db.accelerator("TRN3").unwrap().id, "aws-trainium3");
        assert_eq!(db.accelerator("h100-sxm").unwrap().id, "nvidia-h100-sxm");
    }
}
