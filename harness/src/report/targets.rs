//! Projection targets (`--targets`: `a,b` replaces the defaults, `+a` adds, `CHIP@OFFER` picks
//! the price), the report options, and each target's price and note.

use super::*;

/// One projection target: a chip, optionally priced with a named offer.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub chip: String,
    pub offer: Option<String>,
}

/// Parse `--targets`: `a,b` replaces the defaults, `+a,+b` (or a leading `+`) adds to them.
/// Each item is `CHIP[@OFFER]` (an id or alias; the offer must be one of that chip's priced
/// offers). Unknown names are errors naming the item.
pub fn parse_targets(values: &[String], db: &Database) -> Result<Vec<Target>, String> {
    let items: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let add = items.first().is_some_and(|s| s.starts_with('+'));
    let mut out: Vec<Target> = if add || items.is_empty() {
        DEFAULT_TARGETS
            .iter()
            .map(|c| Target {
                chip: c.to_string(),
                offer: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    for item in items {
        let item = item.trim_start_matches('+');
        let (chip, offer) = match item.split_once('@') {
            Some((c, o)) => (c, Some(o)),
            None => (item, None),
        };
        let a = db.accelerator(chip).ok_or_else(|| {
            format!("--targets: {chip:?} is not an accelerator id or alias (see `perfledger specs list`)")
        })?;
        let offer = match offer {
            Some(o) => {
                let off = db
                    .offer(o)
                    .ok_or_else(|| format!("--targets: {o:?} is not an offer id"))?;
                if off.device.as_deref() != Some(a.id.as_str()) {
                    return Err(format!(
                        "--targets: offer {:?} is for {}, not {}",
                        off.id,
                        off.device
                            .as_deref()
                            .or(off.device_name.as_deref())
                            .unwrap_or("?"),
                        a.id
                    ));
                }
                if off.point_price().is_none() {
                    return Err(format!(
                        "--targets: offer {:?} has no single published price",
                        off.id
                    ));
                }
                Some(off.id.clone())
            }
            None => None,
        };
        out.retain(|t| t.chip != a.id);
        out.push(Target {
            chip: a.id.clone(),
            offer,
        });
    }
    Ok(out)
}

/// What to build.
#[derive(Clone, Debug)]
pub struct Options {
    pub targets: Vec<Target>,
    /// `--efficiency` in (0, 1]: realistic projection = efficiency × ceiling.
    pub efficiency: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            targets: DEFAULT_TARGETS
                .iter()
                .map(|c| Target {
                    chip: c.to_string(),
                    offer: None,
                })
                .collect(),
            efficiency: None,
        }
    }
}

/// A run file and the name it was given on the command line.
#[derive(Clone, Debug)]
pub struct Input {
    pub file: String,
    pub run: RunFile,
}

pub(crate) fn target_info(db: &Database, t: &Target) -> TargetInfo {
    let a = db.accelerator(&t.chip).expect("targets are resolved ids");
    let user_offer = db
        .offers_for(&a.id)
        .find(|o| o.point_price().is_some() && db.origin(&o.id).is_some_and(|x| x.user));
    let (offer, chosen_by) = match &t.offer {
        Some(o) => (db.offer(o), "--targets CHIP@OFFER"),
        None => match user_offer {
            Some(o) => (Some(o), "user price file"),
            None => (
                db.reference_offer(&a.id),
                "default rule (best status, on-demand first, lowest $/chip-h)",
            ),
        },
    };
    let price = offer.and_then(|o| {
        let per_chip = o.point_price()? / o.device_count as f64;
        let (age, stale) = db.price_age(o);
        Some(TargetPrice {
            offer: o.id.clone(),
            provider: o.provider.clone(),
            instance: o.instance.clone(),
            pricing_model: o.pricing_model.name().into(),
            region: o.region.clone(),
            status: o.status.name().into(),
            usd_per_chip_hour: per_chip,
            as_of: o.as_of.text.clone(),
            age_days: age,
            stale,
            chosen_by,
        })
    });
    let ranges: Vec<String> = db
        .offers_for(&a.id)
        .filter(|o| o.point_price().is_none())
        .filter_map(|o| {
            o.device_price()
                .map(|p| format!("{} ${p}/chip-h (range, not used)", o.id))
        })
        .collect();
    let note = match (&price, ranges.is_empty()) {
        (None, true) => Some("no published price: break-even prices are given instead".into()),
        (None, false) => Some(format!(
            "no single published price (break-even given); ranges: {}",
            ranges.join("; ")
        )),
        (Some(_), false) => Some(format!("also published as ranges: {}", ranges.join("; "))),
        (Some(_), true) => None,
    };
    TargetInfo {
        chip: a.id.clone(),
        name: a.name.clone(),
        price,
        note,
    }
}
