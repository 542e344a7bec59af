//! `perfledger prices import-sky-catalog`: a SkyPilot catalog as a price file.

use super::{usage, ImportSkyCatalogArgs, PricesArgs, PricesCommand, EXIT_OK};
use crate::runfile::write_atomic;
use crate::specs::sky_catalog::{self, ImportOptions};
use crate::specs::{parse_prices, LoadOptions};
use anyhow::Result;

/// Catalog files larger than this are refused (SkyPilot's largest, AWS's, is a few MB).
pub const MAX_CATALOG_BYTES: u64 = 256 << 20;

pub(crate) fn cmd_prices(args: PricesArgs) -> Result<u8> {
    match args.command {
        PricesCommand::ImportSkyCatalog(a) => import_sky_catalog(a),
    }
}

fn import_sky_catalog(args: ImportSkyCatalogArgs) -> Result<u8> {
    let file = args.csv.display().to_string();
    let meta = std::fs::metadata(&args.csv).map_err(|e| usage(format!("{file}: {e}")))?;
    if !meta.is_file() {
        return Err(usage(format!("{file}: not a regular file")));
    }
    if meta.len() > MAX_CATALOG_BYTES {
        return Err(usage(format!(
            "{file}: {} bytes, over the {} MiB limit for a catalog",
            meta.len(),
            MAX_CATALOG_BYTES >> 20
        )));
    }
    let bytes = crate::input::read(&args.csv).map_err(|e| usage(format!("{file}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        usage(format!(
            "{file}: not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let imported = sky_catalog::import(
        &text,
        &file,
        &ImportOptions {
            provider: args.provider.clone(),
            as_of: args.as_of.clone(),
        },
    )
    .map_err(|e| usage(e.to_string()))?;
    let json = serde_json::to_string_pretty(&imported.doc)? + "\n";
    // What is written reads back as a price file (as `report --prices` will read it, today).
    let today = crate::specs::parse_date(&crate::env::instance::today_utc())
        .map_err(|e| anyhow::anyhow!("today's date: {e}"))?;
    parse_prices(
        &json,
        &args.out.display().to_string(),
        true,
        &LoadOptions {
            as_of: today,
            max_price_age_days: crate::specs::DEFAULT_MAX_PRICE_AGE_DAYS,
        },
    )
    .map_err(|e| usage(format!("--as-of {}: {e}", args.as_of)))?;
    write_atomic(&args.out, json.as_bytes(), args.force).map_err(|e| usage(e.to_string()))?;
    let offers = &imported.doc.offers;
    let spot = offers
        .iter()
        .filter(|o| o.pricing_model == crate::specs::PricingModel::Spot)
        .count();
    let ranges = offers
        .iter()
        .filter(|o| o.usd_per_hour.as_ref().is_some_and(|p| p.is_range()))
        .count();
    eprintln!(
        "{file}: {} rows → {} offers ({} on-demand, {spot} spot; {ranges} with prices that differ \
         between zones, kept as ranges) → {}",
        imported.rows_read,
        offers.len(),
        offers.len() - spot,
        args.out.display()
    );
    eprintln!(
        "skipped: {} blank on-demand prices, {} blank spot prices",
        imported.blank_on_demand, imported.blank_spot
    );
    if !imported.unmapped_accelerators.is_empty() {
        eprintln!(
            "accelerator names not in the mapping table (kept as device_name, no spec entry): {}",
            imported
                .unmapped_accelerators
                .iter()
                .map(|(n, i)| format!("{n} (e.g. {i})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if imported.unmapped_cpu_instances > 0 {
        eprintln!(
            "{} instance types without accelerators are of CPU families not in the mapping \
             table (kept without a CPU spec)",
            imported.unmapped_cpu_instances
        );
    }
    if !imported.ignored_columns.is_empty() {
        eprintln!("columns not read: {}", imported.ignored_columns.join(", "));
    }
    Ok(EXIT_OK)
}
